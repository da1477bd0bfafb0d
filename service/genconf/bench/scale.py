"""Scale: what each unit costs the server as the model grows (default 1,000, 10,000
and 100,000 units), the smallest size being the baseline of the larger ones.

Method
------
For each size in ``--sizes``, in a database of its own on one mongod (embedded
unless ``--mongo-uri``), with ``--units-per-app`` units per application:

1. **Empty**: start the server (`genconf.bench.server`) on the still empty
   database, `COLD_STARTS` times, each followed by a snapshot load in this
   process (3.); keep the best times, the RSS of the last server after a full
   collection (baseline ``Stats`` with ``gc``), and the best of `RESYNCS`
   reloads (7.) of the empty model: the fixed costs the per-unit figures subtract.
2. **Build** the model with no server running, through the `Store` API, so every
   document is exactly what genconf writes: per application, ``create_application``
   (a five-key schema, two values set, its units), then one branch that
   ``--branch-share`` of its units track (``add_branch``, ``track_branch``) with two
   keys staged (``set_branch_config``); `BUILD_TASKS` applications at a time.
3. **Cold start**: spawn the server on the populated database until it reports
   ready (snapshot loaded into the cache, gRPC health SERVING) and our clients
   are connected; best of `COLD_STARTS`. About a second of it is the process
   starting (imports, connections), whose jitter (tens of ms) exceeds the whole
   load at 1,000 units; so the per-unit figure is the part that grows with the
   model timed on its own: the multiwatcher's snapshot read and the cache's load
   (`Multiwatcher.read_snapshot`, `ModelCache.load`: what the server runs before
   it reports ready), in this process with the server's collector settings,
   best of `COLD_STARTS`; per unit: (populated - empty) / units. The server's
   own start above the empty database's is in the details.
4. **Memory per unit**: the synced server's RSS after a full collection, minus
   the empty database's (same run, same server build), divided by units.
5. **GetConfig** under an open-loop load of ``--rate`` calls/s for ``--duration``
   seconds (after an unmeasured second), spread over ``--workers`` client
   processes of this module's own (``LoadAgents``), random units of the whole
   model. Each call is sent at its scheduled time whatever the earlier ones are
   doing, and its latency runs from that scheduled time, so queueing anywhere
   (server, client loop) shows instead of being hidden by a slower send rate
   (coordinated omission).
6. **Fan-out**: every unit of one application (the middle one) has a
   ``WatchConfig`` stream open from the agent processes; ``--repeat`` rounds of one
   application-wide ``SetConfig`` of a key no branch stages; per round, the time
   from the call until the last of its units has the new config (one monotonic
   clock for all processes); p50 and p99 over the rounds.
7. **Resync after history loss**: the trigger is dropping the (empty) ``rollouts``
   collection, which the change stream follows: the multiwatcher meets the drop
   event and takes exactly the path of lost history (`readside.resume`
   ``Recovery.RELOAD``: a snapshot at one cluster time, diffed against the cache,
   the differences applied, the stream reopened after the snapshot). A real
   history loss needs the oplog (990 MB at least) to roll over under a stalled
   stream, or a hook inside the server; the drop reaches the same code from
   outside. Timed from the drop until a ``GetConfig`` with ``min_revision`` = the
   drop's cluster time is answered: only the reload moves the cache past the
   drop. The server log's "reloading" lines are counted to check that each round
   did reload. Best of `RESYNCS`; per unit: (best - empty best) / units. The
   collection is recreated after each round (its creation is no change event).

Targets: each per-unit cost (memory, snapshot load, resync) and each per-call or
per-application latency (GetConfig p99, fan-out median round) grows at most
1.5x from the first size to the last. The two latencies' ratio is plain: the
work per call or per application stays the same as the model grows.

Client processes, the server and mongod share the machine's cores: on a 2-core
host they compete, at every size alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Final

import grpc
from pymongo import AsyncMongoClient

from genconf.bench.agents import Agents, serve_commands
from genconf.bench.figures import Figure, Report, machine, ms, percentile
from genconf.bench.options import Options, workload_main, workload_parser
from genconf.bench.processes import Worker
from genconf.bench.session import UNITS_PER_CALL, Session, session
from genconf.domain.rollouts import COLLECTION as ROLLOUTS
from genconf.errors import BenchError, ClientError
from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import Multiwatcher
from genconf.readside.supervisor import tune_gc
from genconf.rollout.store import RolloutStore
from genconf.store.documents import revision_of
from genconf.store.mongo import connect
from genconf.store.store import Store
from genconf.v1 import agent_pb2, agent_pb2_grpc

__all__ = ["DEFAULT_SIZES", "main", "run_scale"]

DEFAULT_SIZES: Final = (1_000, 10_000, 100_000)
DEFAULT_UNITS_PER_APP: Final = 100
DEFAULT_BRANCH_SHARE: Final = 0.1
DEFAULT_RATE: Final = 2_000.0
DEFAULT_DURATION: Final = 10.0
DEFAULT_REPEAT: Final = 10  # fan-out rounds per size
TARGET_GROWTH: Final = 1.5
BUILD_TASKS: Final = 16  # applications built at once
COLD_STARTS: Final = 3  # server starts per database state (best kept)
RESYNCS: Final = 3  # reloads per database state (best kept)
WARMUP: Final = 1.0  # seconds of unmeasured load before each GetConfig measurement
LOAD_CLIENT_FLAG: Final = "--load-client"  # `python -m genconf.bench.scale` as a client
RELOAD_LINE: Final = "; reloading"  # what the multiwatcher logs when it reloads

# Five options, two set at creation, two staged on each application's branch,
# and `seq`, which only the fan-out changes (no branch stages it: every unit
# of the application is notified).
SCHEMA: Final[dict[str, Any]] = {
    "port": {"type": "int", "default": 8080, "description": "listen port"},
    "workers": {"type": "int", "default": 4, "description": "worker processes"},
    "log-level": {"type": "string", "default": "info", "description": "log level"},
    "debug": {"type": "boolean", "default": False, "description": "debug endpoints"},
    "seq": {"type": "int", "default": 0, "description": "bumped by the bench"},
}
STAGED: Final[dict[str, Any]] = {"log-level": "debug", "debug": True}


def _say(message: str) -> None:
    """Progress on stderr (a full run takes minutes; stdout is the report)."""
    print(f"genconf bench scale: {message}", file=sys.stderr, flush=True)


# -- the client processes of the GetConfig load ----------------------------------------


class LoadAgents(Agents):
    """`Agents` plus ``open_loop {units, rate, duration, seed, timeout}``: ``GetConfig``
    of random units at a fixed schedule over the connected channels; answers each
    completed call's latency from its scheduled send time (seconds), the errors,
    and how late the sender itself fell behind its schedule at worst."""

    COMMANDS: ClassVar[tuple[str, ...]] = (*Agents.COMMANDS, "open_loop")

    async def open_loop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if not self.channels:
            raise ValueError("connect first")
        units: list[str] = cmd["units"]
        rate: float = cmd["rate"]
        timeout: float = cmd["timeout"]
        rng = random.Random(cmd["seed"])
        methods = [agent_pb2_grpc.AgentServiceStub(c).GetConfig for c in self.channels]
        count = max(1, round(rate * cmd["duration"]))
        latencies: list[float] = []
        errors = 0
        sample = ""
        clock = time.monotonic

        async def one(i: int, due: float) -> None:
            nonlocal errors, sample
            request = agent_pb2.GetConfigRequest(unit=units[rng.randrange(len(units))])
            try:
                await methods[i % len(methods)](request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                errors += 1
                sample = sample or f"{exc.code().name}: {exc.details()}"
                return
            latencies.append(clock() - due)

        tasks: list[asyncio.Task[None]] = []
        late = 0.0
        cpu = os.times()
        start = clock() + 0.01
        for i in range(count):
            due = start + i / rate
            wait = due - clock()
            if wait > 0:
                # Pacing to the schedule (the open loop itself), not synchronization.
                await asyncio.sleep(wait)
            else:
                late = max(late, -wait)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        return {
            "latencies": latencies,
            "errors": errors,
            "error_sample": sample,
            "sent": count,
            "seconds": clock() - start,
            "max_send_lag": late,
            "cpu_seconds": _cpu_since(cpu),
        }


def _cpu_since(before: os.times_result) -> float:
    now = os.times()
    return now.user + now.system - before.user - before.system


def _append(path: Path) -> IO[bytes]:
    """The process's stderr log (closed by `Worker.stop`)."""
    return open(path, "ab")


