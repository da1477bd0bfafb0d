"""The one exception tree of genconf.

    GenconfError                  base; carries a message a person can act on
    ├── InvalidArgument           bad name, unknown key, wrong type, too large
    ├── NotFound                  unknown application, unit, branch, version
    ├── AlreadyExists             duplicate application, unit, branch, label
    ├── VersionMismatch           expected_version differs (expected, actual)
    ├── FailedPrecondition        the model's state forbids the request now
    │   ├── Conflict              commit/revert conflicts (every key listed)
    │   └── NotApplied            a commit waiting for units' applied reports
    ├── Unauthenticated           missing, unknown, expired or revoked token
    ├── PermissionDenied          the token's role may not do this (or no rule)
    ├── ResourceExhausted         a per-token or per-stream limit (named) reached
    │   └── FeedTooSlow           an admin feed fell feed_buffer batches behind (RPC)
    ├── OutOfRange                a revision this server cannot serve (ahead of it)
    │   └── RevisionTooOld        a revision older than the retained history
    ├── Unavailable               MongoDB unreachable or the cache not ready
    ├── MongodNotFound            the embedded mongod binary is missing
    ├── MongodStartError          the embedded mongod died or never became PRIMARY
    ├── WatchClosed               a unit's config watch ended (unit removed, cache closed)
    ├── FeedOverflow              an admin feed subscriber fell behind (in process)
    ├── ClientError               a call failed, as the client saw it: status + details
    │   └── TooOld                RevisionTooOld on the server: resume from a snapshot
    ├── UsageError                the command line cannot express the request (exit 2)
    │   └── ConfigFileError       the CLI's config file is unreadable or malformed
    └── BenchError                a benchmark could not produce its figures

Every exception genconf raises on purpose is here. PyMongo errors become these at
one boundary in the store; the API maps them to gRPC status codes in one place
(`genconf.api.errors`), and the client maps a status back (`ClientError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genconf.domain.values import show_value

if TYPE_CHECKING:  # the client's types; the server side never loads grpc through here
    import grpc

    from genconf.v1 import types_pb2


class GenconfError(Exception):
    """Base of every error genconf raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(GenconfError):
    """The request is malformed: fix the input and retry."""


class NotFound(GenconfError):
    """The named object does not exist."""


class AlreadyExists(GenconfError):
    """An object with that name exists already."""


class VersionMismatch(GenconfError):
    """Optimistic locking failed: someone wrote first."""

    def __init__(self, subject: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{subject} is at version {actual}, not the expected version {expected}; "
            "re-read it and retry with expected_version set to the current version"
        )
        self.expected = expected
        self.actual = actual


class FailedPrecondition(GenconfError):
    """The model's current state forbids this request."""


@dataclass(frozen=True)
class ConflictedKey:
    """One key a commit or revert would overwrite against somebody's later change."""

    application: str
    key: str
    expected: Any  # the value the branch started from ("from"); ABSENT when unset
    current: Any  # master's value now; ABSENT when unset
    proposed: Any  # what the branch would write; ABSENT for unset


class Conflict(FailedPrecondition):
    """Master changed under a branch (or generation) since it was touched."""

    def __init__(self, what: str, keys: list[ConflictedKey]) -> None:
        parts = [
            f"{k.application}.{k.key} (from {show_value(k.expected)}, master now "
            f"{show_value(k.current)}, {what} wants {show_value(k.proposed)})"
            for k in keys
        ]
        super().__init__(
            f"{what} conflicts with master on {len(keys)} key(s): "
            + "; ".join(parts)
            + ". Rebase the changes, or pass force to overwrite (last write wins)"
        )
        self.keys = keys


@dataclass(frozen=True)
class MismatchedKey:
    """One key whose value is not what a write said it expected."""

    application: str
    key: str
    expected: Any  # ABSENT: the write expected no value
    actual: Any  # ABSENT: the key has no value
    branch: str = ""  # "": master


