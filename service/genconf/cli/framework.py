"""What every `genconf` command is built from: the context a handler gets, the
parser building blocks (common options, `Commands`, argument types) and the
helpers the command groups share.

Adding a command: write ``async def handler(ctx: Ctx, args) -> int | None`` that
uses ``ctx.client`` and prints through ``ctx.out.emit(data, render)`` (data from
`genconf.shapes`, drawn by `genconf.cli.render`), then declare it as a
``Command(...)`` (its arguments as data: plain names, `arg(...)` and the shared
options such as `force`) in ``commands.add_all(...)`` in the ``register`` function
of its group's module (`genconf.cli.app`, ...), which
`genconf.cli.main.build_parser` calls. Settings, output format, colour and error
mapping are shared.
"""

from __future__ import annotations

import argparse
import getpass
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from genconf import shapes
from genconf.cli import render
from genconf.cli.output import ColorMode, Format, Output
from genconf.cli.settings import Settings
from genconf.client import Client, WriteResult
from genconf.domain.schema import json_or_text


@dataclass
class Ctx:
    """What a command handler gets: settings, output, and a client made on first use."""

    settings: Settings
    out: Output
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(
                s.server,
                token=s.token,
                tls_ca=s.tls_ca,
                insecure_plaintext=s.insecure_plaintext,
                tls_server_name=s.tls_server_name,
            )
        return self._client

    async def settled(self, written: WriteResult) -> WriteResult:
        """Return once the server has applied ``written`` to its cache, so the next
        command (another process) reads it: read-your-writes across commands."""
        await self.client.list_branches(min_revision=written.revision)
        return written

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


Handler = Callable[[Ctx, argparse.Namespace], Awaitable[int | None]]


def user() -> str:
    """Who is writing, as the client says (``created_by``): with authentication on,
    the server records the caller's token instead and keeps this as on_behalf_of."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# -- parser building blocks ------------------------------------------------------


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts, before or after the subcommand. Defaults are
    SUPPRESS so a value given before the subcommand is not reset after it; the real
    defaults come from `genconf.cli.settings.resolve`."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection and output")
    s = argparse.SUPPRESS
    g.add_argument("--server", default=s, help="server host:port (env GENCONF_SERVER)")
    g.add_argument("--token", default=s, help="bearer token sent on every call (GENCONF_TOKEN)")
    g.add_argument("--tls-ca", default=s, help="CA file: connect with TLS (GENCONF_TLS_CA)")
    g.add_argument(
        "--tls-server-name",
        default=s,
        metavar="NAME",
        help="check the server certificate against NAME instead of the host dialled, e.g. "
        "through kubectl port-forward (GENCONF_TLS_SERVER_NAME)",
    )
    g.add_argument(
        "--insecure-plaintext",
        action="store_true",
        default=s,
        help="trusted network only: send the token without TLS to a non-loopback server "
        "(GENCONF_INSECURE_PLAINTEXT); for serve, accept tokens without TLS off loopback",
    )
    g.add_argument(
        "-o", "--output", default=s, choices=[f.value for f in Format], help="output format"
    )
    g.add_argument(
        "--color", default=s, choices=[c.value for c in ColorMode], help="colour (auto: on a TTY)"
    )
    g.add_argument("--config", default=s, help="config file (GENCONF_CONFIG)")
    g.add_argument("--log-level", default=s, help="debug, info, warning, error")
    return common


@dataclass(frozen=True)
class Arg:
    """One argument of a command, declared as data: what ``add_argument`` takes."""

    names: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    return Arg(names, options)


# The options several commands share; their help says what they do for that command.


def force(help: str) -> Arg:
    return arg("--force", action="store_true", help=help)


def reason(help: str = "why: recorded with the change", default: str | None = None) -> Arg:
    return arg("--reason", default=default, help=help)


def expected_version(
    help: str = "refuse unless master is still at this version (optimistic locking)",
) -> Arg:
    return arg("--expected-version", type=int, default=None, metavar="N", help=help)


def meta(
    help: str = "metadata kept with the new version; VALUE is JSON when it reads as JSON",
) -> Arg:
    """``--meta KEY=VALUE``, repeatable: read with `metadata_of`."""
    return arg(
        "--meta", action="append", type=assignment, default=[], metavar="KEY=VALUE", help=help
    )


def metadata_of(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``--meta`` pairs as metadata: ``ticket=42`` is the number, ``by=ann`` the text."""
    return {key: json_or_text(value) for key, value in pairs}


