"""`genconf serve`: run the server in this process until SIGINT or SIGTERM. Its flags
are `genconf.defaults.SERVE_OPTIONS`; the server itself is loaded only when it runs,
so other commands do not pay for pymongo and the cache."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Final

import anyio

from genconf.cli.framework import Commands, Ctx
from genconf.defaults import add_serve_flags
from genconf.logs import json_line, setup_logging
from genconf.signals import stop_signals

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


async def _serve(ctx: Ctx, args: argparse.Namespace) -> int:
    from genconf.api.server import ServerConfig, serve
    from genconf.readside.supervisor import tune_gc

    setup_logging(getattr(args, "log_level", None) or "info", args.log_format)
    tune_gc()
    config = ServerConfig.from_flags(
        args,
        admin_token=_admin_token(args.admin_token_file),
        # The flag only: a client's environment or config file never loosens a server.
        insecure_plaintext=bool(getattr(args, "insecure_plaintext", False)),
    )
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
        ],
    )
    add_serve_flags(p)
