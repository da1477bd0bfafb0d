"""The server process that `genconf bench` drives: `genconf serve` plus the baseline
handlers (`genconf.bench.baseline`), in a process of its own so that the figures
are the server's alone and its memory and CPU can be read apart from the bench.

    python -m genconf.bench.server --mongo-uri URI --database DB [--listen HOST:PORT]
                                   [--workers N]

It prints ``READY_LINE ADDRESS`` once the cache is synced and gRPC health is
SERVING, and stops cleanly on SIGTERM or SIGINT. Start it yourself to point
several bench runs at one server (``genconf bench WORKLOAD --server ADDRESS``).

With ``--workers N`` (N > 1) this process supervises N workers on ADDRESS, as
`genconf serve --workers N` does (`genconf.workers`): it holds the address, ensures
the schema once, and prints ``READY_LINE ADDRESS workers=PRIVATE1,PRIVATE2,...``
once every worker serves. The baseline's ``Fire`` and ``Stats`` are unary: through
the shared address they reach one worker, so each worker also listens on a
loopback port of its own (PRIVATE, in worker order), where the bench reaches it
alone. A worker writes that address to a file the parent names (its stdout is
the parent's report pipe). A worker is this module with the hidden ``--worker
INDEX``; it stops with its parent, even after a kill -9 of the parent.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from functools import partial
from pathlib import Path
from typing import Final

import anyio
import grpc

from genconf.api.server import (
    ServerConfig,
    address_in_use,
    check_listen_free,
    serve,
    serve_as_worker,
)
from genconf.bench.baseline import add_baseline_handlers
from genconf.defaults import ServeOption, add_serve_flags, serve_option
from genconf.errors import GenconfError
from genconf.logs import setup_logging
from genconf.readside.cache import ModelCache
from genconf.readside.supervisor import tune_gc
from genconf.signals import run_until_signal, stop_signals

log = logging.getLogger("genconf.bench.server")

READY_LINE: Final = "genconf bench server ready on"
# After the address on the ready line of a fleet: each worker's own address, in order.
WORKERS_FIELD: Final = "workers="
# Every bench stream comes from loopback without a token, so `serve`'s per-peer
# limit would stop the bench at its default; the bench measures cost, not limits.
STREAM_LIMIT: Final = 1_000_000
PRIVATE_LISTEN: Final = "127.0.0.1:0"  # a worker's own port: loopback, any free one


def _term_at_stdin_eof() -> None:
    """Stop (as on SIGTERM) once stdin closes: the bench that started us is gone."""
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


def _watch_stdin(args: argparse.Namespace) -> None:
    if args.exit_with_stdin:
        threading.Thread(target=_term_at_stdin_eof, daemon=True).start()


async def _serve(args: argparse.Namespace) -> int:
    tune_gc()
    config = ServerConfig.from_flags(args, extra_handlers=add_baseline_handlers)
    with stop_signals() as stop:
        _watch_stdin(args)
        async with serve(config) as running:
            with anyio.fail_after(120):
                await running.read.wait_synced()
            print(f"{READY_LINE} {running.address}", flush=True)
            await stop.wait()
    return 0


# -- --workers N ----------------------------------------------------------------------


def _write_address(path: Path, address: str) -> None:
    """``address`` into ``path`` whole or not at all (the parent may read it any time)."""
    partial_path = path.with_name(path.name + ".tmp")
    partial_path.write_text(address)
    os.replace(partial_path, path)


def _baseline_and_private_port(
    address_file: Path, server: grpc.aio.Server, cache: ModelCache
) -> None:
    """The baseline handlers, and this worker's own loopback port beside the shared
    one, its address written to ``address_file`` before the server starts (so before
    the worker reports serving)."""
    add_baseline_handlers(server, cache)
    port = server.add_insecure_port(PRIVATE_LISTEN)
    if port == 0:
        raise GenconfError(f"cannot listen on {PRIVATE_LISTEN}")
    _write_address(address_file, f"{PRIVATE_LISTEN.rsplit(':', 1)[0]}:{port}")


async def _serve_worker(args: argparse.Namespace) -> int:
    """One worker of a fleet: a bench server whose health follows its fleet's, that
    prints nothing on stdout (its parent's pipe), and stops on SIGTERM or when the
    parent is gone."""
    from genconf.workers import WorkerLink, tag_logs

    tune_gc()
    tag_logs(f"worker {args.worker}: ")
    link = WorkerLink()
    handlers = partial(_baseline_and_private_port, Path(args.address_file))
    config = ServerConfig.from_flags(args, extra_handlers=handlers, fleet=link)
    await serve_as_worker(config, link)
    return 0


def worker_argv(
    args: argparse.Namespace,
    index: int,
    *,
    listen: str,
    mongo_uri: str,
    address_dir: Path,
) -> list[str]:
    """The command of worker ``index``: this server's flags, on the address the parent
    holds and the MongoDB it found or started, writing its own address in
    ``address_dir``."""
    given = {"--listen": listen, "--mongo-uri": mongo_uri}
    argv = [sys.executable, "-m", "genconf.bench.server"]
    for option in _options():
        if option.flag in ("--workers", "--data-dir"):
            continue
        value = given.get(option.flag, getattr(args, option.dest))
        if value is not None:
            argv += [option.flag, str(value)]
    return [
        *argv,
        "--log-level",
        args.log_level,
        "--worker",
        str(index),
        "--address-file",
        str(address_file(address_dir, index)),
    ]


def address_file(address_dir: Path, index: int) -> Path:
    return address_dir / f"worker-{index}.address"


async def _ensure_schema(config: ServerConfig, mongo_uri: str) -> None:
    """The database's collections and indexes, created once rather than by N workers
    at the same moment."""
    from genconf.rollout.store import RolloutStore
    from genconf.store.store import Store

    store = Store.connect(mongo_uri, config.database, retain_versions=config.retain_versions)
    try:
        await store.ensure_schema()
        await RolloutStore(store).ensure_schema()
    finally:
        await store.aclose()


async def _serve_fleet(args: argparse.Namespace) -> int:
    """Supervise ``args.workers`` workers on one address until SIGINT or SIGTERM (or,
    with ``--exit-with-stdin``, the end of stdin)."""
    from genconf.workers import AddressInUse, hold_address, supervise

    config = ServerConfig.from_flags(args)
    _watch_stdin(args)

    async def fleet() -> None:
        check_listen_free(config.listen)
        with ExitStack() as held:
            try:
                listen = held.enter_context(hold_address(config.listen))
            except AddressInUse:
                raise GenconfError(address_in_use(config.listen)) from None
            address_dir = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="gcbs-")))
            async with AsyncExitStack() as stack:
                mongo_uri = config.mongo_uri
                if mongo_uri is None:
                    from genconf.dev.embedded import EmbeddedMongo

                    embedded = EmbeddedMongo(config.data_dir)
                    await anyio.to_thread.run_sync(embedded.start)
                    stack.push_async_callback(anyio.to_thread.run_sync, embedded.stop)
                    mongo_uri = embedded.uri
                await _ensure_schema(config, mongo_uri)
                command = partial(
                    worker_argv, args, listen=listen, mongo_uri=mongo_uri, address_dir=address_dir
                )
                grace = config.shutdown_grace + 5  # a worker's own shutdown, and a margin
                async with supervise(command, args.workers, stop_grace=grace) as workers:
                    await workers.wait_ready()
                    private = [
                        address_file(address_dir, i).read_text() for i in range(args.workers)
                    ]
                    print(f"{READY_LINE} {listen} {WORKERS_FIELD}{','.join(private)}", flush=True)
                    await anyio.sleep_forever()

    try:
        await run_until_signal(fleet)
    except GenconfError as exc:
        print(f"genconf bench server: {exc}", file=sys.stderr)
        return 2
    return 0


def parse_ready(line: str) -> tuple[str, list[str]]:
    """A ready line's shared address and the workers' own ones (none: one process)."""
    fields = line.removeprefix(READY_LINE).split()
    private = [f for f in fields[1:] if f.startswith(WORKERS_FIELD)]
    workers = private[0].removeprefix(WORKERS_FIELD).split(",") if private else []
    return fields[0], workers


def _options() -> list[ServeOption]:
    """The flags `genconf serve` has too, declared there; the bench's own defaults."""
    return [
        serve_option("--mongo-uri", help="default: embedded mongod"),
        serve_option("--data-dir", default=".genconf-bench-data", help="embedded data"),
        serve_option("--database"),
        serve_option("--listen", default="127.0.0.1:0"),
        serve_option("--workers", help="server processes sharing --listen (1: this one)"),
        serve_option("--bookmark-interval"),
        serve_option("--ring-size"),
        *(
            serve_option(flag, default=STREAM_LIMIT)
            for flag in ("--streams-per-peer", "--max-streams")
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genconf.bench.server",
        description="A genconf server with the bench baseline handlers.",
    )
    add_serve_flags(parser, _options())
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when stdin closes (how `genconf bench` makes sure we never outlive it)",
    )
    # Internal: run as worker INDEX of a fleet, writing its own address to the file.
    parser.add_argument("--worker", type=int, metavar="INDEX", help=argparse.SUPPRESS)
    parser.add_argument("--address-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging(args.log_level, fallback=logging.WARNING)
    if args.worker is not None:
        if args.address_file is None:
            parser.error("--worker needs --address-file")
        return int(anyio.run(_serve_worker, args))
    if args.workers > 1:
        return int(anyio.run(_serve_fleet, args))
    return int(anyio.run(_serve, args))


if __name__ == "__main__":
    sys.exit(main())
