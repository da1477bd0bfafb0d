"""The `genconf` command.

Exit codes scripts can rely on: 0 ok, 1 an error from the server (its message is
printed), 2 usage.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import anyio

from genconf.errors import GenconfError
from genconf.multiwatcher import Tuning
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genconf",
        description="Configuration service for fleets of application units.",
        epilog="Example: genconf serve --listen 127.0.0.1:50051",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
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

    b = sub.add_parser("bench", help="benchmarks (figures with a same-run baseline)")
    b.add_argument("workload", choices=["ingest"])
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "bench":
        from genconf.bench import ingest

        return ingest.main(args.rest)
    try:
        return int(anyio.run(args.func, args))
    except GenconfError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
