"""GetStatus: per application, its version and label, the branches in flight and
where each unit stands (`genconf.domain.fleet`), read from the cache at one revision.

The states are worked out here from the true hashes, so observers (whose hashes are
keyed by `genconf.security.redact`) see the same states as everyone. Version labels
are the one part the cache does not hold (versions are history, read from MongoDB
as `genconf.store.history` reads them): they are looked up after the cache's answer
is built, for the versions it names, so a label is never that of another version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from pymongo.asynchronous.database import AsyncDatabase

from genconf.api import convert
from genconf.api.reads import await_revision
from genconf.domain import fleet, names
from genconf.domain.records import Application, Branch
from genconf.errors import NotFound
from genconf.readside.cache import ModelCache
from genconf.store.documents import VERSIONS, version_id
from genconf.store.history import top_label
from genconf.store.mongo import mongo_errors
from genconf.v1 import controller_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]


async def get_status(
    cache: ModelCache,
    db: AsyncDatabase[dict[str, Any]],
    request: pb.GetStatusRequest,
    context: Context,
) -> pb.StatusResponse:
    """The GetStatus answer: a malformed name fails at once, then the read waits for
    ``min_revision`` (read-your-writes) like every other read."""
    if request.application:
        names.validate_app_name(request.application)
    await await_revision(cache, request.min_revision, context)
    reply = status_of(cache, request.application)
    labels = await current_labels(db, {a.application: a.version for a in reply.applications})
    for app in reply.applications:
        app.label = labels.get(app.application, "")
    return reply


def status_of(cache: ModelCache, application: str = "") -> pb.StatusResponse:
    """Every application's status (or only ``application``'s), from the cache as it
    is now: no await, so one revision throughout. Labels are left empty."""
    if application:
        app = cache.applications.get(application)
        if app is None:
            raise NotFound(f"application {application!r} not found")
        apps = [app]
    else:
        apps = [app for _, app in sorted(cache.applications.items())]
    branches = list(cache.branches.values())
    return pb.StatusResponse(
        applications=[application_status(cache, app, branches) for app in apps],
        revision=cache.revision,
    )


def application_status(
    cache: ModelCache, app: Application, branches: list[Branch]
) -> pb.ApplicationStatus:
    """One application's versions, units and branches (``branches``: every active one)."""
    units = cache.units_of(app.name)
    out = pb.ApplicationStatus(application=app.name, version=app.version)
    states = []
    for unit in units:
        state = fleet.unit_state(cache.config(unit.name).hash, unit.applied)
        states.append(state)
        entry = pb.UnitStatus(unit=unit.name, branch=unit.branch or "", state=state.value)
        report = convert.applied_to_proto(unit.applied)
        if report is not None:
            entry.report.CopyFrom(report)
        out.units.append(entry)
    counts = fleet.count_states(states)
    out.current = counts[fleet.UnitState.CURRENT]
    out.behind = counts[fleet.UnitState.BEHIND]
    out.failed = counts[fleet.UnitState.FAILED]
    out.unreported = counts[fleet.UnitState.UNREPORTED]
    out.branches.extend(
        pb.BranchInFlight(branch=b.branch, units=b.units, keys=b.keys)
        for b in fleet.branches_in_flight(app.name, branches, units)
    )
    return out


async def current_labels(
    db: AsyncDatabase[dict[str, Any]], versions: Mapping[str, int]
) -> dict[str, str]:
    """Application -> the highest label on its version ``versions[application]``
    (applications whose version has none are left out). One query, by ``_id``."""
    if not versions:
        return {}
    ids = [version_id(app, version) for app, version in versions.items()]
    with mongo_errors():
        cursor = db[VERSIONS].find(
            {"_id": {"$in": ids}, "tags.0": {"$exists": True}}, {"application": 1, "tags": 1}
        )
        return {doc["application"]: top_label(doc) async for doc in cursor}
