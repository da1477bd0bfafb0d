"""HTTP read: ``GET /api/v1/units/{app}/{n}/config`` throughput against an empty
handler of the same HTTP stack, in the same run.

Method
------
One application with ``--units`` units. The server runs in a process of its own
(``python -m genconf.bench.http_read serve``: genconf with its HTTP API on, the
bench's empty route ``/api/v1/_bench/empty`` (`ServerConfig.http_bench`), and the
gRPC baseline handlers for the server's own figures). ``--workers`` client
processes (``python -m genconf.bench.http_read client``) each keep ``--channels``
HTTP/1.1 connections alive, one caller each, every caller asking in a loop over
its share of the units for ``--duration`` seconds: raw asyncio streams, so the
clients spend as little of the shared CPU as a client can. The baseline is the
same loop against the empty route: uvicorn, FastAPI's routing and the server's
request checks (`genconf.http.front`) with no genconf work. The sides alternate,
``--repeat`` rounds each; the figure is the best round per side, the median
alongside, and the server's CPU time per request.

Target: ratio (genconf requests/s / empty-route requests/s) >= 0.8. ``--profile``
runs the server under cProfile and prints where its time went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import anyio
import grpc

from genconf.bench import baseline
from genconf.bench.figures import SIDES, Figure, Report, machine, turns
from genconf.bench.options import Options, options_from, run_main, workload_parser
from genconf.bench.processes import ServerProcess
from genconf.errors import BenchError

__all__ = ["main", "run_http_read"]

DEFAULT_UNITS: Final = 1_000
DEFAULT_DURATION: Final = 3.0
DEFAULT_REPEAT: Final = 5
TARGET_RATIO: Final = 0.8
APPLICATION: Final = "fleet"
EMPTY_PATH: Final = "/api/v1/_bench/empty"
HTTP_LINE: Final = "genconf bench http server on"
STOP_TIMEOUT: Final = 20.0
UNITS_PER_CALL: Final = 1000


# -- the server process ----------------------------------------------------------------


def _serve_main(argv: Sequence[str]) -> int:
    """``serve``: `genconf.bench.server`'s process with HTTP on and the empty route
    (the same serve flags, declared in `genconf.defaults`; ``--profile FILE``:
    cProfile stats of the whole run, written at exit)."""
    from genconf.api.server import ServerConfig, serve
    from genconf.bench.server import READY_LINE, STREAM_LIMIT
    from genconf.defaults import add_serve_flags, serve_option
    from genconf.logs import setup_logging
    from genconf.readside.supervisor import tune_gc
    from genconf.signals import stop_signals

    parser = argparse.ArgumentParser(prog="python -m genconf.bench.http_read serve")
    add_serve_flags(
        parser,
        [
            serve_option("--mongo-uri"),
            serve_option("--database"),
            serve_option("--listen", default="127.0.0.1:0"),
            serve_option("--http-listen", default="127.0.0.1:0"),
            serve_option("--bookmark-interval"),
            *(
                serve_option(f, default=STREAM_LIMIT)
                for f in ("--streams-per-peer", "--max-streams")
            ),
        ],
    )
    parser.add_argument("--profile", default=None)
    parser.add_argument("--exit-with-stdin", action="store_true")
    args = parser.parse_args(argv)
    setup_logging("warning")
    tune_gc()

    async def run() -> None:
        config = ServerConfig.from_flags(
            args, http_bench=True, extra_handlers=baseline.add_baseline_handlers
        )
        with stop_signals() as stop:
            if args.exit_with_stdin:
                threading.Thread(target=_term_at_stdin_eof, daemon=True).start()
            async with serve(config) as running:
                with anyio.fail_after(120):
                    await running.read.wait_synced()
                print(f"{READY_LINE} {running.address}", flush=True)
                print(f"{HTTP_LINE} {running.http_address}", flush=True)
                await stop.wait()

    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    try:
        anyio.run(run)
    finally:
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
    return 0


def _term_at_stdin_eof() -> None:
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


class HttpServerProcess(ServerProcess):
    """The server above as a child process: gRPC and HTTP addresses once ready."""

    command = (sys.executable, "-m", "genconf.bench.http_read", "serve")

    def __init__(self, log_path: Path) -> None:
        super().__init__(log_path)
        self.http_address = ""

    async def start(
        self,
        mongo_uri: str,
        database: str,
        bookmark_interval: float,
        extra_args: Sequence[str] = (),
    ) -> str:
        address = await super().start(mongo_uri, database, bookmark_interval, extra_args)
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await self.proc.stdout.readline()).decode()
        if not line.startswith(HTTP_LINE):
            await self.stop()
            raise BenchError(f"the bench server did not say where it serves HTTP: {line!r}")
        self.http_address = line[len(HTTP_LINE) :].strip()
        return address


# -- the client processes --------------------------------------------------------------


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    """One request on a kept-alive connection: (status line, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status, _, rest = head.partition(b"\r\n")
    length = 0
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


async def _calls(cmd: dict[str, Any]) -> dict[str, Any]:
    """``connections`` callers, each on its own connection, asking for ``paths`` in
    turn for ``duration`` seconds."""
    host, _, port = str(cmd["address"]).rpartition(":")
    paths: list[str] = cmd["paths"]
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
    calls = errors = 0
    sample = ""
    started = time.monotonic()
    deadline = started + float(cmd["duration"])

    async def caller(i: int) -> None:
        nonlocal calls, errors, sample
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            n = i
            while time.monotonic() < deadline:
                status, body = await _get(reader, writer, requests[n % len(requests)])
                n += 1
                if not status.endswith(b" 200 OK"):
                    errors += 1
                    sample = sample or f"{status.decode(errors='replace')} {body[:200]!r}"
                else:
                    calls += 1
        finally:
            writer.close()

    await asyncio.gather(*(caller(i) for i in range(int(cmd["connections"]))))
    return {
        "calls": calls,
        "errors": errors,
        "error_sample": sample,
        "seconds": time.monotonic() - started,
    }


def _client_main() -> int:
    """``client``: answer one JSON command per line (``call``, ``exit``) on stdout."""

    async def loop() -> None:
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "exit":
                return
            try:
                reply = {"ok": True, **(await _calls(cmd))}
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)

    asyncio.run(loop())
    return 0


