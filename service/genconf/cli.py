"""The `genconf` command.

Exit codes scripts can rely on: 0 ok, 1 an error from the server (its message is
printed), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

import anyio
from google.protobuf import json_format
from google.protobuf.message import Message

from genconf.client import Client
from genconf.errors import GenconfError
from genconf.multiwatcher import Tuning
from genconf.readside import tune_gc
from genconf.server import DEFAULT_LISTEN, ServerConfig, serve

log = logging.getLogger("genconf")

READY_LINE = "genconf is ready on"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _serve(args: argparse.Namespace) -> int:
    tune_gc()
    config = ServerConfig(
        mongo_uri=args.mongo_uri,
        data_dir=Path(args.data_dir),
        listen=args.listen,
        database=args.database,
        bookmark_interval=args.bookmark_interval,
        tuning=Tuning(),
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve(config) as running:
            with anyio.fail_after(120):
                await running.read.wait_synced()
            if args.demo:
                from genconf import demo

                loaded = await demo.load(running.store)
                print(demo.banner(running.address, loaded), flush=True)
            print(f"{READY_LINE} {running.address}", flush=True)
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                break
    return 0


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _message(msg: Message) -> dict[str, object]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


async def _config_get(args: argparse.Namespace) -> int:
    async with Client(args.server) as client:
        if "/" in args.target:
            config = await client.get_config(args.target)
            _print(
                {
                    "unit": config.unit,
                    "branch": config.branch or None,
                    "config": config.config,
                    "hash": config.hash,
                    "app_version": config.app_version,
                }
            )
        else:
            app = await client.get_application(args.target)
            _print({"application": app.name, "version": app.version, **_message(app)})
    return 0


async def _app_list(args: argparse.Namespace) -> int:
    async with Client(args.server) as client:
        _print([_message(a) for a in await client.list_applications()])
    return 0


async def _branch_list(args: argparse.Namespace) -> int:
    async with Client(args.server) as client:
        _print([_message(b) for b in await client.list_branches()])
    return 0


def bench_workloads() -> list[str]:
    from genconf.bench import WORKLOADS

    return list(WORKLOADS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genconf",
        description="Configuration service for fleets of application units.",
        epilog="Example: genconf serve --listen 127.0.0.1:50051",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument(
        "--server",
        default=os.environ.get("GENCONF_SERVER", DEFAULT_LISTEN),
        help="server address (env GENCONF_SERVER)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run the server",
        description="Run a genconf server. Without --mongo-uri it starts an embedded "
        "MongoDB replica set in --data-dir and stops it on exit.",
        epilog="Examples:\n  genconf serve\n"
        "  genconf serve --mongo-uri 'mongodb://db1,db2,db3/?replicaSet=rs0'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--mongo-uri", default=None, help="a MongoDB 6.0+ replica set URI")
    p.add_argument("--data-dir", default=".genconf-data", help="embedded MongoDB's data")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="host:port to serve gRPC on")
    p.add_argument("--database", default="genconf", help="the model's database name")
    p.add_argument(
        "--bookmark-interval", type=float, default=30.0, help="seconds between watch bookmarks"
    )
    p.add_argument("--demo", action="store_true", help="load a small demo model on first run")
    p.set_defaults(func=_serve)

    c = sub.add_parser("config", help="read config").add_subparsers(dest="action", required=True)
    g = c.add_parser("get", help="an application's or a unit's config (APP or APP/N)")
    g.add_argument("target")
    g.set_defaults(func=_config_get)
    a = sub.add_parser("app", help="applications").add_subparsers(dest="action", required=True)
    a.add_parser("list", help="every application").set_defaults(func=_app_list)
    br = sub.add_parser("branch", help="branches").add_subparsers(dest="action", required=True)
    br.add_parser("list", help="active branches").set_defaults(func=_branch_list)

    b = sub.add_parser("bench", help="benchmarks (figures with a same-run baseline)")
    b.add_argument("workload", choices=sorted(bench_workloads()))
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "bench":
        from genconf import bench

        return bench.main(args.workload, args.rest)
    try:
        return int(anyio.run(args.func, args))
    except GenconfError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
