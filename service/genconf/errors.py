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
    │   └── api.admin.FeedTooSlow an admin feed fell feed_buffer batches behind
    ├── OutOfRange                a revision older than the retained history
    ├── Unavailable               MongoDB unreachable or the cache not ready
    └── MongodNotFound            the embedded mongod binary is missing

PyMongo errors are translated in `store`/`multiwatcher`; the API maps these to
gRPC status codes in one place (`genconf.api.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genconf.domain.values import show_value


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
    """The requested revision is older than what is retained."""


class Unavailable(GenconfError):
    """A dependency (MongoDB, the cache) cannot serve right now; retry."""


class MongodNotFound(GenconfError):
    """No mongod binary to run the embedded replica set."""