def _log_file(path: Path) -> IO[bytes]:
    """A child process's stderr, appended to ``path`` (closed when it is stopped)."""
    return open(path, "ab")


@dataclass
class ClientProcess:
    """One ``client`` process and its command pipe; stopped by its PID."""

    index: int
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    log: IO[bytes] | None = None

    async def start(self) -> None:
        self.log = _log_file(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "genconf.bench.http_read",
            "client",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
        )

    async def call(self, limit: float, **cmd: Any) -> dict[str, Any]:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"op": "call", **cmd}).encode() + b"\n")
        await proc.stdin.drain()
        try:
            async with asyncio.timeout(limit):
                line = await proc.stdout.readline()
        except TimeoutError:
            raise BenchError(f"client process {self.index}: no answer") from None
        if not line:
            raise BenchError(f"client process {self.index} exited (its log: {self.log_path})")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise BenchError(f"client process {self.index}: {reply.get('error')}")
        return reply

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                assert proc.stdin is not None
                proc.stdin.write(b'{"op": "exit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


# -- the workload ----------------------------------------------------------------------


@dataclass
class Run:
    """A run's processes: mongod (unless given), the server, the clients."""

    workdir: Path
    server: HttpServerProcess
    clients: list[ClientProcess]
    channel: grpc.aio.Channel | None = None

    async def stats(self) -> dict[str, Any]:
        assert self.channel is not None
        raw = await self.channel.unary_unary(baseline.STATS)(b"")
        stats: dict[str, Any] = json.loads(raw)
        return stats


@asynccontextmanager
async def _running(opts: Options, profile: Path | None) -> AsyncIterator[tuple[Run, str]]:
    """Every process of the run, stopped (by PID) and cleaned up on the way out."""
    from genconf.dev.embedded import EmbeddedMongo

    with tempfile.TemporaryDirectory(prefix="genconf-bench-http-read-") as tmp:
        workdir = Path(tmp)
        mongod = None
        run = Run(
            workdir,
            HttpServerProcess(workdir / "server.log"),
            [ClientProcess(i, workdir / f"client-{i}.log") for i in range(opts.workers)],
        )
        mongo_uri = opts.mongo_uri
        try:
            if mongo_uri is None:
                mongod = EmbeddedMongo(workdir / "mongo")
                await anyio.to_thread.run_sync(mongod.start)
                mongo_uri = mongod.uri
            database = opts.database or f"bench_http_read_{uuid.uuid4().hex[:10]}"
            extra = ("--profile", str(profile)) if profile is not None else ()
            address = await run.server.start(mongo_uri, database, opts.bookmark_interval, extra)
            run.channel = grpc.aio.insecure_channel(address)
            for client in run.clients:
                await client.start()
            yield run, mongo_uri
        finally:
            for client in run.clients:
                await client.stop()
            if run.channel is not None:
                await run.channel.close()
            await run.server.stop()
            if mongod is not None:
                await anyio.to_thread.run_sync(mongod.stop)
            elif opts.database is None and mongo_uri is not None:
                await _drop(mongo_uri, database)


async def _drop(mongo_uri: str, database: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


async def _fleet(address: str, units: int, call_timeout: float) -> list[str]:
    from genconf.bench.session import SCHEMA
    from genconf.client import Client

    async with Client(address, timeout=call_timeout) as client:
        first = min(units, UNITS_PER_CALL)
        result = await client.create_application(
            APPLICATION, charm="bench", schema=SCHEMA, units=first
        )
        names = list(result.units)
        while len(names) < units:
            result = await client.add_units(
                APPLICATION, count=min(UNITS_PER_CALL, units - len(names))
            )
            names.extend(result.units)
        await client.get_config(names[-1], min_revision=result.revision)
    return names


async def _phase(
    run: Run, parts: list[list[str]], connections: int, duration: float
) -> tuple[float, float, int]:
    """One side for ``duration``: (requests per second, server CPU µs each, requests)."""
    before = await run.stats()
    replies = await asyncio.gather(
        *(
            client.call(
                duration + 60,
                address=run.server.http_address,
                paths=parts[i],
                connections=connections,
                duration=duration,
            )
            for i, client in enumerate(run.clients)
        )
    )
    after = await run.stats()
    errors = sum(r["errors"] for r in replies)
    if errors:
        sample = next(r["error_sample"] for r in replies if r["error_sample"])
        raise BenchError(f"{errors} requests failed, e.g. {sample}")
    calls = sum(r["calls"] for r in replies)
    if calls == 0:
        raise BenchError(f"no request completed in {duration:g} s")
    rate = sum(r["calls"] / r["seconds"] for r in replies)
    return rate, (after["cpu_seconds"] - before["cpu_seconds"]) / calls * 1e6, calls


def _profile_summary(path: Path, lines: int = 25) -> str:
    """The server's busiest functions (both sides together), then genconf's own
    functions by cumulative time: what the config route adds to the stack."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(r"genconf/(http|api)/", lines)
    return out.getvalue()


async def run_http_read(
    opts: Options,
    *,
    units: int = DEFAULT_UNITS,
    duration: float = DEFAULT_DURATION,
    profile: bool = False,
) -> Report:
    """Run the HTTP read workload (see the module docstring)."""
    opts.check()
    if units < 1 or duration <= 0:
        raise ValueError("--units and --duration must be > 0")
    if opts.server is not None:
        raise ValueError(
            "--server: http-read starts its own server (HTTP on, with its empty route)"
        )
    profile_path = Path(tempfile.gettempdir()) / f"genconf-http-read-{os.getpid()}.prof"
    try:
        async with _running(opts, profile_path if profile else None) as (run, mongo_uri):
            names = await _fleet(run.server.address, units, opts.timeout)
            config_paths = [f"/api/v1/units/{name}/config" for name in names]
            paths = {
                "genconf": [config_paths[i :: len(run.clients)] for i in range(len(run.clients))],
                "baseline": [[EMPTY_PATH] for _ in run.clients],
            }
            rates: dict[str, list[float]] = {side: [] for side in SIDES}
            cpu: dict[str, list[float]] = {side: [] for side in SIDES}
            calls: dict[str, int] = dict.fromkeys(SIDES, 0)
            for side in SIDES:  # unmeasured warm-up: connections, caches
                await _phase(run, paths[side], opts.channels, min(1.0, duration))
            for r in range(opts.repeat):
                for side in turns(SIDES, r):
                    rate, cpu_us, n = await _phase(run, paths[side], opts.channels, duration)
                    rates[side].append(rate)
                    cpu[side].append(cpu_us)
                    calls[side] += n
            mongodb = await _mongo_version(mongo_uri)
        summary = _profile_summary(profile_path) if profile else ""
    finally:
        profile_path.unlink(missing_ok=True)

    best = {side: max(rates[side]) for side in SIDES}
    figures = [
        Figure(
            "GET config requests/s",
            "req/s",
            best["genconf"],
            best["baseline"],
            higher_is_better=True,
            target_ratio=TARGET_RATIO,
        ),
        Figure(
            "requests/s, median round",
            "req/s",
            statistics.median(rates["genconf"]),
            statistics.median(rates["baseline"]),
            higher_is_better=True,
        ),
        Figure("server CPU per request", "us", min(cpu["genconf"]), min(cpu["baseline"])),
    ]
    details: dict[str, Any] = {
        "requests": calls,
        "requests_per_s_per_round": rates,
        "server_cpu_us_per_round": cpu,
    }
    if summary:
        details["profile"] = summary
    return Report(
        workload="http-read",
        title=f"GET /api/v1/units/APP/N/config over {units:,} units from {opts.workers} client "
        f"processes x {opts.channels} keep-alive connections, {duration:g} s per round, best "
        f"of {opts.repeat} rounds per side",
        baseline=f"an empty route of the same HTTP stack ({EMPTY_PATH}: uvicorn, FastAPI, the "
        "request checks), same connections, same callers",
        params={
            "units": units,
            "duration_s": duration,
            "repeat": opts.repeat,
            **opts.run_params(),
        },
        machine=machine(mongodb),
        figures=figures,
        details=details,
    )


async def _mongo_version(uri: str) -> str:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=10_000
    )
    try:
        info = await client.admin.command("buildInfo")
        return str(info.get("version", "?"))
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "http-read",
        "GET one unit's config over HTTP against an empty handler of the same HTTP stack "
        f"(target ratio >= {TARGET_RATIO}).",
        streams=None,
        repeat=DEFAULT_REPEAT,
    )
    parser.add_argument("--units", type=int, default=DEFAULT_UNITS, help="units to read")
    parser.add_argument(
        "--duration", type=float, default=DEFAULT_DURATION, help="seconds per round"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the server under cProfile; print its top"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        return _serve_main(args[1:])
    if args[:1] == ["client"]:
        return _client_main()
    parser = build_parser()

    def start(parsed: argparse.Namespace) -> Any:
        return run_http_read(
            options_from(parsed),
            units=parsed.units,
            duration=parsed.duration,
            profile=parsed.profile,
        )

    return run_main(parser, args, start)


if __name__ == "__main__":
    sys.exit(main())
