"""Cohorts on the write side: which branch a new unit joins, and the cohort fields of
branch documents.

A branch that tracks a cohort of an application (`genconf.domain.cohorts`) keeps it
in its document, ``cohorts: {app: {percent, selector}}`` (the field exists only
while it holds one, so a branch without cohorts is stored as before). Adding units
reads these under the application's fence, which `BranchWrites.track_branch` and
`untrack_branch` take too: a unit added while a cohort is tracked or dropped is
placed by the cohort as it is after the other write, never by a stale one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from genconf.domain.cohorts import Cohort
from genconf.store import mongo
from genconf.store.documents import BRANCHES

Database = AsyncDatabase[dict[str, Any]]


def cohorts_of(branch: Mapping[str, Any]) -> dict[str, Cohort]:
    """The cohorts a branch document tracks, per application."""
    return {app: Cohort.from_doc(c) for app, c in (branch.get("cohorts") or {}).items()}


def dropping(branch: Mapping[str, Any], applications: Iterable[str]) -> dict[str, Any]:
    """The update that takes ``applications``' cohorts off a branch document (the whole
    field once none is left); empty when it holds none of them."""
    held = branch.get("cohorts") or {}
    gone = [app for app in applications if app in held]
    if not gone:
        return {}
    if set(held) <= set(gone):
        return {"$unset": {"cohorts": ""}}
    return {"$unset": {f"cohorts.{app}": "" for app in gone}}


async def place_new_units(db: Database, s: AsyncClientSession, docs: list[dict[str, Any]]) -> None:
    """Put each new unit document that tracks no branch on the first branch (by name)
    whose cohort of its application holds it, fencing every branch a unit joins (so a
    concurrent commit or abort of it conflicts). The caller holds the application's
    fence; units of an application a branch tracks as a whole already track it."""
    by_app: dict[str, list[tuple[str, Cohort]]] = {}
    joined: set[str] = set()
    for doc in docs:
        if doc["branch"] is not None:
            continue
        app = doc["application"]
        if app not in by_app:
            by_app[app] = await _cohort_branches(db, s, app)
        for branch, cohort in by_app[app]:
            if cohort.contains(branch, doc["_id"], doc.get("labels") or {}):
                doc["branch"] = branch
                joined.add(branch)
                break
    for branch in sorted(joined):
        await mongo.fence(db, s, "branch", branch)


async def forget_application(db: Database, s: AsyncClientSession, application: str) -> None:
    """Take a removed application's cohort off every branch (a branch must not place
    units of a later application of the same name by the old one's cohort)."""
    held = {f"cohorts.{application}": {"$exists": True}}
    await db[BRANCHES].update_many(
        held, {"$unset": {f"cohorts.{application}": ""}, "$inc": {"revision": 1}}, session=s
    )
    await db[BRANCHES].update_many({"cohorts": {}}, {"$unset": {"cohorts": ""}}, session=s)


async def _cohort_branches(
    db: Database, s: AsyncClientSession, application: str
) -> list[tuple[str, Cohort]]:
    """Each branch tracking a cohort of ``application``, with it, by branch name."""
    cursor = (
        db[BRANCHES]
        .find({f"cohorts.{application}": {"$exists": True}}, {"cohorts": 1}, session=s)
        .sort("_id", 1)
    )
    return [(doc["_id"], Cohort.from_doc(doc["cohorts"][application])) async for doc in cursor]
