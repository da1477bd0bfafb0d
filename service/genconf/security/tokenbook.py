"""The tokens this process knows, fed by the multiwatcher like the model cache.

Authentication reads tokens here, in memory, on every call. The multiwatcher
loads them with its snapshot and applies every later change from its one change
stream, so a revocation on any replica reaches every replica within the
stream's latency, and ends the streams opened with that token.

An agent token is also bound to one incarnation of its unit (`auth.incarnation_problem`).
The book judges that against the model cache it is given (``units``), and
the expiry sweep announces such tokens too, so a stream whose unit was replaced
without being seen to go (a reload after lost history) ends like a revoked one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from genconf.security import auth
from genconf.security.auth import TokenRecord

Listener = Callable[[str], None]


class UnitDirectory(Protocol):
    """What the book needs of the model cache: the units that exist now, and
    whether it has loaded them at all (before that, nothing can be judged)."""

    @property
    def synced(self) -> bool: ...

    @property
    def units(self) -> Mapping[str, Any]: ...  # name -> record with a ``uid``


class TokenBook:
    """Token records by id; listeners hear when a token stops being usable."""

    def __init__(self, units: UnitDirectory | None = None) -> None:
        self.records: dict[str, TokenRecord] = {}
        self._revisions: dict[str, int] = {}
        self._listeners: dict[str, set[Listener]] = {}
        self.units = units

    def incarnation_problem(
        self, token_id: str, role: auth.Role, unit: str | None, unit_uid: str
    ) -> str | None:
        """Why an agent token no longer matches the unit it names (None: it does, it
        is no agent token, or the cache has not loaded the model yet)."""
        units = self.units
        if role is not auth.Role.AGENT or units is None or not units.synced:
            return None
        current = units.units.get(unit or "")
        return auth.incarnation_problem(
            token_id, unit, unit_uid, None if current is None else current.uid
        )

    def principal_problem(self, principal: auth.Principal) -> str | None:
        """`incarnation_problem` for the caller of an RPC."""
        return self.incarnation_problem(
            principal.token_id, principal.role, principal.unit, principal.unit_uid
        )

    def get(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Replace everything (initial load or resync); tokens gone or revoked are announced."""
        fresh = {d["_id"]: d for d in docs}
        for token_id in list(self.records):
            if token_id not in fresh:
                self._drop(token_id)
        for doc in fresh.values():
            self._put(doc)

    def apply_event(self, event: Mapping[str, Any]) -> None:
        """One change event on the ``tokens`` collection."""
        token_id = str(event["documentKey"]["_id"])
        if event.get("operationType") == "delete":
            self._drop(token_id)
        elif event.get("fullDocument") is not None:
            self._put(event["fullDocument"])

    def _put(self, doc: Mapping[str, Any]) -> None:
        token_id = str(doc["_id"])
        revision = int(doc.get("revision", 0))
        if revision < self._revisions.get(token_id, 0):
            return  # a replayed, older state
        record = TokenRecord.from_doc(doc)
        self.records[token_id] = record
        self._revisions[token_id] = revision
        if record.revoked:
            self._announce(token_id)

    def _drop(self, token_id: str) -> None:
        self.records.pop(token_id, None)
        self._revisions.pop(token_id, None)
        self._announce(token_id)

    def _announce(self, token_id: str) -> None:
        for listener in list(self._listeners.get(token_id, ())):
            listener(token_id)

    def listen(self, token_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` when the token is revoked or removed; returns the unsubscriber."""
        self._listeners.setdefault(token_id, set()).add(listener)

        def cancel() -> None:
            listeners = self._listeners.get(token_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[token_id]

        return cancel

    def expired(self, now: dt.datetime) -> list[str]:
        """Ids of tokens with listeners whose expiry has passed, or whose unit is no
        longer the incarnation they were issued for (for the sweeper)."""
        return [
            token_id
            for token_id in self._listeners
            if (record := self.records.get(token_id)) is not None
            and (
                record.expired(now)
                or self.incarnation_problem(record.id, record.role, record.unit, record.unit_uid)
                is not None
            )
        ]

    def announce_expired(self, now: dt.datetime) -> None:
        for token_id in self.expired(now):
            self._announce(token_id)
