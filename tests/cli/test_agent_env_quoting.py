"""Env files as the README shows them (``LOG_LEVEL='debug'``): every value in single
quotes, read back byte for byte by a real ``sh`` that sources the file, whatever the
value holds (quotes, newlines, ``$``, backslashes, UTF-8, JSON of nested values)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genconf.agent.files import FileFormat, RenderError, env_name, render

ROOT = Path(__file__).resolve().parents[2]
HASH = "0" * 64

# Everything a shell variable can hold: any character but NUL (surrogates are not
# text a config can carry: the wire is UTF-8).
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))


def source(path: Path, *names: str) -> list[bytes]:
    """Each variable's value after ``. ./FILE`` in ``sh``, as raw bytes."""
    script = f". ./{path.name}; " + "; ".join(f'printf "%s\\0" "${n}"' for n in names)
    out = subprocess.run(
        ["sh", "-c", script], cwd=path.parent, check=True, capture_output=True
    ).stdout
    assert out.endswith(b"\0")
    return out[:-1].split(b"\0") if names else []


def write_env(path: Path, config: dict[str, Any]) -> Path:
    path.write_bytes(render(FileFormat.ENV, "web/0", config, HASH))
    return path


def test_the_readme_example_is_what_the_writer_writes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`LOG_LEVEL='debug'`, shell-sourceable" in readme
    data = render(FileFormat.ENV, "web/0", {"log-level": "debug", "port": 8080}, HASH)
    assert data.decode() == f"# genconf unit=web/0 hash={HASH}\nLOG_LEVEL='debug'\nPORT='8080'\n"


SHAPES = {
    "plain": "debug",
    "empty": "",
    "single-quote": "it's",
    "only-quotes": "'''",
    "quote-escape-lookalike": "'\\''",
    "double-quotes": 'say "hi"',
    "dollar": "$HOME ${PATH} $(echo no) `echo no` $1",
    "backslashes": "C:\\path\\n\\\\ \\' end\\",
    "newlines": "line 1\nline 2\n\n",
    "leading-newline": "\nafter",
    "crlf-and-tab": "a\r\nb\tc",
    "unicode": "café ☃ 日本語 🎉",
    "control": "\x01\x1b[31mred\x1b[0m\x7f",
    "dash-start": "-n -e",
    "glob": "* ? [a-z] ~",
    "semicolons": "a; echo injected; b && c || d | e > f",
    "hash-sign": "# not a comment",
    "equals": "a=b=c",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_of_string_comes_back_byte_for_byte(shape: str, tmp_path: Path) -> None:
    value = SHAPES[shape]
    path = write_env(tmp_path / "config.env", {"value": value, "after": "next"})
    assert source(path, "VALUE", "AFTER") == [value.encode(), b"next"]
    assert not (tmp_path / "f").exists(), "nothing in a value ran"


def test_values_that_are_not_strings_are_their_json(tmp_path: Path) -> None:
    config = {
        "port": 8080,
        "ratio": 0.25,
        "on": True,
        "tags": ["a", "it's", "é"],
        "nested": {"b": {"deep": [1, {"x": "$y\\'"}]}, "a": None},
    }
    path = write_env(tmp_path / "config.env", config)
    text = path.read_text()
    assert "PORT='8080'\n" in text and "ON='true'\n" in text and "RATIO='0.25'\n" in text
    got = source(path, "PORT", "RATIO", "ON", "TAGS", "NESTED")
    assert [json.loads(v) for v in got] == [8080, 0.25, True, config["tags"], config["nested"]]
    assert got[4].decode() == json.dumps(config["nested"], sort_keys=True, ensure_ascii=False)


def test_every_line_is_name_equals_single_quoted_value(tmp_path: Path) -> None:
    """The README's form exactly: one ``NAME='...'`` per key (a value's own newlines
    stay inside its quotes), in key order, after the header."""
    config = {"b-key": "x\ny", "a": "it's", "c": 3}
    text = render(FileFormat.ENV, "web/0", config, HASH).decode()
    assert text == (f"# genconf unit=web/0 hash={HASH}\nA='it'\\''s'\nB_KEY='x\ny'\nC='3'\n")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXT, min_size=1, max_size=4))
def test_any_string_comes_back_byte_for_byte(values: list[str], tmp_path: Path) -> None:
    config = {f"key-{i}": v for i, v in enumerate(values)}
    path = write_env(tmp_path / "config.env", config)
    names = [env_name(k) for k in config]
    assert source(path, *names) == [v.encode() for v in values]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.lists(JSON, max_size=3) | st.dictionaries(TEXT, JSON, max_size=3))
def test_any_nested_value_comes_back_as_its_json(value: Any, tmp_path: Path) -> None:
    path = write_env(tmp_path / "config.env", {"nested": value})
    [got] = source(path, "NESTED")
    assert json.loads(got) == value


def test_a_string_with_a_nul_character_is_refused_naming_the_key(tmp_path: Path) -> None:
    """No shell variable holds a NUL: refused rather than cut short. Inside a nested
    value it is JSON's ``\\u0000`` and comes back as such."""
    with pytest.raises(RenderError, match=r"the value of 'bad' holds a NUL character"):
        render(FileFormat.ENV, "web/0", {"bad": "a\x00b"}, HASH)
    path = write_env(tmp_path / "config.env", {"deep": {"x": "a\x00b"}})
    [got] = source(path, "DEEP")
    assert got == b'{"x": "a\\u0000b"}' and json.loads(got) == {"x": "a\x00b"}


def test_keys_that_make_one_variable_are_refused_naming_both() -> None:
    with pytest.raises(
        RenderError, match=r"keys 'log-level' and 'log_level' both become the variable LOG_LEVEL"
    ):
        render(FileFormat.ENV, "web/0", {"log-level": "a", "log_level": "b"}, HASH)


def test_variable_names_are_names_a_shell_accepts(tmp_path: Path) -> None:
    config = {"2fa": "on", "log-level": "debug", "café.mode": "x", "a b": "y"}
    assert [env_name(k) for k in config] == ["_2FA", "LOG_LEVEL", "CAF__MODE", "A_B"]
    for name in map(env_name, config):
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name)
    path = write_env(tmp_path / "config.env", config)
    assert source(path, "_2FA", "LOG_LEVEL", "CAF__MODE", "A_B") == [b"on", b"debug", b"x", b"y"]
