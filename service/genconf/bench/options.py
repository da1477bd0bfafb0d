"""The command line every agent-facing workload shares: its options, and running
one workload from them (exit 2 when the run fails, 1 when ``--check`` is given and
a target is missed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from pymongo.errors import PyMongoError

from genconf.api.server import ServerConfig
from genconf.bench.figures import Report
from genconf.bench.processes import AGENTS_MODULE
from genconf.errors import BenchError, GenconfError

DEFAULT_BOOKMARK_INTERVAL: Final = ServerConfig.bookmark_interval  # the server's default
STEADY_BOOKMARKS_HELP: Final = "the started server's (s): bookmarks are part of the steady state"

# What a failed run raises (beside BenchError): printed, exit 2.
ERRORS: Final = (
    ValueError,
    RuntimeError,
    TimeoutError,
    OSError,
    GenconfError,
    PyMongoError,
    grpc.aio.AioRpcError,
)


@dataclass
class Options:
    """What every agent-facing workload takes on its command line."""

    streams: int
    workers: int = 2
    channels: int = 8
    repeat: int = 3
    server: str | None = None  # target this server instead of starting one
    mongo_uri: str | None = None  # use this replica set instead of an embedded mongod
    database: str | None = None  # default: a fresh one, dropped at the end
    timeout: float = 120.0  # bound on each wait for agents
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL  # the started server's: its default
    agents_module: str = AGENTS_MODULE  # what the agent processes run
    server_args: tuple[str, ...] = ()  # more `genconf.bench.server` arguments
    # Processes of the started server sharing its address (`genconf.bench.server
    # --workers N`); 1: one process, as `genconf serve` runs by default.
    server_workers: int = 1

    def check(self) -> None:
        if self.streams < 1 or self.workers < 1 or self.channels < 1 or self.repeat < 1:
            raise ValueError("--streams, --workers, --channels and --repeat must be >= 1")
        if self.timeout <= 0:
            raise ValueError("--timeout must be > 0")
        if self.server_workers < 1:
            raise ValueError("--server-workers must be >= 1")
        if self.server_workers > 1 and self.server is not None:
            raise ValueError(
                "--server-workers sets how many processes the started server runs; "
                "a --server runs as it was started: give one or the other"
            )

    def run_params(self, server: str = "started") -> dict[str, Any]:
        """The last params of a report: the client processes, their channels, the server
        (``server`` when the bench starts it)."""
        return {"workers": self.workers, "channels": self.channels, "server": self.server or server}


def workload_parser(
    workload: str, description: str, *, streams: int | None, repeat: int
) -> argparse.ArgumentParser:
    """The command line of ``genconf bench WORKLOAD``, with the common options."""
    parser = argparse.ArgumentParser(prog=f"genconf bench {workload}", description=description)
    add_options(parser, streams=streams, repeat=repeat)
    return parser


def add_options(parser: argparse.ArgumentParser, *, streams: int | None, repeat: int = 3) -> None:
    """The common options; no ``--streams`` when ``streams`` is None (read)."""
    if streams is not None:
        parser.add_argument("--streams", type=int, default=streams, help="agents (streams)")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--channels", type=int, default=8, help="connections per process")
    parser.add_argument("--repeat", type=int, default=repeat, help="rounds per side")
    parser.add_argument(
        "--server", default=None, help="target a running `python -m genconf.bench.server`"
    )
    parser.add_argument(
        "--mongo-uri", default=None, help="a MongoDB 6.0+ replica set (default: embedded mongod)"
    )
    parser.add_argument("--database", default=None, help="database (default: a fresh one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on each wait (s)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def add_bookmark_interval(
    parser: argparse.ArgumentParser, help: str = STEADY_BOOKMARKS_HELP
) -> None:
    """The ``--bookmark-interval`` option (seconds; default: the server's own)."""
    parser.add_argument(
        "--bookmark-interval", type=float, default=DEFAULT_BOOKMARK_INTERVAL, help=help
    )


def add_server_workers(parser: argparse.ArgumentParser) -> None:
    """The ``--server-workers`` option: processes of the started server."""
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        metavar="N",
        help="processes of the started server sharing its address, each with its own "
        "change stream and cache (genconf serve --workers N); figures of the server "
        "(CPU, memory) are the sum over them",
    )


def server_workers_title(opts: Options) -> str:
    """How many server processes, for a report's title ("" for the one process)."""
    return f"; {opts.server_workers} server workers" if opts.server_workers > 1 else ""


def options_from(args: argparse.Namespace, **extra: Any) -> Options:
    if "bookmark_interval" in vars(args):  # --bookmark-interval: the started server's
        extra.setdefault("bookmark_interval", args.bookmark_interval)
    if "server_workers" in vars(args):  # --server-workers: the started server's
        extra.setdefault("server_workers", args.server_workers)
    opts = Options(
        streams=getattr(args, "streams", 1),
        workers=args.workers,
        channels=args.channels,
        repeat=args.repeat,
        server=args.server,
        mongo_uri=args.mongo_uri,
        database=args.database,
        timeout=args.timeout,
        **extra,
    )
    opts.check()
    return opts


def run_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    run: Callable[[argparse.Namespace], Awaitable[Report]],
) -> int:
    """Parse, run, print the table or JSON; 2 when the run fails, 1 when ``--check``
    is given and a target is missed."""
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        report = asyncio.run(run(args))
    except (*ERRORS, BenchError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    report.seconds = time.perf_counter() - started
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_table())
    return 1 if args.check and not report.passed else 0


def workload_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    run: Callable[..., Awaitable[Report]],
    *arguments: str,
    **renamed: str,
) -> int:
    """`run_main` of ``run(options, **keywords)``: the options from the common arguments,
    each of ``arguments`` passed under its own name, each ``keyword=argument`` of
    ``renamed`` under the keyword."""

    def start(args: argparse.Namespace) -> Awaitable[Report]:
        keywords = {name: getattr(args, name) for name in arguments}
        keywords.update((key, getattr(args, name)) for key, name in renamed.items())
        return run(options_from(args), **keywords)

    return run_main(parser, argv, start)
