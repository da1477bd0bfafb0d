"""The multiwatcher: one change stream per process, the cache's only writer.

Start without a gap: read every collection at one cluster time T (snapshot read
concern, ``atClusterTime``), load the cache, then open the change stream just
after T, so each change is applied exactly once. Events of one transaction share
a cluster time and are applied as one batch, closed when the stream's current
batch is drained or an event with a later cluster time arrives.

Resume state is data: the last resume token. Resumable errors (network, step
down, restart) reopen the stream from it with backoff; history lost or an
invalid token triggers a reload whose differences from the cache are applied as
ordinary deltas, so no watcher misses a change. So does an event the server
cannot return (over 16 MB, written by some other tool): resuming would meet it
again forever, while a snapshot returns documents, each under 16 MB; the stream
reopens after the snapshot's time, past the event.

Every operation on the stream has a deadline a few seconds past ``max_await_ms``:
a primary that hangs (rather than dies) otherwise holds the getMore forever,
while the rest of the driver has long moved to the new primary. The deadlines
are anyio's, not PyMongo's own (``pymongo.timeout``, ``socketTimeoutMS``): with
those, PyMongo sends through ``asyncio.wait_for``, which on Python 3.11 can
swallow a cancellation, and a cancelled multiwatcher (server shutdown, the end of
a bench ingest pass) then hung for good in its next getMore (reproduced).
"""

from __future__ import annotations

import enum
import logging
import random
import re
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

from genconf.domain.deltas import (
    COLLECTION_KINDS,
    DELTA_OVERHEAD,
    Batch,
    Delta,
    Kind,
    Record,
    plain_bytes,
)
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.errors import GenconfError
from genconf.readside.cache import ModelCache
from genconf.security.tokenbook import TokenBook
from genconf.store.writes import APPLICATIONS, BRANCHES, GENERATIONS, TOKENS, UNITS, revision_of

log = logging.getLogger("genconf.readside.multiwatcher")

# Server error codes after which resuming from our token cannot work:
# ChangeStreamHistoryLost, ChangeStreamFatalError, InvalidResumeToken, CappedPositionLost.
HISTORY_LOST_CODES: Final = frozenset({286, 280, 260, 136})
# Server error codes that mean the next event can never be read, however often we
# resume: BSONObjectTooLarge (what MongoDB 6.0.5 returns for a change event over
# 16 MB, checked by reproducing it), and the other "document too large" codes.
EVENT_UNREADABLE_CODES: Final = frozenset({10334, 17419, 17420})
_TOKEN_IN_MESSAGE: Final = re.compile(r'_data: "(82[0-9A-Fa-f]{16,})"')
WATCHED: Final = (APPLICATIONS, UNITS, BRANCHES, GENERATIONS, TOKENS)
SNAPSHOT_BATCH: Final = 10_000
# Closing a stream sends killCursors, which a hung primary never answers: it gets
# this long (the cursor is then left to the server's idle timeout).
CLOSE_TIMEOUT: Final = 1.0


class StreamTimeout(NetworkTimeout):
    """MongoDB did not answer the change stream (or a snapshot read) in time."""


class State(enum.StrEnum):
    STARTING = "starting"
    SYNCING = "syncing"
    SYNCED = "synced"
    RESYNCING = "resyncing"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


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


@dataclass
class WatcherStats:
    state: State = State.STARTING
    events: int = 0
    batches: int = 0
    resumes: int = 0
    resyncs: int = 0
    # Events the server could not return (too large): each skipped by a reload.
    unreadable_events: int = 0
    # Documents (written by another tool) that are not records genconf can read.
    unreadable_documents: int = 0
    last_error: str = ""
    lag_seconds: float = 0.0
    # time.monotonic() when MongoDB last answered the stream (events or an empty
    # getMore, every max_await_ms when idle): how current the cache is known to be.
    last_heard: float = 0.0
    # Bumped on each change of ``state``; `state_changed` waits for it (readiness).
    state_changes: int = 0
    _changed: anyio.Event | None = field(default=None, repr=False, compare=False)

    def set_state(self, state: State) -> None:
        if state is self.state:
            return
        self.state = state
        self.state_changes += 1
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def state_changed(self, seen: int) -> None:
        """Return once ``state_changes`` is no longer ``seen`` (no polling)."""
        while self.state_changes == seen:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()


