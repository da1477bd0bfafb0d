"""`genconf completion bash|zsh`: the scripts, sourced in the real shells, offer what
the real parser has (commands, actions, options, choices), a command added to the
parser included, with no word list kept by hand.

bash runs the generated `_genconf` with COMP_WORDS set, as bash's completion does.
zsh loads the script through compinit (sourced, and autoloaded from ``$fpath``); its
`compadd`/`_describe`/`_files` only work inside a completion widget, so the tests
replace them with functions printing the words they are given (zsh itself filters
those by the typed prefix).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli_runner import clean_env

from genconf.cli import completion
from genconf.cli.main import build_parser

# The zsh stand-ins for completion builtins, which print the words they would offer.
ZSH_STUBS = r"""
compadd() { print -rl -- "${@[${@[(i)--]}+1,-1]}"; }
_describe() { local -a e; e=("${(@P)4}"); print -rl -- "${e[@]%%:*}"; }
_files() { print -r -- "<files>"; }
"""


def genconf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `genconf` command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "genconf.cli.main", *args],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``genconf completion bash`` and ``... zsh``, as printed, saved to files."""
    tmp = tmp_path_factory.mktemp("completion")
    saved = {}
    for shell in completion.SHELLS:
        run = genconf(tmp, "completion", shell)
        assert run.returncode == 0, run.stderr
        saved[shell] = tmp / f"genconf.{shell}"
        saved[shell].write_text(run.stdout)
    return saved


@pytest.fixture(scope="module")
def zsh() -> str:
    """zsh, installed from Debian's packages when the machine lacks it (a few
    seconds, once per machine; as root, else with sudo, as the Makefile does)."""
    found = shutil.which("zsh")
    if found is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends"]
        install += ["-o", "DPkg::Lock::Timeout=120", "zsh"]
        quiet = {"capture_output": True, "text": True, "timeout": 300}
        if subprocess.run(install, **quiet).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, **quiet)
            subprocess.run(install, check=True, **quiet)
        found = shutil.which("zsh")
    assert found is not None, "zsh did not install"
    return found


def bash_complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the command line ``genconf WORDS`` (the last word is the
    one at the cursor: "" after a space)."""
    program = (
        'source "$1"; shift; COMP_WORDS=(genconf "$@"); COMP_CWORD=$#; _genconf; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    run = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program, "bash", str(script), *words],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    return [w for w in run.stdout.splitlines() if w]


def zsh_complete(zsh: str, script: Path, home: Path, *words: str) -> list[str]:
    """What zsh's `_genconf` offers for ``genconf WORDS``, before prefix filtering."""
    program = (
        "autoload -U compinit && compinit -u -D\n"
        'source "$1"; shift\n'
        f"{ZSH_STUBS}\n"
        'words=(genconf "$@"); CURRENT=${#words}\n'
        "_genconf\n"
    )
    run = subprocess.run(
        [zsh, "-f", "-c", program, "zsh", str(script), *words],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=30,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    return [w for w in run.stdout.splitlines() if w]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings}


def choices_of(parser: argparse.ArgumentParser, option: str) -> list[str]:
    return next(list(a.choices or ()) for a in parser._actions if option in a.option_strings)


def every_parser() -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    """(words after genconf, parser) for genconf and each of its commands and actions."""
    stack: list[tuple[list[str], argparse.ArgumentParser]] = [([], build_parser())]
    while stack:
        path, parser = stack.pop()
        yield path, parser
        stack += [([*path, name], sub) for name, sub in subparsers(parser).items()]


# -- bash --------------------------------------------------------------------------------


def test_bash_completes_commands_actions_options_and_choices(scripts: dict[str, Path]) -> None:
    bash = scripts["bash"]
    assert bash_complete(bash, "br") == ["branch"]
    assert sorted(bash_complete(bash, "branch", "commit", "--re")) == [
        "--reason",
        "--require-applied",
    ]
    formats = choices_of(build_parser(), "-o")
    assert {"table", "json", "yaml"} <= set(formats)
    assert bash_complete(bash, "-o", "") == formats
    assert bash_complete(bash, "config", "get", "web/0", "--output", "j") == ["json"]
    assert bash_complete(bash, "branch", "") == list(
        subparsers(subparsers(build_parser())["branch"])
    )
    # Positional choices, counted past option values: `bump APP major|minor|patch`.
    assert bash_complete(bash, "version", "bump", "--version", "3", "web", "") == [
        "major",
        "minor",
        "patch",
    ]
    assert bash_complete(bash, "completion", "") == ["bash", "zsh"]


def test_bash_skips_option_values_before_the_command(scripts: dict[str, Path]) -> None:
    bash = scripts["bash"]
    # The value of --server is not a command; --color=never is one word; bash splits
    # --output=json into three at the '='.
    assert bash_complete(bash, "--server", "127.0.0.1:1", "--color=never", "br") == ["branch"]
    assert bash_complete(bash, "--output", "=", "json", "unit", "li") == ["list"]
    assert bash_complete(bash, "--output", "=", "ya") == ["yaml"]


