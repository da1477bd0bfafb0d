"""Every option and argument of every command has help, and every option with a
default worth knowing shows it in ``--help``."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator

import pytest

from genconf.cli.main import build_parser


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command path, parser) for every command and action."""

    def walk(
        path: str, parser: argparse.ArgumentParser
    ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(f"{path} {name}", sub)

    yield from walk("genconf", build_parser())


def quiet(value: object) -> bool:
    return value in (None, "", False, [], (), argparse.SUPPRESS)


COMMANDS = list(parsers())


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_has_help_and_shows_its_default(
    path: str, parser: argparse.ArgumentParser
) -> None:
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{path}: {name} has no help"
        if isinstance(action, (argparse._StoreTrueAction, argparse._VersionAction)):
            continue
        if action.option_strings and not quiet(action.default):
            shown = formatter._expand_help(action)
            assert "default" in shown, f"{path}: {name} hides its default {action.default!r}"


def test_a_default_reads_as_people_write_it() -> None:
    serve = dict(COMMANDS)["genconf serve"].format_help()
    assert "(default: .genconf-data)" in serve and "(default: 127.0.0.1:50051)" in serve
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--help"])
    assert "seconds before CMD is killed (default: 300" in " ".join(out.getvalue().split())
