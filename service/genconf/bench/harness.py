"""What the agent-facing workloads (fanout, targeted, read, idle, storm) share: the
processes they run, the model they set up, and how they report.

Processes, all ours and all on loopback, each stopped by its PID in a ``finally``
even when the run fails:

- an embedded mongod in a temporary directory (unless ``--mongo-uri`` or
  ``--server`` is given);
- the server, ``python -m genconf.bench.server`` (unless ``--server``): genconf
  plus the baseline handlers of `genconf.bench.baseline`, so genconf and its
  baseline are measured on the same server process;
- ``--workers`` agent processes, ``python -m genconf.bench.agents``, each with
  ``--channels`` TCP connections, the streams spread evenly over them.

The bench process itself only sets the model up, triggers changes and computes
the figures. Client processes share the machine with the server: on a 2-core
host they compete with it for the CPU, for genconf and its baseline alike.

Every figure is printed next to its baseline from the same run and their ratio,
as a table or (``-o json``) as JSON with the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import anyio.to_thread
import grpc
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from genconf.api.server import ServerConfig
from genconf.bench import baseline, ingest
from genconf.bench.server import READY_LINE
from genconf.client import Client
from genconf.dev.embedded import EmbeddedMongo
from genconf.errors import BenchError, ClientError, GenconfError
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

T = TypeVar("T")

UNITS_PER_CALL: Final = 1000  # the store's limit on units per CreateApplication/AddUnits
AGENTS_MODULE: Final = "genconf.bench.agents"
SERVER_START_TIMEOUT: Final = 120.0
STOP_TIMEOUT: Final = 20.0
LIST_SHOWN: Final = 12  # a longer list in a table shows its ends only
DEFAULT_BOOKMARK_INTERVAL: Final = ServerConfig.bookmark_interval  # the server's default
STEADY_BOOKMARKS_HELP: Final = "the started server's (s): bookmarks are part of the steady state"

# The config every workload's fleet carries (bench ingest's), plus the integers the
# workloads bump.
SCHEMA: Final[dict[str, Any]] = {
    **ingest.SCHEMA,
    "round": {"type": "int", "default": 0, "description": "bumped by the bench"},
    "seq": {"type": "int", "default": 0, "description": "bumped by the bench"},
}

ERRORS: Final = (
    ValueError,
    RuntimeError,
    TimeoutError,
    OSError,
    GenconfError,
    PyMongoError,
    grpc.aio.AioRpcError,
)


# ---------------------------------------------------------------------------
# figures and reports


@dataclass
class Figure:
    """One measured figure, its same-run baseline, and its target.

    ``ratio`` says how genconf compares with the baseline, 1.0 meaning as good:
    baseline / genconf for costs (time, memory, CPU), genconf / baseline for
    rates (``higher_is_better``).
    """

    name: str
    unit: str
    value: float | None
    baseline: float | None = None
    higher_is_better: bool = False
    target_ratio: float | None = None  # the ratio must be at least this
    target_max: float | None = None  # the value must be at most this
    target_min: float | None = None  # the value must be at least this
    baseline_name: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        num, den = (
            (self.value, self.baseline) if self.higher_is_better else (self.baseline, self.value)
        )
        return num / den if den > 0 else None

    @property
    def target(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f"ratio >= {self.target_ratio:g}")
        if self.target_max is not None:
            parts.append(f"<= {self.target_max:g} {self.unit}")
        if self.target_min is not None:
            parts.append(f">= {self.target_min:g} {self.unit}")
        return ", ".join(parts)

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        if self.value is None:
            return False
        ok = True
        if self.target_ratio is not None:
            ok = ok and self.ratio is not None and self.ratio >= self.target_ratio
        if self.target_max is not None:
            ok = ok and self.value <= self.target_max
        if self.target_min is not None:
            ok = ok and self.value >= self.target_min
        return ok

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ratio=self.ratio, target=self.target, met=self.met)
        return out


@dataclass
class Report:
    """A workload's figures, how they were taken, and on what."""

    workload: str
    title: str
    baseline: str  # what the baseline is, in a few words
    params: dict[str, Any]
    machine: dict[str, Any]
    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(f.met is not False for f in self.figures)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "title": self.title,
            "baseline": self.baseline,
            "params": self.params,
            "machine": self.machine,
            "figures": [f.to_dict() for f in self.figures],
            "passed": self.passed,
            "details": self.details,
            "seconds": self.seconds,
        }

    def format_table(self) -> str:
        m = self.machine
        lines = [
            f"genconf bench {self.workload}: {self.title}",
            f"baseline: {self.baseline}",
            f"machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), "
            f"{m.get('memory_gib')} GiB, {m.get('platform')}, Python {m.get('python')}, "
            f"grpcio {m.get('grpcio')}, MongoDB {m.get('mongodb')}; "
            f"load average {m.get('load_average_1m')} at the end",
            "",
            f"  {'figure':<36}{'genconf':>12}{'baseline':>12}{'ratio':>8}  "
            f"{'target':<28}{'met':>4}",
        ]
        for f in self.figures:
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
            met = {True: "yes", False: "NO", None: ""}[f.met]
            lines.append(
                f"  {f.name + ' (' + f.unit + ')':<36}{_num(f.value):>12}"
                f"{_num(f.baseline):>12}{ratio:>8}  {f.target:<28}{met:>4}"
            )
        lines.append("")
        for key, value in self.details.items():
            if isinstance(value, dict):
                lines.append(f"  {key}:")
                lines.extend(f"    {k}: {_plain(v)}" for k, v in value.items())
            else:
                lines.append(f"  {key}: {_plain(value)}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"  {verdict}: every target met" if self.passed else f"  {verdict}")
        lines.append(f"  total run {self.seconds:.1f} s")
        return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        if len(value) > LIST_SHOWN:
            half = LIST_SHOWN // 2
            shown = [*map(_plain, value[:half]), "...", *map(_plain, value[-half:])]
            return "[" + ", ".join(shown) + f"] ({len(value)} values; all with -o json)"
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


def turns(sides: Sequence[str], round_: int) -> Sequence[str]:
    """The sides in round ``round_``'s order: alternating, so neither always goes first."""
    return sides if round_ % 2 == 0 else sides[::-1]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def machine(mongodb: str = "?") -> dict[str, Any]:
    """What the figures were measured on."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 2**20
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        # Other work on the host at the end of the run (the figures share its CPUs).
        "load_average_1m": round(load[0], 2),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "mongodb": mongodb,
    }


# ---------------------------------------------------------------------------
# processes


def _append(path: Path) -> IO[bytes]:
    """A log file for a child process's stderr (closed when the process is stopped)."""
    return open(path, "ab")


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def _stop_process(proc: asyncio.subprocess.Process, *, graceful: bool = True) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL after a while."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if graceful:
            proc.send_signal(signal.SIGTERM)
        else:
            proc.kill()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class ServerProcess:
    """``python -m genconf.bench.server`` as a child process."""

    # What to run (a seam: compare another build of the server by changing it).
    command: tuple[str, ...] = (sys.executable, "-m", "genconf.bench.server")

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.address = ""
        self._log: IO[bytes] | None = None

    async def start(
        self,
        mongo_uri: str,
        database: str,
        bookmark_interval: float,
        extra_args: Sequence[str] = (),
    ) -> str:
        self._log = _append(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            "--mongo-uri",
            mongo_uri,
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--bookmark-interval",
            str(bookmark_interval),
            *extra_args,
            "--exit-with-stdin",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(SERVER_START_TIMEOUT):
                while line := (await self.proc.stdout.readline()).decode():
                    if line.startswith(READY_LINE):
                        self.address = line[len(READY_LINE) :].strip()
                        return self.address
        except TimeoutError:
            pass
        await self.stop()
        raise BenchError(
            f"the bench server did not start; its log ends:\n{_log_tail(self.log_path)}"
        )

    async def stop(self) -> None:
        if self.proc is not None:
            await _stop_process(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Worker:
    """One ``python -m genconf.bench.agents`` process and its command pipe."""

    def __init__(self, index: int, log_path: Path, module: str = AGENTS_MODULE) -> None:
        self.index = index
        self.log_path = log_path
        self.module = module  # the command loop to run (soak's adds commands of its own)
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._log = _append(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 28,
        )

    async def request(self, limit: float, **cmd: Any) -> dict[str, Any]:
        """Send one command and return its answer (BenchError if it failed); ``limit``
        bounds the wait beyond the command's own timeout."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        async with self._lock:
            proc.stdin.write(json.dumps(cmd).encode() + b"\n")
            await proc.stdin.drain()
            try:
                async with asyncio.timeout(limit + 30):
                    line = await proc.stdout.readline()
            except TimeoutError:
                raise BenchError(f"agent process {self.index}: no answer to {cmd['op']}") from None
        if not line:
            raise BenchError(
                f"agent process {self.index} exited; its log ends:\n{_log_tail(self.log_path)}"
            )
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise BenchError(f"agent process {self.index}: {cmd['op']}: {reply.get('error')}")
        return reply

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.write(b'{"op": "exit"}\n')
                    await proc.stdin.drain()
                    proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            await _stop_process(proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


# ---------------------------------------------------------------------------
# options and the session


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
    bookmark_interval: float = 600.0  # the started server's; idle sets its own
    agents_module: str = AGENTS_MODULE  # what the agent processes run
    server_args: tuple[str, ...] = ()  # more `genconf.bench.server` arguments

    def check(self) -> None:
        if self.streams < 1 or self.workers < 1 or self.channels < 1 or self.repeat < 1:
            raise ValueError("--streams, --workers, --channels and --repeat must be >= 1")
        if self.timeout <= 0:
            raise ValueError("--timeout must be > 0")


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


def options_from(args: argparse.Namespace, **extra: Any) -> Options:
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


class Session:
    """A server (started or given), agent processes, and a client for setup."""

    def __init__(self, opts: Options, workdir: Path, workload: str) -> None:
        self.opts = opts
        self.workdir = workdir
        self.workload = workload
        self.mongo_uri: str | None = opts.mongo_uri
        self.database = opts.database or f"bench_{workload}_{uuid.uuid4().hex[:10]}"
        self.own_database = opts.database is None and opts.server is None
        self.prefix = f"b{uuid.uuid4().hex[:6]}"  # application names of this run
        self.address = opts.server or ""
        self.server: ServerProcess | None = None
        self.workers: list[Worker] = []
        self.extra: list[Worker] = []  # client processes that hold no agents
        self.client: Client | None = None
        self.channel: grpc.aio.Channel | None = None
        self.mongodb = "?"
        self.apps: list[str] = []

    # -- lifecycle ---------------------------------------------------------------

    async def start_server(self, bookmark_interval: float | None = None) -> None:
        """Start (or restart) our server; a given ``--server`` is used as it is."""
        if self.opts.server is not None:
            return
        await self.stop_server()
        assert self.mongo_uri is not None
        self.server = ServerProcess(self.workdir / "server.log")
        self.address = await self.server.start(
            self.mongo_uri,
            self.database,
            self.opts.bookmark_interval if bookmark_interval is None else bookmark_interval,
            self.opts.server_args,
        )
        await self._connect()

    async def stop_server(self) -> None:
        await self._disconnect()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def _connect(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.address)
        self.client = Client(self.address, channel=self.channel, timeout=self.opts.timeout)
        async with asyncio.timeout(30):
            await self.channel.channel_ready()
        await asyncio.gather(
            *(
                w.request(30, op="connect", address=self.address, channels=self.opts.channels)
                for w in self.workers
            )
        )

    async def _disconnect(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
            self.client = None

    async def extra_worker(self, name: str) -> Worker:
        """One more client process, for work apart from the agents (not connected,
        stopped with the others)."""
        worker = Worker(len(self.workers) + len(self.extra), self.workdir / f"{name}.log")
        self.extra.append(worker)
        await worker.start()
        return worker

    async def start_workers(self) -> None:
        for i in range(self.opts.workers):
            worker = Worker(i, self.workdir / f"agents-{i}.log", self.opts.agents_module)
            self.workers.append(worker)
            await worker.start()

    async def remove_apps(self) -> None:
        """Remove the applications we made (in a database that is not ours)."""
        if self.client is not None:
            for app in self.apps:
                with contextlib.suppress(ClientError):
                    await self.client.remove_application(app)

    async def drop_database(self) -> None:
        """Drop the database we made (after our server stopped watching it)."""
        if self.own_database and self.mongo_uri is not None:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongo_uri)
            try:
                await client.drop_database(self.database)
            finally:
                await client.close()

    # -- helpers the workloads use --------------------------------------------------

    def need_client(self) -> Client:
        if self.client is None:
            raise BenchError("no server connection")
        return self.client

    def app(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def create_app(
        self, name: str, units: int, schema: dict[str, Any] | None = None
    ) -> list[str]:
        """An application with ``units`` units, in the server's cache when this returns."""
        client = self.need_client()
        app = self.app(name)
        first = min(units, UNITS_PER_CALL)
        result = await client.create_application(
            app, charm="bench", schema=SCHEMA if schema is None else schema, units=first
        )
        self.apps.append(app)
        created = list(result.units)
        while len(created) < units:
            result = await client.add_units(app, count=min(UNITS_PER_CALL, units - len(created)))
            created.extend(result.units)
        if created:
            await client.get_config(created[-1], min_revision=result.revision)
        return created

    async def config_message(self, unit: str) -> bytes:
        """The unit's current config as a serialized WatchConfigResponse (the
        baseline's pre-encoded message: the same bytes genconf would send)."""
        assert self.channel is not None
        stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        config: types_pb2.Config = await stub.GetConfig(agent_pb2.GetConfigRequest(unit=unit))
        return bytes(agent_pb2.WatchConfigResponse(config=config).SerializeToString())

    async def fire(self, message: bytes, *, topic: str | None = None) -> None:
        """Publish ``message`` to the baseline streams: of every topic, or of one."""
        assert self.channel is not None
        request = message if topic is None else b"\0" + topic.encode() + b"\0" + message
        await self.channel.unary_unary(baseline.FIRE)(request)

    async def server_stats(self, *, collect: bool = False) -> dict[str, Any]:
        """The server process's own figures (`genconf.bench.baseline` Stats)."""
        assert self.channel is not None
        raw = await self.channel.unary_unary(baseline.STATS)(b"gc" if collect else b"")
        stats: dict[str, Any] = json.loads(raw)
        return stats

    def split(self, items: Sequence[T]) -> list[list[T]]:
        """``items`` spread evenly over the agent processes (or values per item, grouped
        as the items are)."""
        n = len(self.workers)
        return [list(items[i::n]) for i in range(n)]

    async def each(
        self, make: Callable[[int, Worker], Awaitable[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """One command per agent process, all at once; their answers in order."""
        return list(await asyncio.gather(*(make(i, w) for i, w in enumerate(self.workers))))

    async def subscribe(
        self,
        group: str,
        kind: str,
        units: Sequence[str],
        *,
        known_hash: str = "",
        fresh_channels: bool = False,
        topics: int = 0,
    ) -> list[float]:
        """Open one stream per unit over the agent processes; when each had its
        first message. Fails unless every stream got one. Baseline streams listen
        to the empty topic, or are spread over ``topics`` topics "0", "1", ..."""
        parts = self.split(units)
        extra: dict[str, Any] = {"topics": topics}
        if fresh_channels:
            extra.update(address=self.address, channels=self.opts.channels)
        replies = await self.each(
            lambda i, w: w.request(
                self.opts.timeout,
                op="subscribe",
                group=group,
                kind=kind,
                units=parts[i],
                known_hash=known_hash,
                timeout=self.opts.timeout,
                **extra,
            )
        )
        firsts: list[float] = []
        errors = 0
        sample = ""
        for reply in replies:
            errors += reply["errors"]
            sample = sample or reply["error_sample"]
            firsts.extend(t for t in reply["first"] if t is not None)
        if errors or len(firsts) != len(units):
            raise BenchError(
                f"{group}: {len(units) - errors} of {len(units)} streams opened; "
                f"{errors} failed (e.g. {sample or 'timed out'})"
            )
        return firsts

    async def wait_configs(self, group: str, totals: Sequence[int]) -> list[dict[str, Any]]:
        """Until agent process i's streams of ``group`` have ``totals[i]`` configs."""
        return await self.each(
            lambda i, w: w.request(
                self.opts.timeout,
                op="wait",
                group=group,
                total=totals[i],
                timeout=self.opts.timeout,
            )
        )

    async def records(self, group: str) -> dict[str, Any]:
        """Every stream's config messages (times and hashes) and bookmark count."""
        replies = await self.each(lambda i, w: w.request(60, op="records", group=group))
        out: dict[str, Any] = {"units": [], "times": [], "hashes": [], "bookmarks": 0, "errors": 0}
        for reply in replies:
            for key in ("units", "times", "hashes"):
                out[key].extend(reply[key])
            out["bookmarks"] += reply["bookmarks"]
            out["errors"] += reply["errors"]
        return out

    async def close(self, group: str) -> None:
        await self.each(lambda i, w: w.request(60, op="close", group=group))


@asynccontextmanager
async def session(
    opts: Options, workload: str, *, start_server: bool = True
) -> AsyncIterator[Session]:
    """Everything a workload needs, stopped (by PID) and cleaned up on the way out."""
    if opts.server is not None and opts.database is not None:
        raise ValueError("--database names the started server's database; not with --server")
    with tempfile.TemporaryDirectory(prefix=f"genconf-bench-{workload}-") as tmp:
        workdir = Path(tmp)
        s = Session(opts, workdir, workload)
        mongod: EmbeddedMongo | None = None
        try:
            if s.mongo_uri is None and opts.server is None:
                mongod = EmbeddedMongo(workdir / "mongo")
                await anyio.to_thread.run_sync(mongod.start)
                s.mongo_uri = mongod.uri
            if s.mongo_uri is not None:
                s.mongodb = await _mongo_version(s.mongo_uri)
            await s.start_workers()
            if opts.server is not None:
                await s._connect()
            elif start_server:
                await s.start_server()
            try:
                yield s
            finally:
                if not s.own_database:
                    with contextlib.suppress(*ERRORS):
                        await s.remove_apps()
        finally:
            for worker in (*s.workers, *s.extra):
                await worker.stop()
            await s.stop_server()
            if mongod is not None:
                await anyio.to_thread.run_sync(mongod.stop)  # its data goes with workdir
            else:
                with contextlib.suppress(*ERRORS):
                    await s.drop_database()


async def _mongo_version(uri: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=10_000
    )
    try:
        info = await client.admin.command("buildInfo")
        return str(info.get("version", "?"))
    finally:
        await client.close()


# ---------------------------------------------------------------------------
# the command line


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


def ms(seconds: float) -> float:
    return seconds * 1000.0