class LoadProcess(Worker):
    """A client process answering `LoadAgents`' commands
    (``python -m genconf.bench.scale --load-client``)."""

    async def start(self) -> None:
        self._log = _append(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "genconf.bench.scale",
            LOAD_CLIENT_FLAG,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 28,
        )


# -- one size ---------------------------------------------------------------------------


@dataclass
class SizeResult:
    """Everything measured at one size (times in seconds, memory in bytes)."""

    units: int
    applications: int
    branches: int
    tracking_units: int
    build_s: float = 0.0
    empty_starts_s: list[float] = field(default_factory=list)
    starts_s: list[float] = field(default_factory=list)
    empty_rss: int = 0
    rss: int = 0
    full_gc_s: float = 0.0  # the synced server's Stats call with a full collection
    empty_loads_s: list[float] = field(default_factory=list)
    loads_s: list[float] = field(default_factory=list)
    empty_resyncs_s: list[float] = field(default_factory=list)
    resyncs_s: list[float] = field(default_factory=list)
    get_latencies_s: list[float] = field(default_factory=list)
    get_sent: int = 0
    get_errors: int = 0
    get_seconds: float = 0.0
    get_send_lag_s: float = 0.0
    get_server_cpu_s: float = 0.0
    get_client_cpu_s: float = 0.0
    fanout_s: list[float] = field(default_factory=list)
    fanout_ack_s: list[float] = field(default_factory=list)
    fanout_server_cpu_s: list[float] = field(default_factory=list)

    @property
    def start_s(self) -> float:
        return min(self.starts_s)

    @property
    def start_above_empty_s(self) -> float:
        return min(self.starts_s) - min(self.empty_starts_s)

    @property
    def load_s(self) -> float:
        return min(self.loads_s)

    @property
    def load_us_per_unit(self) -> float:
        return (min(self.loads_s) - min(self.empty_loads_s)) / self.units * 1e6

    @property
    def kb_per_unit(self) -> float:
        return (self.rss - self.empty_rss) / self.units / 1024

    @property
    def resync_s(self) -> float:
        return min(self.resyncs_s)

    @property
    def resync_us_per_unit(self) -> float:
        return (min(self.resyncs_s) - min(self.empty_resyncs_s)) / self.units * 1e6

    @property
    def get_server_cpu_us(self) -> float:
        return self.get_server_cpu_s / self.get_sent * 1e6

    def get_ms(self, p: float) -> float:
        return ms(percentile(self.get_latencies_s, p))

    def fanout_ms(self, p: float) -> float:
        return ms(percentile(self.fanout_s, p))

    def summary(self) -> dict[str, Any]:
        """The raw figures of the size, rounded, for the report's details."""
        out = asdict(self)
        out.pop("get_latencies_s")
        out["get_completed"] = len(self.get_latencies_s)
        out["get_calls_per_s"] = len(self.get_latencies_s) / self.get_seconds
        out["get_server_cpu_us_per_call"] = self.get_server_cpu_us
        out["get_client_cpu_us_per_call"] = self.get_client_cpu_s / self.get_sent * 1e6
        out["cold_start_above_empty_ms"] = ms(self.start_above_empty_s)
        out["empty_rss_mib"] = self.empty_rss / 2**20
        out["rss_mib"] = self.rss / 2**20
        del out["empty_rss"], out["rss"]
        return _rounded(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _plan(size: int, units_per_app: int) -> list[int]:
    """Units per application: full applications, the last one holding the rest."""
    full, rest = divmod(size, units_per_app)
    return [units_per_app] * full + ([rest] if rest else [])


async def build(
    store: Store, prefix: str, counts: Sequence[int], branch_share: float
) -> tuple[list[list[str]], int]:
    """The model of one size through the Store API; each application's units, and
    how many units track a branch."""
    apps: list[list[str]] = [[] for _ in counts]
    tracking = 0
    todo = iter(range(len(counts)))

    async def one(i: int) -> None:
        nonlocal tracking
        app, n = f"{prefix}-{i:05d}", counts[i]
        first = min(n, UNITS_PER_CALL)
        result = await store.create_application(
            app,
            charm="bench",
            schema=SCHEMA,
            settings={"port": 9000 + i % 1000, "workers": 2 + i % 7},
            units=first,
            reason="bench scale",
        )
        units = list(result.units)
        while len(units) < n:
            more = await store.add_units(app, count=min(UNITS_PER_CALL, n - len(units)))
            units.extend(more.units)
        apps[i] = units
        share = round(n * branch_share)
        if share:
            branch = f"{app}-canary"
            await store.add_branch(branch)
            await store.track_branch(branch, units=units[:share])
            await store.set_branch_config(branch, app, set=STAGED)
            tracking += share

    async def worker() -> None:
        for i in todo:  # one shared iterator: each application is built once
            await one(i)

    await asyncio.gather(*(worker() for _ in range(min(BUILD_TASKS, len(counts)))))
    return apps, tracking


@contextlib.contextmanager
def _server_gc() -> Iterator[None]:
    """The server's collector settings (`tune_gc`) for a while, then this process's."""
    threshold = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def snapshot_load(store: Store) -> float:
    """Seconds to read the snapshot and load a fresh cache from it, as a server's
    multiwatcher does before it reports ready (`Multiwatcher.read_snapshot`, then
    `ModelCache.load`), timed here with the server's collector settings: the part of
    a cold start that grows with the model, free of the process start's noise."""
    with _server_gc():
        cache = ModelCache()
        started = time.perf_counter()
        snap = await Multiwatcher(store.db, cache).read_snapshot()
        cache.load(
            snap.applications,
            snap.units,
            snap.branches,
            snap.last_generation,
            snap.revision,
            rollouts=snap.rollouts,
        )
        elapsed = time.perf_counter() - started
        del cache, snap
    gc.collect()
    return elapsed


async def _timed_start(s: Session) -> float:
    """Spawn the server until it is ready and our processes are connected."""
    await s.stop_server()
    started = time.monotonic()
    await s.start_server()
    elapsed = time.monotonic() - started
    health = await s.need_client().health()
    if health != "SERVING":
        raise BenchError(f"the server reported ready but its health is {health}")
    return elapsed


def _reloads(s: Session) -> int:
    """Reloads the server processes of this run have logged so far."""
    with contextlib.suppress(OSError):
        return (s.workdir / "server.log").read_text(errors="replace").count(RELOAD_LINE)
    return 0


async def _resync(s: Session, mongo: AsyncMongoClient[dict[str, Any]], unit: str | None) -> float:
    """Make the server reload (drop ``rollouts``); seconds until it answers a read
    at the drop's cluster time. Recreates the collection afterwards."""
    client = s.need_client()
    db = mongo[s.database]
    before = _reloads(s)
    started = time.monotonic()
    reply = await db.command("drop", ROLLOUTS)
    revision = revision_of(reply["operationTime"])
    async with asyncio.timeout(s.opts.timeout):
        while True:
            try:
                if unit is None:
                    await client.list_applications(min_revision=revision)
                else:
                    await client.get_config(unit, min_revision=revision)
                break
            except ClientError as exc:  # the server's own bound on one wait: ask again
                if exc.code != grpc.StatusCode.UNAVAILABLE:
                    raise
    elapsed = time.monotonic() - started
    after = _reloads(s)
    await RolloutStore(Store(mongo, s.database)).ensure_schema()
    if after != before + 1:
        raise BenchError(
            f"dropping {ROLLOUTS!r} should make the server reload once; "
            f"its log shows {after - before} reloads"
        )
    return elapsed


async def _get_load(
    s: Session,
    loaders: Sequence[Worker],
    units: Sequence[str],
    rate: float,
    duration: float,
    seed: int,
) -> list[dict[str, Any]]:
    """One open-loop GetConfig run, the rate split evenly over the load processes."""
    return list(
        await asyncio.gather(
            *(
                w.request(
                    duration + s.opts.timeout,
                    op="open_loop",
                    units=list(units),
                    rate=rate / len(loaders),
                    duration=duration,
                    seed=seed * 1000 + i,
                    timeout=s.opts.timeout,
                )
                for i, w in enumerate(loaders)
            )
        )
    )


async def _fanout(
    s: Session, app: str, units: Sequence[str], rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Per round: seconds from the SetConfig until the last of ``units`` has it,
    until the SetConfig was acknowledged, and the server's CPU seconds."""
    group = f"fanout-{app}"
    await s.subscribe(group, "genconf", units)
    client = s.need_client()
    per_worker = [len(part) for part in s.split(units)]
    starts: list[float] = []
    acks: list[float] = []
    cpu: list[float] = []
    for r in range(1, rounds + 1):
        before = await s.server_stats()
        t0 = time.monotonic()
        await client.set_config(app, {"seq": r}, reason="bench scale fan-out")
        acks.append(time.monotonic() - t0)
        starts.append(t0)
        await s.wait_configs(group, [n * (r + 1) for n in per_worker])
        cpu.append((await s.server_stats())["cpu_seconds"] - before["cpu_seconds"])
    records = await s.records(group)
    await s.close(group)
    if records["errors"]:
        raise BenchError(f"fan-out: {records['errors']} streams failed")
    last: list[float] = []
    for r, t0 in enumerate(starts, start=1):
        got = [times[r] - t0 for times in records["times"] if len(times) > r]
        if len(got) != len(units):
            raise BenchError(f"fan-out round {r}: {len(got)} of {len(units)} units had it")
        last.append(max(got))
    return last, acks, cpu


async def _measure_size(
    s: Session,
    mongo: AsyncMongoClient[dict[str, Any]],
    loaders: Sequence[Worker],
    size: int,
    *,
    units_per_app: int,
    branch_share: float,
    rate: float,
    duration: float,
    seed: int,
) -> SizeResult:
    opts = s.opts
    counts = _plan(size, units_per_app)
    branches = sum(1 for n in counts if round(n * branch_share))
    res = SizeResult(units=size, applications=len(counts), branches=branches, tracking_units=0)

    # 1. The empty database: the fixed costs.
    store = Store(mongo, s.database)
    for _ in range(COLD_STARTS):
        res.empty_starts_s.append(await _timed_start(s))
        res.empty_loads_s.append(await snapshot_load(store))
    res.empty_rss = (await s.server_stats(collect=True))["rss_bytes"]
    for _ in range(RESYNCS):
        res.empty_resyncs_s.append(await _resync(s, mongo, None))
    await s.stop_server()
    _say(
        f"{size:,} units: empty database: ready in {min(res.empty_starts_s):.2f} s, "
        f"RSS {res.empty_rss / 2**20:.1f} MiB"
    )

    # 2. The model, with no server running.
    started = time.monotonic()
    apps, res.tracking_units = await build(store, f"{s.prefix}-{size}", counts, branch_share)
    res.build_s = time.monotonic() - started
    units = [u for app in apps for u in app]
    _say(
        f"{size:,} units: built {len(apps):,} applications, {branches:,} branches "
        f"in {res.build_s:.1f} s ({size / res.build_s:,.0f} units/s)"
    )

    # 3. and 4. Cold starts (and snapshot loads in this process, while the server is
    # idle); the memory of the last server, synced.
    for _ in range(COLD_STARTS):
        res.starts_s.append(await _timed_start(s))
        res.loads_s.append(await snapshot_load(store))
    started = time.monotonic()
    res.rss = (await s.server_stats(collect=True))["rss_bytes"]
    res.full_gc_s = time.monotonic() - started
    _say(
        f"{size:,} units: ready in {res.start_s:.2f} s (snapshot load {ms(res.load_s):.0f} ms), "
        f"RSS {res.rss / 2**20:.1f} MiB ({res.kb_per_unit:.2f} KB per unit)"
    )

    # 5. GetConfig, open loop.
    await asyncio.gather(
        *(w.request(30, op="connect", address=s.address, channels=opts.channels) for w in loaders)
    )
    await _get_load(s, loaders, units, rate, min(WARMUP, duration), seed)
    before = await s.server_stats()
    replies = await _get_load(s, loaders, units, rate, duration, seed + 1)
    res.get_server_cpu_s = (await s.server_stats())["cpu_seconds"] - before["cpu_seconds"]
    for reply in replies:
        res.get_client_cpu_s += reply["cpu_seconds"]
        res.get_latencies_s.extend(reply["latencies"])
        res.get_sent += reply["sent"]
        res.get_errors += reply["errors"]
        res.get_seconds = max(res.get_seconds, reply["seconds"])
        res.get_send_lag_s = max(res.get_send_lag_s, reply["max_send_lag"])
    if res.get_errors or not res.get_latencies_s:
        sample = next((r["error_sample"] for r in replies if r["error_sample"]), "none")
        raise BenchError(
            f"GetConfig: {res.get_errors} of {res.get_sent} calls failed (e.g. {sample})"
        )
    _say(f"{size:,} units: GetConfig p50 {res.get_ms(50):.2f} ms, p99 {res.get_ms(99):.2f} ms")

    # 6. Fan-out to the middle application's units.
    middle = len(apps) // 2
    res.fanout_s, res.fanout_ack_s, res.fanout_server_cpu_s = await _fanout(
        s, f"{s.prefix}-{size}-{middle:05d}", apps[middle], opts.repeat
    )
    _say(f"{size:,} units: fan-out to {len(apps[middle])} p50 {res.fanout_ms(50):.1f} ms")

    # 7. Resync (last: it drops and recreates a collection).
    for _ in range(RESYNCS):
        res.resyncs_s.append(await _resync(s, mongo, units[0]))
    _say(f"{size:,} units: resync {ms(res.resync_s):.0f} ms")
    await s.stop_server()
    return res


async def run_scale(
    opts: Options,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    units_per_app: int = DEFAULT_UNITS_PER_APP,
    branch_share: float = DEFAULT_BRANCH_SHARE,
    rate: float = DEFAULT_RATE,
    duration: float = DEFAULT_DURATION,
) -> Report:
    """Run the scale workload (see the module docstring)."""
    opts.check()
    if opts.server is not None:
        raise ValueError(
            "scale starts and restarts its own server (cold starts, an empty database); "
            "drop --server"
        )
    if not sizes or any(n < 1 for n in sizes) or len(set(sizes)) != len(sizes):
        raise ValueError("--sizes must name at least one size, each >= 1 and once")
    if units_per_app < 1:
        raise ValueError("--units-per-app must be >= 1")
    if not 0 <= branch_share <= 1:
        raise ValueError("--branch-share must be between 0 and 1")
    if rate <= 0 or duration <= 0:
        raise ValueError("--rate and --duration must be > 0")
    results: dict[int, SizeResult] = {}
    async with session(opts, "scale", start_server=False) as s:
        assert s.mongo_uri is not None
        mongo = connect(s.mongo_uri)  # the Store's own client options
        base = s.database
        try:
            loaders: list[Worker] = []
            for i in range(opts.workers):
                loader = LoadProcess(100 + i, s.workdir / f"load-{i}.log")
                s.extra.append(loader)  # stopped with the session's processes
                loaders.append(loader)
                await loader.start()
            existing = set(await mongo.list_database_names())
            for n, size in enumerate(sizes):
                s.database = f"{base}_{size}"
                if s.database in existing:
                    raise ValueError(
                        f"database {s.database!r} exists; the bench builds each size in a fresh one"
                    )
                try:
                    results[size] = await _measure_size(
                        s,
                        mongo,
                        loaders,
                        size,
                        units_per_app=units_per_app,
                        branch_share=branch_share,
                        rate=rate,
                        duration=duration,
                        seed=n * 10,
                    )
                finally:
                    await s.stop_server()
                    if s.own_database:
                        await mongo.drop_database(s.database)
        finally:
            s.database = base
            await mongo.close()
        mongodb = s.mongodb
    return _report(opts, results, units_per_app, branch_share, rate, duration, mongodb)


# -- the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One per-size figure: its name, unit, how to read it from a size, and whether
    its growth from the first size to the last has a target."""

    name: str
    unit: str
    of: Callable[[SizeResult], float]
    growth: bool = False


METRICS: Final = (
    Metric("build", "s", lambda r: r.build_s),
    Metric("memory per unit", "KB", lambda r: r.kb_per_unit, growth=True),
    Metric("cold start", "s", lambda r: r.start_s),
    Metric("snapshot load", "ms", lambda r: ms(r.load_s)),
    Metric("snapshot load per unit", "us", lambda r: r.load_us_per_unit, growth=True),
    Metric("resync", "ms", lambda r: ms(r.resync_s)),
    Metric("resync per unit", "us", lambda r: r.resync_us_per_unit, growth=True),
    Metric("GetConfig p50", "ms", lambda r: r.get_ms(50)),
    Metric("GetConfig p99", "ms", lambda r: r.get_ms(99), growth=True),
    Metric("GetConfig CPU per call", "us", lambda r: r.get_server_cpu_us),
    Metric("fan-out median round", "ms", lambda r: r.fanout_ms(50), growth=True),
    Metric("fan-out p99 round", "ms", lambda r: r.fanout_ms(99)),
)


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _report(
    opts: Options,
    results: dict[int, SizeResult],
    units_per_app: int,
    branch_share: float,
    rate: float,
    duration: float,
    mongodb: str,
) -> Report:
    sizes = list(results)
    first, last = results[sizes[0]], results[sizes[-1]]
    figures: list[Figure] = []
    for metric in METRICS:
        base = metric.of(first)
        for size in sizes:
            figures.append(
                Figure(
                    f"{metric.name} @{_label(size)}",
                    metric.unit,
                    metric.of(results[size]),
                    base,
                    baseline_name=f"@{_label(sizes[0])}",
                )
            )
    if len(sizes) > 1:
        for metric in METRICS:
            if metric.growth:
                before, after = metric.of(first), metric.of(last)
                figures.append(
                    Figure(
                        f"{metric.name} {_label(sizes[-1])}/{_label(sizes[0])}",
                        "x",
                        after / before if before > 0 else math.inf,
                        target_max=TARGET_GROWTH,
                    )
                )
    return Report(
        workload="scale",
        title=f"the server at {', '.join(f'{n:,}' for n in sizes)} units "
        f"({units_per_app} per application, {branch_share:.0%} tracking a branch): "
        f"memory, cold start, resync, GetConfig at {rate:,.0f}/s open loop, fan-out "
        f"to one application",
        baseline=f"the same figures at the smallest size ({sizes[0]:,} units), same run; "
        "per-unit costs are above the empty database's",
        params={
            "sizes": sizes,
            "units_per_app": units_per_app,
            "branch_share": branch_share,
            "rate": rate,
            "duration_s": duration,
            "fanout_rounds": opts.repeat,
            "cold_starts": COLD_STARTS,
            "resyncs": RESYNCS,
            "build_tasks": BUILD_TASKS,
            **opts.run_params("started (restarted per measurement)"),
        },
        machine=machine(mongodb),
        figures=figures,
        details={f"size {size:,}": results[size].summary() for size in sizes},
    )


# -- the command line -------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes unit counts separated by commas (e.g. 1000,10000), not {text!r}"
        ) from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"every size must be >= 1, not {text!r}")
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"name each size once, not {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "scale",
        "Per-unit server costs (memory, cold start, resync) and per-call latencies "
        "(GetConfig under open-loop load, fan-out to one application) at growing model "
        f"sizes; targets: each grows <= {TARGET_GROWTH:g}x from the first size to the last.",
        streams=None,
        repeat=DEFAULT_REPEAT,
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="units per model, comma-separated; the first is the baseline "
        f"(default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--units-per-app", type=int, default=DEFAULT_UNITS_PER_APP, help="units per application"
    )
    parser.add_argument(
        "--branch-share",
        type=float,
        default=DEFAULT_BRANCH_SHARE,
        help="share of each application's units tracking its branch",
    )
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="GetConfig calls/s (open loop)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        help="seconds of GetConfig load measured per size",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return workload_main(
        build_parser(),
        argv,
        run_scale,
        "sizes",
        "units_per_app",
        "branch_share",
        "rate",
        "duration",
    )


if __name__ == "__main__":
    if sys.argv[1:] == [LOAD_CLIENT_FLAG]:
        asyncio.run(serve_commands(LoadAgents))
        sys.exit(0)
    sys.exit(main())
