"""Agent reports, the server's observer key, and the few direct reads of the model.

The direct reads bypass the cache on purpose: recomputation checks compare the
cache with what MongoDB holds, and a unit's uid is checked where a stale cache
could let a removed unit's credentials through.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError
from pymongo.write_concern import WriteConcern

from genconf.domain.records import HEALTH_STATES
from genconf.domain.results import WriteResult
from genconf.errors import GenconfError, InvalidArgument
from genconf.store.core import StoreCore
from genconf.store.documents import APPLICATIONS, BRANCHES, KEYS, OBSERVER_KEY, UNITS
from genconf.store.mongo import mongo_errors

MESSAGE_CHARS: Final = 4096  # of a report's message and health message (the rest is cut)


class ReportWrites(StoreCore):
    """Applied reports, the observer key, and reads straight from MongoDB."""

    async def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every application, unit and branch document, by collection then _id."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with mongo_errors():
            for coll in (APPLICATIONS, UNITS, BRANCHES):
                out[coll] = {d["_id"]: d async for d in self.db[coll].find({})}
        return out

    async def unit_uid(self, name: str) -> str | None:
        """A unit's uid straight from MongoDB (None: no such unit; "" before uids)."""
        with mongo_errors():
            doc = await self.db[UNITS].find_one({"_id": name}, {"uid": 1})
        return None if doc is None else str(doc.get("uid", ""))

    async def set_applied(
        self,
        unit: str,
        *,
        hash: str,
        ok: bool,
        message: str = "",
        health: str = "unknown",
        health_message: str = "",
    ) -> WriteResult:
        """Record an agent's latest applied report on its unit, with the unit's health.

        ``health_since`` keeps the time the unit first reported this health on this
        hash (a rollout's bake time counts from it); a change of either resets it."""
        if health not in HEALTH_STATES:
            raise InvalidArgument(
                f"health must be one of {', '.join(HEALTH_STATES)}, not {health!r}"
            )
        now = self.clock()
        report: dict[str, Any] = {
            "hash": hash,
            "ok": ok,
            "message": message[:MESSAGE_CHARS],
            "at": now,
            "health": health,
            "health_message": health_message[:MESSAGE_CHARS],
            "health_since": None,
        }

        async def body(s: AsyncClientSession) -> None:
            doc = await self._unit(s, unit)
            previous = doc.get("applied") or {}
            if health != "unknown":
                same = previous.get("health") == health and previous.get("hash") == hash
                report["health_since"] = (same and previous.get("health_since")) or now
            await self.db[UNITS].update_one(
                {"_id": unit}, {"$set": {"applied": report}, "$inc": {"revision": 1}}, session=s
            )

        _, revision = await self._transact(body)
        return WriteResult(revision, units=[unit])

    async def observer_key(self) -> bytes:
        """The server secret that keys the config hashes observers see (see
        `genconf.security.redact`): made once, by whichever replica asks first, and then
        the same on every replica and across restarts, so an observer's hashes agree
        wherever it reads them. Written with majority so a failover cannot lose it."""
        keys = self.db.get_collection(KEYS, write_concern=WriteConcern("majority"))
        with mongo_errors():
            doc = await keys.find_one({"_id": OBSERVER_KEY})
            if doc is None:
                try:
                    await keys.insert_one(
                        {
                            "_id": OBSERVER_KEY,
                            "key": Binary(secrets.token_bytes(32)),
                            "created_at": self.clock(),
                        }
                    )
                except DuplicateKeyError:
                    pass  # another replica made it first: everyone uses that one
                doc = await keys.find_one({"_id": OBSERVER_KEY})
        if doc is None or len(bytes(doc["key"])) < 32:
            raise GenconfError(f"the {KEYS} collection holds no usable {OBSERVER_KEY!r} key")
        return bytes(doc["key"])
