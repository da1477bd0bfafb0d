"""Where the change stream (re)opens, and what an error on it calls for.

Resume state is one frozen value (PyMongo change streams' shape): the next open
consumes it, and every applied transaction replaces it. Classifying an error is
a pure function of the error, so it is tested without a server.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bson import Timestamp
from pymongo.errors import OperationFailure

from genconf.store.mongo import DOCUMENT_TOO_LARGE

# Server error codes after which resuming from our token cannot work:
# ChangeStreamHistoryLost, ChangeStreamFatalError, InvalidResumeToken, CappedPositionLost.
HISTORY_LOST_CODES: Final = frozenset({286, 280, 260, 136})
# Server error codes that mean the next event can never be read, however often we
# resume: BSONObjectTooLarge (what MongoDB 6.0.5 returns for a change event over
# 16 MB, checked by reproducing it), and the other "document too large" codes.
EVENT_UNREADABLE_CODES: Final = DOCUMENT_TOO_LARGE
_TOKEN_IN_MESSAGE: Final = re.compile(r'_data: "(82[0-9A-Fa-f]{16,})"')


@dataclass(frozen=True, slots=True)
class ResumeToken:
    """Reopen after the event (or post-batch point) this token names."""

    token: Mapping[str, Any]

    def open_options(self) -> dict[str, Any]:
        return {"resume_after": self.token}


@dataclass(frozen=True, slots=True)
class AfterClusterTime:
    """Open just after cluster time ``at`` (a snapshot's), so each change after the
    snapshot is applied exactly once."""

    at: Timestamp

    def open_options(self) -> dict[str, Any]:
        return {"start_at_operation_time": Timestamp(self.at.time, self.at.inc + 1)}


# None where a resume point is expected: nothing to resume from, load a snapshot.
ResumePoint = ResumeToken | AfterClusterTime


class Recovery(enum.Enum):
    """What the multiwatcher does after its stream failed."""

    RESUME = "resume"  # reopen from the resume point, after a backoff
    RELOAD = "reload"  # history lost or an invalid token: reload from a snapshot
    SKIP_UNREADABLE = "skip-unreadable"  # an event too large to read: reload past it


def recovery_for(exc: BaseException) -> Recovery:
    """How to go on after ``exc`` ended the stream."""
    if is_event_unreadable(exc):
        return Recovery.SKIP_UNREADABLE
    if is_history_lost(exc):
        return Recovery.RELOAD
    return Recovery.RESUME


def is_resumable(exc: BaseException) -> bool:
    """Whether reopening from the resume point can get past ``exc``."""
    return recovery_for(exc) is Recovery.RESUME


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