def apps(help: str) -> Arg:
    """``--app``, repeatable."""
    return arg("--app", action="append", help=help)


# The help of a positional argument declared by its plain name (see `Commands.add`);
# ``name`` is the name of what the command's group is about.
POSITIONAL_HELP: Final[Mapping[str, str]] = {
    "application": "the application",
    "unit": "the unit, APP/N",
    "units": "units, APP/N (one or more)",
    "key": "the config key",
    "keys": "config keys (one or more)",
    "values": "KEY=VALUE pairs (one or more)",
    "charm": "the charm name",
    "label": "a version label, MAJOR.MINOR.PATCH",
    "part": "which part of the label to raise: major, minor or patch",
    "id": "its id",
    "changes": "KEY=VALUE to set a label, KEY- to remove one",
}
GROUP_NOUNS: Final[Mapping[str, str]] = {"app": "application", "token": "token"}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written, and every option's default in its help
    (unless the help already says it, or there is none worth saying)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or "default" in text or "%(default)" in text:
            return text
        if action.default in (None, "", False, [], (), argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


@dataclass(frozen=True)
class Command:
    """A subcommand declared as data, for `Commands.add_all`; the fields are those
    of `Commands.add`."""

    name: str
    handler: Handler | None
    help: str
    examples: Sequence[str] = ()
    arguments: Sequence[str | Arg] = ()
    description: str | None = None


class Commands:
    """Adds subcommands that all take the common options and show examples in --help."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser, prefix: str = "genconf") -> None:
        self.sub = sub
        self.common = common
        self.prefix = prefix

    def add(
        self,
        name: str,
        handler: Handler | None,
        *,
        help: str,
        description: str | None = None,
        examples: Sequence[str] = (),
        arguments: Sequence[str | Arg] = (),
    ) -> argparse.ArgumentParser:
        """A subcommand; ``arguments`` are its arguments in order: a name (a plain
        positional argument) or an `arg`."""
        epilog = None
        if examples:
            lines = (f"  {self.prefix} {name} {e}".rstrip() for e in examples)
            epilog = "Examples:\n" + "\n".join(lines)
        parser: argparse.ArgumentParser = self.sub.add_parser(
            name,
            help=help,
            description=description or help[0].upper() + help[1:] + ".",
            epilog=epilog,
            parents=[self.common],
            formatter_class=HelpFormatter,
        )
        parser.set_defaults(func=handler)
        for argument in arguments:
            a = arg(argument) if isinstance(argument, str) else argument
            options = dict(a.options)
            if "help" not in options and not a.names[0].startswith("-"):
                options["help"] = self._positional_help(a.names[0])
            parser.add_argument(*a.names, **options)
        return parser

    def _positional_help(self, name: str) -> str:
        if name == "name":
            group = self.prefix.split()[-1]
            return f"the {GROUP_NOUNS.get(group, group)}'s name"
        return POSITIONAL_HELP.get(name, "")  # tests/cli/test_help_text.py wants one

    def add_all(self, *commands: Command) -> None:
        for c in commands:
            self.add(
                c.name,
                c.handler,
                help=c.help,
                description=c.description,
                examples=c.examples,
                arguments=c.arguments,
            )

    def group(self, name: str, *, help: str, examples: Sequence[str] = ()) -> Commands:
        """A command whose subcommands (its actions) are added to what it returns."""
        parser = self.add(name, None, help=help, examples=examples)
        sub = parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")
        return Commands(sub, self.common, f"{self.prefix} {name}")


def assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


DURATION_RE: Final = re.compile(r"^(\d+)([smhdw])$")
SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    match = DURATION_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 12h or 30d, got {text!r}")
    return int(match[1]) * SECONDS[match[2]]


# -- shared helpers ------------------------------------------------------------------


def written(ctx: Ctx, w: WriteResult, text: str) -> None:
    """A write's result: the WriteResult for machines, one sentence for people."""
    ctx.out.emit(shapes.write_view(w), render.render_text(text))


def versions_text(w: WriteResult) -> str:
    """`` (web is at version 4, generation 9)``: where a write left master."""
    parts = [f"{app} is at version {v}" for app, v in sorted(w.versions.items())]
    if w.generation:
        parts.append(f"generation {w.generation}")
    return f" ({', '.join(parts)})" if parts else ""
