"""`genconf serve`: run the server in this process until SIGINT or SIGTERM. Its flags
are `genconf.defaults.SERVE_OPTIONS`; the server itself is loaded only when it runs,
so other commands do not pay for pymongo and the cache.

With ``--workers N`` (N > 1) this process supervises N workers instead, each a
`genconf serve` of its own on the same address (`genconf.workers`): it holds the
addresses, starts the embedded MongoDB and loads the demo once, and prints the
banner and the ready line once every worker is serving. A worker is this command
with the hidden ``--worker INDEX``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio

from genconf.cli.framework import Commands, Ctx
from genconf.defaults import SERVE_OPTIONS, add_serve_flags
from genconf.errors import GenconfError, InvalidArgument
from genconf.logs import json_line, setup_logging
from genconf.signals import StopSignals, stop_signals

if TYPE_CHECKING:
    from genconf.api.server import ServerConfig
    from genconf.workers import Supervisor

log = logging.getLogger("genconf")

READY_LINE: Final = "genconf is ready on"


def _self_command() -> str:
    """How the user can run this same `genconf` (for the hints we print)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "genconf":
        try:
            relative = Path(os.path.abspath(argv0)).relative_to(Path.cwd())
            return str(relative) if relative.parent != Path(".") else f"./{relative}"
        except ValueError:
            return "genconf"
    return f"{sys.executable} -m genconf.cli.main"


def _admin_token(path: str | None) -> str | None:
    """The bootstrap admin token (never logged); None: no auth. The rules, and the
    refusal of an empty file or variable, live in `auth.read_bootstrap_token`."""
    from genconf.security.auth import read_bootstrap_token

    return read_bootstrap_token(path, os.environ)


def _config(args: argparse.Namespace, **more: Any) -> ServerConfig:
    from genconf.api.server import ServerConfig

    return ServerConfig.from_flags(
        args,
        admin_token=_admin_token(args.admin_token_file),
        # The flag only: a client's environment or config file never loosens a server.
        insecure_plaintext=bool(getattr(args, "insecure_plaintext", False)),
        **more,
    )


async def _serve(ctx: Ctx, args: argparse.Namespace) -> int:
    setup_logging(getattr(args, "log_level", None) or "info", args.log_format)
    if args.worker is not None:
        return await _serve_worker(args)
    if args.workers > 1:
        return await _serve_fleet(args)
    from genconf.api.server import serve
    from genconf.readside.supervisor import tune_gc

    tune_gc()
    config = _config(args)
    with stop_signals() as stop:
        async with serve(config) as running:
            with anyio.fail_after(120):
                await running.read.wait_synced()
            as_json = args.log_format == "json"
            if args.demo:
                from genconf.dev import demo

                loaded = await demo.load(running.store)
                text = demo.banner(
                    running.address,
                    loaded,
                    await demo.describe(running.store),
                    _self_command(),
                    http_address=running.http_address,
                    token_hint=config.admin_token is not None,
                )
                if as_json:
                    text = json_line("loaded the demo model", logger="genconf.demo", banner=text)
                print(text, flush=True)
            ready = f"{READY_LINE} {running.address}"
            if as_json:
                http = running.http_address
                ready = json_line(ready, address=running.address, http_address=http)
            print(ready, flush=True)
            signum = await stop.wait()
            log.info("received %s; shutting down", signum.name)
    return 0


# -- --workers N ----------------------------------------------------------------------


async def _serve_worker(args: argparse.Namespace) -> int:
    """One worker of a fleet: a server whose health follows its fleet's, that prints
    nothing on stdout (its parent's pipe), and stops on SIGTERM or when the parent
    is gone."""
    from genconf.api.server import serve_as_worker
    from genconf.readside.supervisor import tune_gc
    from genconf.workers import WorkerLink, tag_logs

    tune_gc()
    tag_logs(f"worker {args.worker}: ")
    link = WorkerLink()
    config = _config(args, fleet=link)
    await serve_as_worker(config, link)
    return 0


def worker_argv(
    args: argparse.Namespace, index: int, *, listen: str, http_listen: str | None, mongo_uri: str
) -> list[str]:
    """The command of worker ``index``: this serve's flags (those given), on the
    addresses the parent holds and the MongoDB it found or started, without the demo
    (loaded once, by the parent), under its own replica id."""
    given: dict[str, str | None] = {
        "--listen": listen,
        "--http-listen": http_listen,
        "--mongo-uri": mongo_uri,
        "--replica-id": f"{args.replica_id}-w{index}" if args.replica_id else None,
    }
    argv = [sys.executable, "-m", "genconf.cli.main", "serve"]
    for option in SERVE_OPTIONS:
        if option.flag in ("--workers", "--demo", "--data-dir"):
            continue
        value = given[option.flag] if option.flag in given else getattr(args, option.dest)
        if (
            value is None
            or value is False
            or (option.flag not in given and value == option.default)
        ):
            continue
        argv += [option.flag] if value is True else [option.flag, str(value)]
    if getattr(args, "log_level", None):
        argv += ["--log-level", args.log_level]
    if getattr(args, "insecure_plaintext", False):
        argv.append("--insecure-plaintext")
    return [*argv, "--worker", str(index)]


