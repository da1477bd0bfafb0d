"""Writes of unit labels: put some on a unit, take others off.

Labels are part of the unit document (``labels: {key: value}``, present only while
the unit has some). A label write changes no unit's branch: cohorts read labels
when they are resolved (`branch track --percent/--selector`, adding units), so
relabelling a unit never moves its config by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain.labels import relabelled
from genconf.domain.names import parse_unit_name
from genconf.domain.results import WriteResult
from genconf.store.core import StoreCore
from genconf.store.documents import UNITS


class LabelWrites(StoreCore):
    """Unit labels."""

    async def label_unit(
        self,
        unit: str,
        set: Mapping[str, str] | None = None,  # the client's order: set is positional
        *,
        remove: Iterable[str] = (),
    ) -> WriteResult:
        """Put ``set`` on ``unit`` and take ``remove`` off (a key it lacks is no error)."""
        parse_unit_name(unit)
        to_set, to_remove = dict(set or {}), list(remove)
        relabelled({}, to_set, to_remove)  # every key and value checked before the write

        async def body(s: AsyncClientSession) -> None:
            doc = await self._unit(s, unit)
            labels = relabelled(doc.get("labels") or {}, to_set, to_remove)
            change = {"$set": {"labels": labels}} if labels else {"$unset": {"labels": ""}}
            await self.db[UNITS].update_one(
                {"_id": unit}, {**change, "$inc": {"revision": 1}}, session=s
            )

        _, revision = await self._transact(body)
        return WriteResult(revision, units=[unit])
