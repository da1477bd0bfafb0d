"""Change events as typed deltas: decoding, sizing, and leaving out what genconf
cannot read (a document another tool wrote)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from genconf.domain.deltas import (
    COLLECTION_KINDS,
    DELTA_OVERHEAD,
    Delta,
    Kind,
    Record,
    plain_bytes,
)
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.domain.rollouts import Rollout
from genconf.errors import GenconfError
from genconf.readside.status import WatcherStats
from genconf.store.documents import revision_of

log = logging.getLogger("genconf.readside.multiwatcher")


# How each kind of record is read from its document.
_FROM_DOC: Final[dict[Kind, Callable[[Mapping[str, Any]], Record]]] = {
    Kind.APPLICATION: Application.from_doc,
    Kind.UNIT: Unit.from_doc,
    Kind.BRANCH: Branch.from_doc,
    Kind.ROLLOUT: Rollout.from_doc,
    Kind.GENERATION: Generation.from_doc,
}
_MODELLED_OPS: Final = frozenset({"insert", "update", "replace", "delete"})


def record_of(kind: Kind, doc: Mapping[str, Any]) -> Record:
    return _FROM_DOC[kind](doc)


def delta_of(
    event: Mapping[str, Any],
    schemas: dict[str, object] | None = None,
    stats: WatcherStats | None = None,
    revision: int | None = None,
) -> Delta | None:
    """A typed delta from one change event (None for events we do not model or
    cannot read), with its size (`retained_bytes`); ``schemas``: see there.
    ``revision``: the event's, when the caller has already computed it."""
    kind = COLLECTION_KINDS.get((event.get("ns") or {}).get("coll", ""))
    op = event.get("operationType")
    if kind is None or op not in _MODELLED_OPS:
        return None
    key = str(event["documentKey"]["_id"])
    if revision is None:
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
        return _FROM_DOC[kind](doc)
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
    if isinstance(record, Rollout):
        return DELTA_OVERHEAD + plain_bytes(doc.get("transitions"))
    return DELTA_OVERHEAD + plain_bytes(doc.get("applied"))