def _hold(held: ExitStack, listen: str) -> str:
    """Check ``listen`` free and hold it for the fleet's life: HOST:PORT, port bound."""
    from genconf.api.server import address_in_use, check_listen_free
    from genconf.workers import AddressInUse, hold_address

    check_listen_free(listen)
    try:
        return held.enter_context(hold_address(listen))
    except AddressInUse:
        raise GenconfError(address_in_use(listen)) from None


async def _ready_or_stopped(fleet: Supervisor, stop: StopSignals) -> bool:
    """Until every worker serves (True) or a stop signal comes first (False)."""
    ready = False
    async with anyio.create_task_group() as tg:

        async def wait_ready() -> None:
            nonlocal ready
            await fleet.wait_ready()
            ready = True
            tg.cancel_scope.cancel()

        async def wait_stop() -> None:
            signum = await stop.wait()
            log.info("received %s before every worker was ready; stopping them", signum.name)
            tg.cancel_scope.cancel()

        tg.start_soon(wait_ready)
        tg.start_soon(wait_stop)
    return ready


def _listed(pids: Sequence[int]) -> str:
    return ", ".join(str(pid) for pid in pids)


async def _serve_fleet(args: argparse.Namespace) -> int:
    """Supervise ``args.workers`` workers on one address until SIGINT or SIGTERM."""
    from genconf.api.server import check_config, mongo_uri_of
    from genconf.workers import supervise

    config = _config(args)
    check_config(config)  # said once, here, rather than by every worker
    if config.metrics_listen is not None:
        raise InvalidArgument(
            f"--metrics-listen serves one process's metrics, and --workers {args.workers} "
            "runs several: give --workers 1, or run several servers each with its own "
            "--metrics-listen"
        )
    as_json = args.log_format == "json"
    with stop_signals() as stop, ExitStack() as held:
        listen = _hold(held, config.listen)
        http_listen = _hold(held, config.http_listen) if config.http_listen else None
        async with AsyncExitStack() as stack:
            mongo_uri = await mongo_uri_of(config, stack)
            banner = await _prepare(config, mongo_uri, listen, http_listen, demo=args.demo)
            command = partial(
                worker_argv, args, listen=listen, http_listen=http_listen, mongo_uri=mongo_uri
            )
            grace = config.shutdown_grace + 5  # a worker's own shutdown, and a margin
            async with supervise(command, args.workers, stop_grace=grace) as fleet:
                if not await _ready_or_stopped(fleet, stop):
                    return 0
                if banner is not None:
                    if as_json:
                        banner = json_line(
                            "loaded the demo model", logger="genconf.demo", banner=banner
                        )
                    print(banner, flush=True)
                pids = fleet.pids
                ready = f"{READY_LINE} {listen}"
                if as_json:
                    ready = json_line(
                        ready, address=listen, http_address=http_listen, worker_pids=pids
                    )
                else:
                    ready += f" ({len(pids)} workers: pids {_listed(pids)})"
                print(ready, flush=True)
                signum = await stop.wait()
                log.info("received %s; stopping %d workers", signum.name, fleet.count)
    return 0


async def _prepare(
    config: ServerConfig, mongo_uri: str, listen: str, http_listen: str | None, *, demo: bool
) -> str | None:
    """Before any worker starts: the database's collections and indexes, created once
    rather than by N workers at the same moment, and with ``demo`` the demo model,
    loaded once; the demo's banner (None: no demo)."""
    from genconf.dev import demo as demo_model
    from genconf.rollout.store import RolloutStore
    from genconf.store.store import Store

    store = Store.connect(mongo_uri, config.database, retain_versions=config.retain_versions)
    try:
        await store.ensure_schema()
        await RolloutStore(store).ensure_schema()
        if not demo:
            return None
        loaded = await demo_model.load(store)
        described = await demo_model.describe(store)
    finally:
        await store.aclose()
    return demo_model.banner(
        listen,
        loaded,
        described,
        _self_command(),
        http_address=http_listen,
        token_hint=config.admin_token is not None,
    )


def register(commands: Commands) -> None:
    p = commands.add(
        "serve",
        _serve,
        help="run the server",
        description="Run a genconf server. Without --mongo-uri it starts an embedded "
        "MongoDB replica set in --data-dir and stops it on exit.",
        examples=[
            "",
            "--mongo-uri 'mongodb://db1,db2,db3/?replicaSet=rs0'",
            "--demo --listen 127.0.0.1:50052 --data-dir /tmp/genconf-demo",
            "--workers auto --mongo-uri 'mongodb://db1,db2,db3/?replicaSet=rs0'",
        ],
    )
    add_serve_flags(p)
    # Internal: run as worker INDEX of a `serve --workers N` (`genconf.workers`).
    p.add_argument("--worker", type=int, metavar="INDEX", help=argparse.SUPPRESS)
