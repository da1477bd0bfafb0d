"""The multiwatcher: one change stream per process, the cache's only writer.

Start without a gap: read every collection at one cluster time T (snapshot read
concern, ``atClusterTime``), load the cache, then open the change stream just
after T, so each change is applied exactly once. Events of one transaction share
a cluster time and are applied as one batch, closed when the stream's current
batch is drained or an event with a later cluster time arrives.

Resume state is one value (`resume.ResumePoint`): the last resume token, or the
snapshot's cluster time to open just after. Resumable errors (network, step
down, restart) reopen the stream from it with backoff; history lost or an
invalid token triggers a reload whose differences from the cache are applied as
ordinary deltas, so no watcher misses a change. So does an event the server
cannot return (over 16 MB, written by some other tool): resuming would meet it
again forever, while a snapshot returns documents, each under 16 MB; the stream
reopens after the snapshot's time, past the event.

Watches are told once per run of transactions applied back to back (`ModelCache.settle`),
not once per transaction: the run ends wherever the multiwatcher would wait or
let others run (a drained server batch before its getMore, an idle getMore, a
yield between transactions, a resync, leaving the stream), so readers never see
a run half-settled, and a unit changed by many transactions of a run is offered
one config.

Every operation on the stream has a deadline a few seconds past ``max_await_ms``:
a primary that hangs (rather than dies) otherwise holds the getMore forever,
while the rest of the driver has long moved to the new primary. The deadlines
are anyio's, not PyMongo's own (``pymongo.timeout``, ``socketTimeoutMS``): with
those, PyMongo sends through ``asyncio.wait_for``, which on Python 3.11 can
swallow a cancellation, and a cancelled multiwatcher (server shutdown, the end of
a bench ingest pass) then hung for good in its next getMore (reproduced).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import anyio.lowlevel
from bson import Timestamp
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import NetworkTimeout, OperationFailure, PyMongoError

from genconf.backoff import Backoff
from genconf.domain.deltas import Batch, Delta, Kind
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.domain.rollouts import COLLECTION as ROLLOUTS
from genconf.domain.rollouts import Rollout
from genconf.readside.cache import ModelCache
from genconf.readside.events import delta_of, readable_all
from genconf.readside.resume import (
    AfterClusterTime,
    Recovery,
    ResumePoint,
    ResumeToken,
    recovery_for,
    token_revision,
    unreadable_revision,
)
from genconf.readside.status import State, WatcherStats
from genconf.security.tokenbook import TokenBook
from genconf.store.documents import APPLICATIONS, BRANCHES, GENERATIONS, TOKENS, UNITS, revision_of

log = logging.getLogger("genconf.readside.multiwatcher")

# Rollout plans are followed like branches; their leases (`genconf.rollout.lease`) are not.
WATCHED: Final = (APPLICATIONS, UNITS, BRANCHES, GENERATIONS, TOKENS, ROLLOUTS)
SNAPSHOT_BATCH: Final = 10_000
# Events after which the stream cannot go on (a reload from a snapshot follows).
_STREAM_ENDING: Final = frozenset({"invalidate", "dropDatabase", "drop"})
# Closing a stream sends killCursors, which a hung primary never answers: it gets
# this long (the cursor is then left to the server's idle timeout).
CLOSE_TIMEOUT: Final = 1.0


class StreamTimeout(NetworkTimeout):
    """MongoDB did not answer the change stream (or a snapshot read) in time."""


@dataclass
class Tuning:
    """Knobs tests may change."""

    max_await_ms: int = 500
    # Each getMore (and opening the stream) fails after max_await_ms plus this many
    # seconds, so a hung primary costs this long, not until the OS gives up.
    stream_timeout: float = 5.0
    # Each command of a snapshot read fails after this many seconds (a hung primary).
    command_timeout: float = 60.0
    # The multiwatcher never reads updateDescription, and dropping it on the server
    # keeps every event within the document's size plus a few hundred bytes, so
    # under 16 MB. Tests turn it off to make an event too large to read.
    drop_update_description: bool = True
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    stream_batch_size: int = 5_000
    # Longest stretch of applying a server batch before readers get a turn.
    yield_interval: float = 0.005


def change_stream_pipeline(tuning: Tuning) -> list[dict[str, Any]]:
    """What the stream asks of MongoDB: the collections it follows, and (by default)
    no ``updateDescription``, which nothing reads and which would double an event."""
    stages: list[dict[str, Any]] = [{"$match": {"ns.coll": {"$in": list(WATCHED)}}}]
    if tuning.drop_update_description:
        stages.append({"$unset": "updateDescription"})
    return stages


@dataclass
class Snapshot:
    applications: list[Application]
    units: list[Unit]
    branches: list[Branch]
    tokens: list[dict[str, Any]]
    last_generation: int
    revision: int
    timestamp: Timestamp
    rollouts: list[Rollout] = field(default_factory=list)


class Multiwatcher:
    """Feeds the cache from the database's change stream. The only cache writer."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        cache: ModelCache,
        *,
        tuning: Tuning | None = None,
        clock: Callable[[], float] = time.time,
        tokens: TokenBook | None = None,
    ) -> None:
        self.db = db
        self.cache = cache
        # Tokens ride the same stream, but never reach the cache or the admin feed.
        self.tokens = tokens if tokens is not None else TokenBook()
        self.tuning = tuning or Tuning()
        self.clock = clock
        self.stats = WatcherStats()
        # Per application, the parsed schema its last delta carried (`retained_bytes`).
        self._schemas: dict[str, object] = {}
        # Where the next open starts (None: load a snapshot first). Tests may set it
        # (e.g. to an invalid token) before a run.
        self.resume: ResumePoint | None = None
        # Delays before resuming; the schedule starts over once a stream works.
        self._backoff = Backoff(self.tuning.backoff_initial, self.tuning.backoff_max)
        self._delays = self._backoff.delays()
        self.retries = 0  # resumes since the stream last worked

    def _stream_works(self) -> None:
        self._delays = self._backoff.delays()
        self.retries = 0

    @property
    def state(self) -> State:
        return self.stats.state

    async def run(self) -> None:
        """Load, then follow the stream until cancelled."""
        self._stream_works()
        self.stats.set_state(State.SYNCING)
        try:
            while True:
                try:
                    if self.resume is None:
                        await self._load()
                    await self._follow()
                except PyMongoError as exc:
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    recovery = recovery_for(exc)
                    if recovery is not Recovery.RESUME:
                        if recovery is Recovery.SKIP_UNREADABLE:
                            self.stats.unreadable_events += 1
                            log.warning(
                                "the change stream cannot return its next event (revision "
                                "%s: %s); reloading from a snapshot and reopening the stream "
                                "after it, skipping that event: watchers get the state it "
                                "led to as ordinary deltas",
                                unreadable_revision(exc) or "unknown",
                                str(exc)[:200],
                            )
                        else:
                            log.warning("change stream history lost (%s); reloading", exc)
                        self.stats.set_state(State.RESYNCING)
                        self.resume = None
                        self._stream_works()
                        continue
                    self.stats.set_state(State.RECONNECTING)
                    self.stats.resumes += 1
                    delay = next(self._delays)
                    self.retries += 1
                    log.warning("change stream error (%s); resuming in %.2fs", exc, delay)
                    await anyio.sleep(delay)
        finally:
            self.stats.set_state(State.STOPPED)

    async def read_snapshot(self) -> Snapshot:
        """Every modelled collection at one cluster time."""
        at: Timestamp | None = None
        docs: dict[str, list[dict[str, Any]]] = {}
        for coll in (APPLICATIONS, UNITS, BRANCHES, TOKENS, ROLLOUTS):
            docs[coll], at = await self._find_at(coll, {}, at)
        gens, at = await self._find_at(GENERATIONS, {}, at, sort={"_id": -1}, limit=1)
        assert at is not None
        last = int(gens[0]["_id"]) if gens else 0
        return Snapshot(
            applications=readable_all(Kind.APPLICATION, docs[APPLICATIONS], self.stats),
            units=readable_all(Kind.UNIT, docs[UNITS], self.stats),
            branches=readable_all(Kind.BRANCH, docs[BRANCHES], self.stats),
            tokens=docs[TOKENS],
            last_generation=last,
            revision=revision_of(at),
            timestamp=at,
            rollouts=readable_all(Kind.ROLLOUT, docs[ROLLOUTS], self.stats),
        )

    async def _find_at(
        self,
        coll: str,
        flt: Mapping[str, Any],
        at: Timestamp | None,
        *,
        sort: Mapping[str, int] | None = None,
        limit: int = 0,
    ) -> tuple[list[dict[str, Any]], Timestamp]:
        """A find at cluster time ``at`` (or at a fresh snapshot, whose time it returns)."""
        read_concern: dict[str, Any] = {"level": "snapshot"}
        if at is not None:
            read_concern["atClusterTime"] = at
        cmd: dict[str, Any] = {
            "find": coll,
            "filter": dict(flt),
            "readConcern": read_concern,
            "batchSize": SNAPSHOT_BATCH,
        }
        if sort:
            cmd["sort"] = dict(sort)
        if limit:
            cmd["limit"] = limit
            cmd["singleBatch"] = True
        reply = await self._command(cmd)
        cursor = reply["cursor"]
        out = list(cursor["firstBatch"])
        snapshot_at = cursor.get("atClusterTime", at)
        while cursor.get("id"):
            reply = await self._command(
                {"getMore": cursor["id"], "collection": coll, "batchSize": SNAPSHOT_BATCH}
            )
            cursor = reply["cursor"]
            out.extend(cursor["nextBatch"])
        return out, snapshot_at

    async def _command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        seconds = self.tuning.command_timeout
        with anyio.move_on_after(seconds):
            return await self.db.command(cmd)
        raise StreamTimeout(f"MongoDB did not answer {next(iter(cmd))!r} within {seconds:.1f}s")

    async def _load(self) -> None:
        """(Re)load at one cluster time T; a reload applies its differences as deltas."""
        snap = await self.read_snapshot()
        self._schemas.clear()  # applications removed meanwhile are not remembered
        self.tokens.load(snap.tokens)
        if not self.cache.synced:
            self.cache.load(
                snap.applications,
                snap.units,
                snap.branches,
                snap.last_generation,
                snap.revision,
                rollouts=snap.rollouts,
            )
        else:
            newer = await self._generations_after(self.cache.last_generation, snap.timestamp)
            batch = self.cache.diff_snapshot(
                snap.applications,
                snap.units,
                snap.branches,
                newer,
                snap.revision,
                rollouts=snap.rollouts,
            )
            self.stats.resyncs += 1
            log.info("resync at revision %d: %d difference(s)", snap.revision, len(batch.deltas))
            self.cache.apply_resync(batch)
        self.resume = AfterClusterTime(snap.timestamp)

    async def _generations_after(self, last: int, at: Timestamp) -> list[Generation]:
        docs, _ = await self._find_at(GENERATIONS, {"_id": {"$gt": last}}, at, sort={"_id": 1})
        return readable_all(Kind.GENERATION, docs, self.stats)

    @property
    def _stream_timeout(self) -> float:
        return self.tuning.max_await_ms / 1000 + self.tuning.stream_timeout

    def pipeline(self) -> list[dict[str, Any]]:
        return change_stream_pipeline(self.tuning)

    async def _open(self) -> AsyncChangeStream[dict[str, Any]]:
        assert self.resume is not None, "load a snapshot before opening the stream"
        kwargs = self.resume.open_options()
        seconds = self._stream_timeout
        with anyio.move_on_after(seconds):
            return await self.db.watch(
                self.pipeline(),
                full_document="required",
                max_await_time_ms=self.tuning.max_await_ms,
                batch_size=self.tuning.stream_batch_size,
                **kwargs,
            )
        raise StreamTimeout(f"opening the change stream took over {seconds:.1f}s")

    async def _get_more(self, stream: AsyncChangeStream[dict[str, Any]]) -> dict[str, Any] | None:
        """The next event when the batch in hand is drained: a getMore, with a deadline."""
        seconds = self._stream_timeout
        with anyio.move_on_after(seconds):
            return await stream.try_next()
        raise StreamTimeout(
            f"MongoDB did not answer the change stream within {seconds:.1f}s "
            f"(max_await_ms + stream_timeout): a hung server; resuming elsewhere"
        )

    async def _follow(self) -> None:
        stream = await self._open()
        try:
            await self._read(stream)
        finally:
            # Bounded even when cancelled: a hung primary would hold it forever.
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await stream.close()

    async def _read(self, stream: AsyncChangeStream[dict[str, Any]]) -> None:
        """Apply the stream's events, one transaction per batch, until it fails;
        the run is settled whenever it stops (even by an error or a cancellation)."""
        try:
            await self._read_runs(stream)
        finally:
            self.cache.settle()

    async def _read_runs(self, stream: AsyncChangeStream[dict[str, Any]]) -> None:
        """Apply the stream's events, one transaction per batch, settling each run.

        The hot loop of a catch-up (bench ingest): per event only what it needs,
        the batch-drained check once, the revision computed once."""
        stats, settle = self.stats, self.cache.settle
        stats.set_state(State.SYNCED)
        stats.last_heard = time.monotonic()
        schemas, tokens = self._schemas, self.tokens
        yield_interval = self.tuning.yield_interval
        # The transaction being gathered: its deltas, cluster time, and the
        # resume token of its last event. The resume token moves only when a
        # transaction is applied, so a failure mid-way re-reads it whole.
        pending: list[Delta] = []
        pending_rev = 0
        pending_token: Mapping[str, Any] | None = None
        last_yield = time.perf_counter()
        # Whether the server batch in hand has more events (then no deadline needed).
        more = _batch_has_more(stream)
        while True:
            event = await (stream.try_next() if more else self._get_more(stream))
            # The stream works again: the next failure starts from a short delay.
            if self.retries:
                self._stream_works()
            if event is None:
                self._flush(pending, pending_rev, pending_token)
                pending, pending_token = [], None
                settle()
                self._note_idle(stream)
                more = _batch_has_more(stream)
                continue
            stats.events += 1
            rev = revision_of(event["clusterTime"])
            if event.get("operationType") in _STREAM_ENDING:
                self._flush(pending, pending_rev, pending_token)
                # The database (or a collection) was dropped: the stream cannot go
                # on; reload from a fresh snapshot.
                raise OperationFailure("change stream invalidated by a drop", code=280)
            if pending_token is not None and rev != pending_rev:
                self._flush(pending, pending_rev, pending_token)
                pending, pending_token = [], None
                # A server batch holds up to stream_batch_size events: let the
                # watchers and the API run between transactions, at most every
                # yield_interval (a turn of the event loop per event would cost
                # as much as applying it).
                now = time.perf_counter()
                if now - last_yield >= yield_interval:
                    settle()
                    await anyio.lowlevel.checkpoint()
                    last_yield = time.perf_counter()
            delta = delta_of(event, schemas, stats, rev)
            if delta is not None:
                pending.append(delta)
            elif event["ns"].get("coll") == TOKENS:
                tokens.apply_event(event)
            pending_rev = rev
            # The event's own _id is its resume token (PyMongo's property copies it).
            pending_token = event["_id"]
            more = _batch_has_more(stream)
            if not more:
                # The server batch is drained: the run ends before the getMore.
                self._flush(pending, pending_rev, pending_token)
                pending, pending_token = [], None
                settle()
                stats.lag_seconds = max(0.0, self.clock() - (rev >> 32))

    def _flush(self, pending: list[Delta], revision: int, token: Mapping[str, Any] | None) -> None:
        """Apply one transaction (unsettled: the run's end settles), then move the
        resume token past it."""
        if pending:
            self.cache.apply(Batch(revision, tuple(pending)), settle=False)
            self.stats.batches += 1
        elif token is not None:
            # Nothing the cache models (e.g. a token write), but its revision is
            # applied all the same: a read waiting for it must not wait for idle.
            self.cache.advance(revision)
        if token is not None:
            self.resume = ResumeToken(token)
            self.stats.last_heard = time.monotonic()

    def _note_idle(self, stream: AsyncChangeStream[dict[str, Any]]) -> None:
        """An empty getMore: everything up to the post-batch token has been seen."""
        token = stream.resume_token
        if token is not None:
            self.resume = ResumeToken(token)
        rev = token_revision(token)
        if rev is not None:
            self.cache.advance(rev)
        self.stats.lag_seconds = 0.0
        self.stats.last_heard = time.monotonic()


def _batch_has_more(stream: AsyncChangeStream[dict[str, Any]]) -> bool:
    """Whether the stream's current server batch has more events buffered.

    PyMongo's own change stream asks the same question of its cursor to decide
    which resume token to keep; a transaction's events arrive in one batch unless
    the batch is full, so a drained batch closes the transaction. (Asked of the
    cursor each time: PyMongo replaces it when it resumes by itself.)
    """
    try:
        return bool(stream._cursor._has_next())
    except AttributeError:  # not a PyMongo stream as we know it: one event at a time
        return False
