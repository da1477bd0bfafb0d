"""The `genconf` command: the server, every controller operation, the admin feed and
a reference unit agent, over the Python client.

Exit codes scripts can rely on: 0 ok; 1 the operation failed (an error from the
server, a local file that cannot be read or used, or `serve` refusing to start:
no authentication on a non-loopback address, or tokens there without TLS or
--insecure-plaintext, an empty admin token; or a client refusing to send a token
in clear off loopback), with
``error: <message>`` on stderr; 2 usage (a bad flag or argument, a malformed
config file).

Each command group lives in a module of its own (`genconf.cli.serve`,
`genconf.cli.app`, ...) with a ``register(commands)`` that `build_parser` calls;
how to write one is in `genconf.cli.framework`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import version
from typing import Any

import anyio
import grpc

from genconf.cli import (
    agent,
    app,
    bench,
    branch,
    completion,
    config,
    history,
    rollout,
    serve,
    status,
    tokens,
    transfer,
    unit,
    watch,
)
from genconf.cli.framework import Commands, Ctx, Handler, common_options
from genconf.cli.messages import in_cli_words, unavailable_hint
from genconf.cli.output import ColorMode, Output
from genconf.cli.settings import Settings, resolve
from genconf.errors import ClientError, ConfigFileError, GenconfError, UsageError
from genconf.logs import json_line, setup_logging

# In the order `genconf --help` lists them.
COMMAND_GROUPS = (
    serve,
    app,
    unit,
    config,
    branch,
    rollout,
    status,
    history,
    transfer,
    tokens,
    watch,
    agent,
    bench,
)

EXAMPLES = """\
Examples:
  genconf app create web --schema config.yaml --units 3
  genconf config set web port=9090 --reason 'new port'
  genconf branch add canary && genconf branch track canary web/0
  genconf config set web log-level=debug --branch canary
  genconf branch diff canary && genconf branch commit canary
  genconf agent --unit web/0 --write /tmp/web-0.json --exec 'echo reload'
  genconf watch -o json

Settings: --server/--token/--tls-ca, else GENCONF_SERVER/GENCONF_TOKEN/
GENCONF_TLS_CA, else the config file (~/.config/genconf/config.yaml).
Exit codes: 0 ok, 1 the operation failed (message on stderr), 2 usage.
"""


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="genconf",
        description="Configuration service for fleets of application units.",
        epilog=EXAMPLES,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"genconf {version('genconf')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(sub, common)
    for group in COMMAND_GROUPS:
        group.register(commands)
    completion.register(commands, parser)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "server",
        "token",
        "tls_ca",
        "tls_server_name",
        "output",
        "config",
        "insecure_plaintext",
    )
    return {name: getattr(args, name, None) for name in names}


async def _run(handler: Handler, ctx: Ctx, args: argparse.Namespace) -> int:
    try:
        return int(await handler(ctx, args) or 0)
    finally:
        await ctx.aclose()


def _fail(message: str, code: int, *, as_json: bool = False) -> int:
    """``as_json``: a server run with ``--log-format json`` ends with a JSON line too."""
    if as_json:
        print(json_line(message, level="error", exit_code=code), file=sys.stderr)
        return code
    prefix = "error: " if code == 1 else "genconf: error: "
    print(prefix + message, file=sys.stderr)
    return code


def _single(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _exit_code(exc: BaseException, settings: Settings, *, as_json: bool = False) -> int | None:
    """The exit code for an exception a command ended with; None: not ours to map."""
    if isinstance(exc, UsageError):
        return _fail(str(exc), 2, as_json=as_json)
    if isinstance(exc, ClientError):
        # The server's status names the kind of failure for scripts: NOT_FOUND: ...
        message = in_cli_words(exc.message)
        code = _fail(f"{exc.code.name}: {message}" if message else exc.code.name, 1)
        if exc.code == grpc.StatusCode.UNAVAILABLE:
            print(unavailable_hint(settings.server, settings.tls_ca), file=sys.stderr)
        return code
    if isinstance(exc, GenconfError):
        return _fail(exc.message, 1, as_json=as_json)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`genconf watch | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:  # as basicConfig did: a configured root stays
        setup_logging(getattr(args, "log_level", None) or "info")
    if args.command == "bench":
        return bench.run(args)
    as_json = getattr(args, "log_format", "text") == "json"
    try:
        settings = resolve(_flags(args))
    except ConfigFileError as exc:
        return _fail(str(exc), 2, as_json=as_json)
    out = Output.for_stream(settings.output, ColorMode(getattr(args, "color", None) or "auto"))
    ctx = Ctx(settings, out)
    try:
        return int(anyio.run(_run, args.func, ctx, args))
    except BaseException as exc:
        code = _exit_code(_single(exc), settings, as_json=as_json)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
