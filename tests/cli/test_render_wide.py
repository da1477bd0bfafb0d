"""The people's tables without a server: `-o wide` on every table, fitting a
terminal's width, and one word for one fact (`genconf.cli.output`, `genconf.cli.render`)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from genconf.cli import render
from genconf.cli.output import (
    ANSI_RE,
    CELL_WIDTH_ON_TTY,
    Format,
    Output,
    Renderer,
    Style,
    fit_widths,
    shorten,
    visible_len,
    wrap,
)
from genconf.cli.settings import resolve

TODAY = "2020-01-02T03:04:05.678901Z"  # any ISO time: tables show it short, wide in full
AUTHOR = {"created_by": "ann", "on_behalf_of": None, "authenticated": False}
LONG = "a long value " * 20


def out_for(
    fmt: Format = Format.TABLE, *, width: int | None = None, terminal: bool = False
) -> Output:
    return Output(fmt, False, io.StringIO(), terminal, width)


def lines(renderer: Renderer, out: Output) -> list[str]:
    return list(renderer(out))


def header_of(text: list[str], first: str) -> list[str]:
    """The header line of the table whose first column is ``first``, as its column names."""
    line = next(x for x in text if x.startswith(first))
    return [h.strip() for h in re.split(r"  +", line.strip())]


APP = {
    "name": "web",
    "charm": "web",
    "version": 3,
    "units": ["web/0", "web/1"],
    "schema": {
        "port": {"type": "int", "default": 8080, "description": "port", "secret": False},
        "motd": {"type": "string", "default": None, "description": LONG, "secret": True},
        "name": {"type": "string", "default": None, "description": "", "secret": False},
    },
    "settings": {"motd": LONG},
    "effective": {"port": 8080, "motd": LONG},
}
UNIT = {
    "name": "web/0",
    "application": "web",
    "branch": "canary",
    "applied": {"hash": "ab" * 32, "ok": True, "message": "restarted", "at": TODAY},
}
BRANCH = {
    "name": "canary",
    **AUTHOR,
    "created_at": TODAY,
    "track_applications": ["db"],
    "units": ["web/0"],
    "changes": {
        "web": {
            "motd": {"op": "set", "value": "hi", "from": None},
            "port": {"op": "unset", "value": None, "from": 9090},
        }
    },
}
VERSION = {
    "application": "web",
    "version": 2,
    "settings": {"port": 9090, "motd": LONG},
    "metadata": {"ticket": "OPS-1"},
    "timestamp": TODAY,
    "reason": "tune",
    **AUTHOR,
    "previous_version": 1,
    "generation": 7,
    "tags": ["1.0.0"],
}
FIRST = {**VERSION, "version": 1, "settings": {}, "previous_version": None, "generation": 1}
GENERATION = {
    "id": 7,
    "kind": "commit",
    "branch": "canary",
    "changes": {"web": {"port": {"from": 80, "to": 90}, "motd": {"from": None, "to": "hi"}}},
    **AUTHOR,
    "created_at": TODAY,
    "reason": "ship",
    "versions": {"web": 2},
}
KEY_HISTORY = [
    {
        "version": 2,
        "value": None,
        "is_default": False,
        "created_by": "ann",
        "timestamp": TODAY,
        "reason": "unset",
        "generation": 7,
    }
]
TOKEN = {
    "id": "tok1",
    "name": "ci",
    "role": "agent",
    "unit": "web/0",
    "unit_uid": "u-123",
    "created_by": "bootstrap admin",
    "created_at": TODAY,
    "expires_at": TODAY,
    "revoked": False,
    "description": "deploys",
}

# Every table renderer, its first column and the columns only `-o wide` adds.
TABLES: list[tuple[str, Callable[[], Renderer], str, set[str]]] = [
    ("applications", lambda: render.render_applications([APP]), "NAME", {"UNIT NAMES", "SETTINGS"}),
    ("application", lambda: render.render_application(APP), "KEY", {"SOURCE", "SECRET"}),
    ("units", lambda: render.render_units([UNIT]), "UNIT", {"REPORTED"}),
    (
        "config",
        lambda: render.render_config([("port", 8080, "default")], [("unit", "web/0")]),
        "KEY",
        {"TYPE"},
    ),
    ("branches", lambda: render.render_branches([BRANCH]), "BRANCH", {"CREATED", "KEYS"}),
    ("branch", lambda: render.render_branch(BRANCH), "APPLICATION", {"SEEN BY"}),
    (
        "versions",
        lambda: render.render_versions([VERSION, FIRST]),
        "VERSION",
        {"PREVIOUS", "GENERATION", "METADATA"},
    ),
    ("version", lambda: render.render_version(VERSION), "KEY", {"TYPE"}),
    ("key history", lambda: render.render_key_history(KEY_HISTORY), "VERSION", {"GENERATION"}),
    ("generations", lambda: render.render_generations([GENERATION]), "ID", {"CHANGES"}),
    ("generation", lambda: render.render_generation(GENERATION), "APPLICATION", {"CHANGE"}),
    ("tokens", lambda: render.render_tokens([TOKEN]), "ID", {"UNIT UID", "CREATED BY"}),
]


@pytest.mark.parametrize(
    ("make", "first", "extra"), [t[1:] for t in TABLES], ids=[t[0] for t in TABLES]
)
def test_every_table_has_more_columns_in_wide(
    make: Callable[[], Renderer], first: str, extra: set[str]
) -> None:
    table = header_of(lines(make(), out_for()), first)
    wide = header_of(lines(make(), out_for(Format.WIDE)), first)
    assert extra <= set(wide), wide
    assert not extra & set(table), table
    assert [h for h in wide if h in table] == table, "wide adds columns, keeps the others"


@pytest.mark.parametrize("make", [t[1] for t in TABLES], ids=[t[0] for t in TABLES])
def test_wide_on_a_terminal_is_never_cut(make: Callable[[], Renderer]) -> None:
    """However narrow the terminal: the same lines as piped."""
    assert lines(make(), out_for(Format.WIDE, width=40, terminal=True)) == lines(
        make(), out_for(Format.WIDE)
    )


def test_wide_is_for_people_and_its_times_are_whole() -> None:
    out = out_for(Format.WIDE)
    assert not out.machine and out.wide
    assert resolve({"output": "wide"}, env={}).output is Format.WIDE
    text = "\n".join(lines(render.render_versions([VERSION, FIRST]), out))
    assert TODAY in text and LONG.strip() in text, "a full time, every value in full"
    table = "\n".join(lines(render.render_versions([VERSION, FIRST]), out_for()))
    assert TODAY not in table and "2020-01-02" in table and "…" in table
    tokens = "\n".join(lines(render.render_tokens([TOKEN]), out_for()))
    assert TODAY not in tokens and tokens.count("2020-01-02") == 2, "CREATED and EXPIRES short"


def test_wide_output_is_the_rendering() -> None:
    stream = io.StringIO()
    Output(Format.WIDE, stream=stream).emit({"x": 1}, render.render_tokens([TOKEN]))
    assert stream.getvalue().startswith("ID  ") and "UNIT UID" in stream.getvalue()


# -- one word for one fact --------------------------------------------------------


def test_a_missing_value_reads_dash_in_cells_and_absent_in_text() -> None:
    out = out_for()
    # A key master did not hold, staged on a branch: FROM is "-".
    branch = lines(render.render_branch(BRANCH), out)
    assert ["web", "motd", "set", "hi", "-"] in [line.split() for line in branch]
    # ... in the branch's diff: the sign says it, and a conflict says "absent".
    diff = {
        "branch": "canary",
        "revision": 1,
        "applications": [
            {
                "application": "web",
                "entries": [
                    {"path": "motd", "kind": "added", "old": None, "new": "hi", "text_diff": ""}
                ],
                "conflicts": [
                    {
                        "application": "web",
                        "key": "motd",
                        "from": "absent",
                        "current": '"x"',
                        "proposed": '"hi"',
                    }
                ],
            }
        ],
    }
    assert lines(render.render_diff(diff), out) == [
        "web:",
        "  + motd: hi",
        '  ! conflict on motd: branch started from absent, master is now "x"',
    ]
    # A version diff of an added and a removed key.
    entries = [
        {"path": "motd", "kind": "added", "old": None, "new": "hi", "text_diff": ""},
        {"path": "tls", "kind": "removed", "old": True, "new": None, "text_diff": ""},
    ]
    version_diff = {"summary": "web 1 -> 2: 0 changed, 1 added, 1 removed", "entries": entries}
    assert lines(render.render_version_diff(version_diff), out)[1:] == [
        "  + motd: hi",
        "  - tls: true",
    ]
    # CHANGES of an added and a removed key.
    assert render.changes_text({"tls": True}, {"motd": "hi"}) == "+motd=hi -tls"
    # A key with no value in `config get`, and in `app show`, and in key history.
    config = lines(render.render_config([("name", None, "default")], [("unit", "web/0")]), out)
    assert ["name", "-", "default"] in [line.split() for line in config]
    app = [line.split() for line in lines(render.render_application(APP), out)]
    assert ["name", "string", "-", "-", "-"] in app, "no default, no value, no description"
    history = lines(render.render_key_history(KEY_HISTORY), out)
    assert history[1].split()[:3] == ["2", "-", "set"]
    # A generation's FROM of a key that was not there.
    generation = [line.split() for line in lines(render.render_generation(GENERATION), out)]
    assert ["web", "motd", "-", "hi"] in generation
    assert "absent" in render.__doc__ and "``-``" in render.__doc__, "written down"


def test_an_open_application_shows_the_keys_its_schema_does_not_declare() -> None:
    app = {
        **APP,
        "schema": {"*": {"type": "any", "default": None, "description": "", "secret": False}},
        "settings": {"model": "gpt"},
        "effective": {"model": "gpt"},
    }
    rows = [line.split() for line in lines(render.render_application(app), out_for())]
    assert ["model", "any", "-", "gpt", "-"] in rows


# -- fitting a terminal -----------------------------------------------------------


def test_fit_widths_narrows_the_widest_cuttable_columns_first() -> None:
    # Columns 1 and 2 may be cut; 0 and 3 never. Gaps: 3 * 2.
    assert fit_widths([5, 50, 30, 8], [5, 10, 10, 8], {1, 2}, 200) == [5, 50, 30, 8]
    assert fit_widths([5, 50, 30, 8], [5, 10, 10, 8], {1, 2}, 85) == [5, 36, 30, 8]
    assert fit_widths([5, 50, 30, 8], [5, 10, 10, 8], {1, 2}, 72) == [5, 27, 26, 8], "all room"
    assert fit_widths([5, 50, 30, 8], [5, 10, 10, 8], {1, 2}, 71) == [5, 26, 26, 8], "level"
    assert fit_widths([5, 50, 30, 8], [5, 10, 10, 8], {1, 2}, 10) == [5, 10, 10, 8], "floors"
    assert fit_widths([50, 50], [10, 10], set(), 20) == [50, 50], "nothing may be cut"


def test_shorten_keeps_colour_and_ends_in_an_ellipsis() -> None:
    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abcdef", 4) == "abc…"
    coloured = Style(True).yellow("abcdef")
    cut = shorten(coloured, 4)
    assert ANSI_RE.sub("", cut) == "abc…" and visible_len(cut) == 4
    assert cut.startswith("\x1b[33m") and cut.endswith("\x1b[0m")


def test_wrap_breaks_at_spaces_and_keeps_long_words() -> None:
    assert wrap("web/0, web/1, web/2", 13) == ["web/0, web/1,", "web/2"]
    assert wrap("x" * 20 + " y", 10) == ["x" * 20, "y"]
    assert wrap("one\ntwo", 80) == ["one", "two"]


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_table_on_a_terminal_fits_and_never_cuts_a_name(width: int) -> None:
    out = out_for(width=width, terminal=True)
    text = lines(render.render_application(APP), out)
    assert all(visible_len(line) <= width for line in text), text
    rows = [line.split()[:2] for line in text[6:]]
    assert ["motd", "string"] in rows and ["port", "int"] in rows
    assert any("…" in line for line in text)


def test_a_terminal_of_unknown_width_cuts_cells_at_a_fixed_width() -> None:
    out = out_for(width=None, terminal=True)
    text = lines(render.render_config([("motd", LONG, "master")], [("unit", "web/0")]), out)
    cut = LONG[: CELL_WIDTH_ON_TTY - 1] + "…"
    assert text[-1] == f"motd  {cut}  master"


def test_a_newline_in_a_cell_on_a_terminal_keeps_the_row_on_one_line() -> None:
    rows = [("prompt", "one\ntwo", "master")]
    on_terminal = lines(render.render_config(rows, []), out_for(width=80, terminal=True))
    assert on_terminal[-1].split() == ["prompt", "one⏎two", "master"]
    piped = lines(render.render_config(rows, []), out_for())
    assert "one\ntwo" in piped[-1], "piped: exactly as it is"


def test_fields_wrap_on_a_terminal_and_are_never_cut() -> None:
    units = [f"web/{i}" for i in range(30)]
    app: dict[str, Any] = {**APP, "units": units}
    text = lines(render.render_application(app), out_for(width=50, terminal=True))
    head = text[: text.index("")]
    assert all(visible_len(line) <= 50 for line in head), head
    assert " ".join(" ".join(head).split()).count("web/") == 30
    assert all(line.startswith(" " * len("application:  ")) for line in head[4:])