def change_stream_pipeline(tuning: Tuning) -> list[dict[str, Any]]:
    """What the stream asks of MongoDB: the collections it follows, and (by default)
    no ``updateDescription``, which nothing reads and which would double an event."""
    stages: list[dict[str, Any]] = [{"$match": {"ns.coll": {"$in": list(WATCHED)}}}]
    if tuning.drop_update_description:
        stages.append({"$unset": "updateDescription"})
    return stages


def token_revision(token: Mapping[str, Any] | None) -> int | None:
    """The cluster time encoded at the start of a resume token (KeyString CTimestamp)."""
    if not token:
        return None
    data = token.get("_data")
    if not isinstance(data, str) or len(data) < 18 or not data.startswith("82"):
        return None
    raw = bytes.fromhex(data[2:18])
    return int.from_bytes(raw, "big")


def is_history_lost(exc: BaseException) -> bool:
    """Whether resuming from our token can never work (reload instead)."""
    if isinstance(exc, OperationFailure):
        if exc.code in HISTORY_LOST_CODES:
            return True
        return "resume token" in str(exc).lower() and "not found" in str(exc).lower()
    return False


def is_event_unreadable(exc: BaseException) -> bool:
    """Whether the stream failed on an event the server can never return (larger
    than 16 MB): resuming meets it again, so reload and skip it instead."""
    if not isinstance(exc, OperationFailure):
        return False
    details = exc.details if isinstance(exc.details, Mapping) else {}
    return exc.code in EVENT_UNREADABLE_CODES or details.get("codeName") == "BSONObjectTooLarge"


def unreadable_revision(error: BaseException | str) -> int | None:
    """The revision of the event an `is_event_unreadable` error names, when its
    message quotes the event's resume token (MongoDB 6.0 does)."""
    match = _TOKEN_IN_MESSAGE.search(str(error))
    return token_revision({"_data": match.group(1)}) if match else None


def record_of(kind: Kind, doc: Mapping[str, Any]) -> Record:
    if kind is Kind.APPLICATION:
        return Application.from_doc(doc)
    if kind is Kind.UNIT:
        return Unit.from_doc(doc)
    if kind is Kind.BRANCH:
        return Branch.from_doc(doc)
    return Generation.from_doc(doc)


def delta_of(
    event: Mapping[str, Any],
    schemas: dict[str, object] | None = None,
    stats: WatcherStats | None = None,
) -> Delta | None:
    """A typed delta from one change event (None for events we do not model or
    cannot read), with its size (`retained_bytes`); ``schemas``: see there."""
    op = event.get("operationType")
    ns = event.get("ns") or {}
    kind = COLLECTION_KINDS.get(ns.get("coll", ""))
    if kind is None or op not in ("insert", "update", "replace", "delete"):
        return None
    key = str(event["documentKey"]["_id"])
    revision = revision_of(event["clusterTime"])
    if op == "delete":
        if schemas is not None and kind is Kind.APPLICATION:
            schemas.pop(key, None)
        return Delta(kind, key, revision, None, None, DELTA_OVERHEAD)
    doc = event["fullDocument"]
    record = readable(kind, doc, stats)
    if record is None:
        return None  # the cache keeps the last version it could read
    return Delta(kind, key, revision, record, None, retained_bytes(record, doc, schemas))


# What a document that genconf did not write may raise when read as a record.
_UNREADABLE: Final = (GenconfError, ValueError, TypeError, KeyError, AttributeError)


def readable(
    kind: Kind, doc: Mapping[str, Any], stats: WatcherStats | None = None
) -> Record | None:
    """``doc`` as a record, or None (logged) when it is not one genconf can read:
    a document another tool wrote must not stop the one change stream of every
    replica, so it is left out (on the stream, its last readable version stays)."""
    try:
        return record_of(kind, doc)
    except _UNREADABLE as exc:
        if stats is not None:
            stats.unreadable_documents += 1
        log.error(
            "%s %r is not a document genconf can read (%s: %s); left out until it is "
            "written again as one",
            kind.value,
            doc.get("_id"),
            type(exc).__name__,
            exc,
        )
        return None