def test_bash_leaves_free_values_to_file_names(scripts: dict[str, Path]) -> None:
    bash = scripts["bash"]
    assert bash_complete(bash, "config", "set", "web", "--values", "") == []
    assert bash_complete(bash, "app", "show", "") == []  # application names: not offered
    run = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", 'source "$1"; complete -p genconf', "bash", bash],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Where the script offers nothing, bash completes file names (`-o default`).
    assert run.stdout.strip() == "complete -o default -F _genconf genconf", run.stderr


def test_bash_offers_every_command_and_option_of_the_parser(scripts: dict[str, Path]) -> None:
    """All levels at once, in one bash: ``genconf PATH -`` offers exactly the options of
    that parser, and ``genconf PATH ""`` its commands or actions."""
    cases = list(every_parser())
    lines = [f'source "{scripts["bash"]}"']
    for path, _ in cases:
        for last in ("-", ""):
            words = " ".join(f"'{w}'" for w in [*path, last])
            lines.append(
                f"COMP_WORDS=(genconf {words}); COMP_CWORD={len(path) + 1}; _genconf; "
                'echo "${COMPREPLY[*]}"'
            )
    run = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    offered = iter(run.stdout.split("\n"))
    for path, parser in cases:
        options, commands = next(offered).split(), next(offered).split()
        assert set(options) == option_strings(parser), path
        assert commands == list(subparsers(parser)) or not subparsers(parser), path
    assert len(cases) > 40  # genconf, its commands, their actions


def test_a_new_command_completes_without_touching_the_completion_module(
    tmp_path: Path,
) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    added = sub.add_parser("frobnicate", help="a command this test adds")
    added.add_argument("--level", choices=["low", "high"])
    added.add_argument("--dry-run", action="store_true")
    added.add_argument("mode", choices=["fast", "slow"])
    script = tmp_path / "genconf.bash"
    script.write_text(completion.bash_script(parser))
    assert bash_complete(script, "frob") == ["frobnicate"]
    assert bash_complete(script, "frobnicate", "--") == ["--help", "--level", "--dry-run"]
    assert bash_complete(script, "frobnicate", "--level", "") == ["low", "high"]
    assert bash_complete(script, "frobnicate", "--dry-run", "") == ["fast", "slow"]


# -- zsh ---------------------------------------------------------------------------------


def test_zsh_completes_commands_actions_options_and_choices(
    zsh: str, scripts: dict[str, Path], tmp_path: Path
) -> None:
    def offered(*words: str) -> list[str]:
        return zsh_complete(zsh, scripts["zsh"], tmp_path, *words)

    parser = build_parser()
    assert offered("br") == list(subparsers(parser))  # zsh then keeps those starting "br"
    commit = subparsers(subparsers(parser)["branch"])["commit"]
    assert set(offered("branch", "commit", "--re")) == option_strings(commit)
    assert {"--reason", "--require-applied"} <= set(offered("branch", "commit", "--re"))
    assert offered("-o", "") == choices_of(parser, "-o")
    assert offered("--server", "127.0.0.1:1", "version", "bump", "web", "") == [
        "major",
        "minor",
        "patch",
    ]
    assert offered("config", "set", "web", "--values", "") == ["<files>"]


def test_zsh_registers_the_function_sourced_and_from_fpath(
    zsh: str, scripts: dict[str, Path], tmp_path: Path
) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    shutil.copy(scripts["zsh"], functions / "_genconf")
    program = (
        f"fpath=({functions} $fpath); autoload -U compinit && compinit -u -D\n"
        'print -r -- "fpath: $_comps[genconf]"\n'
        f'unset "_comps[genconf]"; source {scripts["zsh"]}\n'
        'print -r -- "sourced: $_comps[genconf]"\n'
        "_genconf_described 'branch' commands\n"
    )
    run = subprocess.run(
        [zsh, "-f", "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=30,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["fpath: _genconf", "sourced: _genconf"]
    # Each action with its help, for zsh's list.
    assert "commit:apply a branch's changes to master for every unit" in lines[2:], lines


def test_both_scripts_parse(zsh: str, scripts: dict[str, Path]) -> None:
    assert subprocess.run(["bash", "-n", scripts["bash"]], capture_output=True).returncode == 0
    assert subprocess.run([zsh, "-n", scripts["zsh"]], capture_output=True).returncode == 0


# -- the command -------------------------------------------------------------------------


def test_completion_help_says_how_to_install_and_a_bad_shell_is_usage(tmp_path: Path) -> None:
    helped = genconf(tmp_path, "completion", "--help")
    assert helped.returncode == 0
    assert "source <(genconf completion bash)" in helped.stdout
    assert "source <(genconf completion zsh)" in helped.stdout
    bad = genconf(tmp_path, "completion", "fish")
    assert bad.returncode == 2
    assert "invalid choice: 'fish'" in bad.stderr and "zsh" in bad.stderr, bad.stderr