class ExpectationFailed(GenconfError):
    """A per-key check-before-update failed: someone changed a key the write depends on."""

    def __init__(self, keys: list[MismatchedKey]) -> None:
        parts = [
            f"{k.application}.{k.key}{f' on branch {k.branch}' if k.branch else ''} "
            f"(expected {show_value(k.expected)}, is {show_value(k.actual)})"
            for k in keys
        ]
        super().__init__(
            f"{len(keys)} key(s) do not hold the expected value: "
            + "; ".join(parts)
            + ". Nothing was written; re-read them and retry with the values you now expect"
        )
        self.keys = keys


class PatchFailed(FailedPrecondition):
    """A unified diff does not apply to the value it was given for."""


class NotApplied(FailedPrecondition):
    """A commit that requires applied reports found units that have not applied the branch."""

    def __init__(self, branch: str, units: list[str]) -> None:
        shown = ", ".join(units[:20]) + (f" and {len(units) - 20} more" if len(units) > 20 else "")
        super().__init__(
            f"branch {branch!r} is not applied yet on {len(units)} tracking unit(s): {shown}; "
            "wait until their agents report the branch's config as applied and ok, "
            "or commit without require_applied"
        )
        self.units = units


class Unauthenticated(GenconfError):
    """No valid credentials: a missing, unknown, expired or revoked token."""


class PermissionDenied(GenconfError):
    """Valid credentials, but this role may not do this."""


class ResourceExhausted(GenconfError):
    """A limit was reached; the message names it."""


class OutOfRange(GenconfError):
    """The requested revision is out of what this server can serve (ahead of it)."""


class RevisionTooOld(OutOfRange):
    """The requested revision is older than what is retained: the client takes a new
    snapshot (it arrives as `TooOld`)."""


class Unavailable(GenconfError):
    """A dependency (MongoDB, the cache) cannot serve right now; retry."""


class MongodNotFound(GenconfError):
    """No mongod binary to run the embedded replica set."""


class FeedTooSlow(ResourceExhausted):
    """An admin feed fell more than ``feed_buffer`` batches behind: a per-stream limit,
    so RESOURCE_EXHAUSTED naming it; the client resumes from the last revision it got."""


class MongodStartError(GenconfError):
    """mongod died or never became PRIMARY; the message carries its log tail."""


class WatchClosed(GenconfError):
    """The watch ended: the unit was removed, or the cache shut down."""

    def __init__(self, reason: str, *, removed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.removed = removed


class FeedOverflow(GenconfError):
    """An admin feed subscriber fell more than its buffer behind; resume from a revision.

    ``max_bytes`` is set when the byte budget, not the batch count, was passed."""

    def __init__(self, buffer: int, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            what = f"more than feed_buffer={buffer} batches behind"
        else:
            what = f"more than feed_bytes={max_bytes} bytes of batches behind"
        super().__init__(f"the admin feed fell {what}")
        self.buffer = buffer
        self.max_bytes = max_bytes


class ClientError(GenconfError):
    """A call failed; ``code`` is the gRPC status, ``detail`` the structured details."""

    def __init__(self, code: grpc.StatusCode, message: str, detail: types_pb2.ErrorDetail) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail

    @property
    def expected_version(self) -> int:
        return self.detail.expected_version

    @property
    def actual_version(self) -> int:
        return self.detail.actual_version

    @property
    def conflicts(self) -> list[types_pb2.ConflictDetail]:
        return list(self.detail.conflicts)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class TooOld(ClientError):
    """The revision to resume from is older than the server retains (`RevisionTooOld`).

    Acting on it: read a snapshot (``Snapshot``, or ``get_config``) and follow from
    its revision; a watch that must not miss a change fails loudly instead."""


class UsageError(GenconfError):
    """A request the command line cannot express (exit 2)."""


class ConfigFileError(UsageError):
    """The config file is unreadable or malformed (a usage error: exit 2)."""


class BenchError(GenconfError):
    """The run could not produce its figures (the message says why)."""