def readable_all(
    kind: Kind, docs: list[dict[str, Any]], stats: WatcherStats | None = None
) -> list[Any]:
    return [r for d in docs if (r := readable(kind, d, stats)) is not None]


def retained_bytes(
    record: Record, doc: Mapping[str, Any], schemas: dict[str, object] | None = None
) -> int:
    """Roughly the bytes (as BSON counts them) that keeping a delta of ``doc`` costs:
    what each event makes anew (an application's settings, a branch's or a
    generation's changes). Not its schema while that is the one the application's
    previous state had: records share one parsed schema until it changes
    (`records.parsed_schema`); ``schemas`` holds the last one seen per application.
    A walk of plain data, ~1 us for a small document, far less than decoding it."""
    if isinstance(record, Application):
        size = DELTA_OVERHEAD + plain_bytes(doc.get("settings"))
        if schemas is None or schemas.get(record.name) is not record.schema:
            size += plain_bytes(doc.get("schema"))
            if schemas is not None:
                schemas[record.name] = record.schema
        return size
    if isinstance(record, Branch | Generation):
        return DELTA_OVERHEAD + plain_bytes(doc.get("changes"))
    return DELTA_OVERHEAD + plain_bytes(doc.get("applied"))


@dataclass
class Snapshot:
    applications: list[Application]
    units: list[Unit]
    branches: list[Branch]
    tokens: list[dict[str, Any]]
    last_generation: int
    revision: int
    timestamp: Timestamp


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
        self.resume_token: Mapping[str, Any] | None = None
        self._start_after: Timestamp | None = None
        # Delay before the next resume; back to the initial value once a stream works.
        self._backoff = self.tuning.backoff_initial
        # Test seam: a token to resume from on the first open (e.g. an invalid one).
        self.force_resume_token: Mapping[str, Any] | None = None

    @property
    def state(self) -> State:
        return self.stats.state

    async def run(self) -> None:
        """Load, then follow the stream until cancelled."""
        self._backoff = self.tuning.backoff_initial
        self.stats.set_state(State.SYNCING)
        try:
            while True:
                try:
                    if self._start_after is None and self.resume_token is None:
                        await self._load()
                    await self._follow()
                except PyMongoError as exc:
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    unreadable = is_event_unreadable(exc)
                    if unreadable or is_history_lost(exc):
                        if unreadable:
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
                        self.resume_token = None
                        self._start_after = None
                        self.force_resume_token = None
                        self._backoff = self.tuning.backoff_initial
                        continue
                    self.stats.set_state(State.RECONNECTING)
                    self.stats.resumes += 1
                    delay = self._backoff * (0.5 + random.random() / 2)
                    log.warning("change stream error (%s); resuming in %.2fs", exc, delay)
                    await anyio.sleep(delay)
                    self._backoff = min(self._backoff * 2, self.tuning.backoff_max)
        finally:
            self.stats.set_state(State.STOPPED)

    async def read_snapshot(self) -> Snapshot:
        """Every modelled collection at one cluster time."""
        at: Timestamp | None = None
        docs: dict[str, list[dict[str, Any]]] = {}
        for coll in (APPLICATIONS, UNITS, BRANCHES, TOKENS):
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
                snap.applications, snap.units, snap.branches, snap.last_generation, snap.revision
            )
        else:
            newer = await self._generations_after(self.cache.last_generation, snap.timestamp)
            batch = self.cache.diff_snapshot(
                snap.applications, snap.units, snap.branches, newer, snap.revision
            )
            self.stats.resyncs += 1
            log.info("resync at revision %d: %d difference(s)", snap.revision, len(batch.deltas))
            self.cache.apply_resync(batch)
        self._start_after = snap.timestamp

    async def _generations_after(self, last: int, at: Timestamp) -> list[Generation]:
        docs, _ = await self._find_at(GENERATIONS, {"_id": {"$gt": last}}, at, sort={"_id": 1})
        return readable_all(Kind.GENERATION, docs, self.stats)

    @property
    def _stream_timeout(self) -> float:
        return self.tuning.max_await_ms / 1000 + self.tuning.stream_timeout

    def pipeline(self) -> list[dict[str, Any]]:
        return change_stream_pipeline(self.tuning)

    async def _open(self) -> AsyncChangeStream[dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        token = self.force_resume_token or self.resume_token
        self.force_resume_token = None
        if token is not None:
            kwargs["resume_after"] = token
        else:
            assert self._start_after is not None
            t = self._start_after
            kwargs["start_at_operation_time"] = Timestamp(t.time, t.inc + 1)
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

    async def _next(self, stream: AsyncChangeStream[dict[str, Any]]) -> dict[str, Any] | None:
        """The next event: from the batch in hand, or a getMore with a deadline."""
        if _batch_has_more(stream):
            return await stream.try_next()
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
        """Apply the stream's events, one transaction per batch, until it fails."""
        self.stats.set_state(State.SYNCED)
        self.stats.last_heard = time.monotonic()
        # The transaction being gathered: its deltas, cluster time, and the
        # resume token of its last event. The resume token moves only when a
        # transaction is applied, so a failure mid-way re-reads it whole.
        pending: list[Delta] = []
        pending_rev = 0
        pending_token: Mapping[str, Any] | None = None
        last_yield = time.perf_counter()
        while True:
            event = await self._next(stream)
            # The stream works again: the next failure starts from a short delay.
            self._backoff = self.tuning.backoff_initial
            if event is None:
                self._flush(pending, pending_rev, pending_token)
                pending, pending_token = [], None
                self._note_idle(stream)
                continue
            self.stats.events += 1
            rev = revision_of(event["clusterTime"])
            if event.get("operationType") in ("invalidate", "dropDatabase", "drop"):
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
                if now - last_yield >= self.tuning.yield_interval:
                    await anyio.lowlevel.checkpoint()
                    last_yield = time.perf_counter()
            delta = delta_of(event, self._schemas, self.stats)
            if delta is not None:
                pending.append(delta)
            elif event["ns"].get("coll") == TOKENS:
                self.tokens.apply_event(event)
            pending_rev = rev
            # The event's own _id is its resume token (PyMongo's property copies it).
            pending_token = event["_id"]
            if not _batch_has_more(stream):
                self._flush(pending, pending_rev, pending_token)
                pending, pending_token = [], None
                self.stats.lag_seconds = max(0.0, self.clock() - (rev >> 32))

    def _flush(self, pending: list[Delta], revision: int, token: Mapping[str, Any] | None) -> None:
        """Apply one transaction, then move the resume token past it."""
        if pending:
            self.cache.apply(Batch(revision, tuple(pending)))
            self.stats.batches += 1
        elif token is not None:
            # Nothing the cache models (e.g. a token write), but its revision is
            # applied all the same: a read waiting for it must not wait for idle.
            self.cache.advance(revision)
        if token is not None:
            self.resume_token = token
            self.stats.last_heard = time.monotonic()

    def _note_idle(self, stream: AsyncChangeStream[dict[str, Any]]) -> None:
        """An empty getMore: everything up to the post-batch token has been seen."""
        token = stream.resume_token
        if token is not None:
            self.resume_token = token
        rev = token_revision(token)
        if rev is not None:
            self.cache.advance(rev)
        self.stats.lag_seconds = 0.0
        self.stats.last_heard = time.monotonic()


def _batch_has_more(stream: AsyncChangeStream[dict[str, Any]]) -> bool:
    """Whether the stream's current server batch has more events buffered.

    PyMongo's own change stream asks the same question of its cursor to decide
    which resume token to keep; a transaction's events arrive in one batch unless
    the batch is full, so a drained batch closes the transaction.
    """
    cursor = getattr(stream, "_cursor", None)
    has_next = getattr(cursor, "_has_next", None)
    return bool(has_next()) if callable(has_next) else False
