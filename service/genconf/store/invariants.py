"""The model's invariants, checked over MongoDB's documents.

They must hold after any interleaving of legal requests (the store fences what
each transaction depends on: see `genconf.store.mongo`). Tests, the soak and
`genconf bench soak` run this checker over the documents themselves, never the
cache, so a bug in the read side cannot hide one in the write side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from genconf.domain import names
from genconf.domain.schema import (
    OptionSpec,
    Schema,
    coerce_value,
    option_for,
    parse_schema,
    require_key,
)
from genconf.errors import InvalidArgument
from genconf.store import limits
from genconf.store.documents import APPLICATIONS, BRANCHES, UNITS

Docs = Mapping[str, Mapping[str, Any]]


def violations(apps: Docs, units: Docs, branches: Docs) -> list[str]:
    """Every broken invariant, one line each (empty when the model is sound)."""
    out: list[str] = []
    schemas: dict[str, dict[str, OptionSpec]] = {}
    for name, app in apps.items():
        size = limits.bson_size(app)
        if size > limits.MAX_APPLICATION_BYTES:
            out.append(f"application {name!r} is {size} bytes, over the limit")
        try:
            schemas[name] = parse_schema(app.get("schema", {}))
        except InvalidArgument as exc:
            out.append(f"application {name!r} has an invalid schema: {exc.message}")
            continue
        out.extend(_unfit(f"master of {name!r}", schemas[name], app["settings"]))
    whole: dict[str, str] = {}  # application -> the branch tracking it as a whole
    for name, branch in branches.items():
        size = limits.bson_size(branch)
        if size > limits.MAX_BRANCH_BYTES:
            out.append(f"branch {name!r} is {size} bytes, over the limit")
        for app_name in branch.get("track_applications", []):
            if app_name not in apps:
                out.append(f"branch {name!r} tracks missing application {app_name!r}")
            elif app_name in whole:
                out.append(
                    f"application {app_name!r} is tracked as a whole by both "
                    f"{whole[app_name]!r} and {name!r}"
                )
            else:
                whole[app_name] = name
        for app_name, changes in branch.get("changes", {}).items():
            if app_name not in apps:
                out.append(f"branch {name!r} holds changes for missing application {app_name!r}")
            elif app_name in schemas:
                values = {k: c["value"] for k, c in changes.items() if "value" in c}
                unset = [k for k, c in changes.items() if "value" not in c]
                out.extend(
                    _unfit(f"branch {name!r} for {app_name!r}", schemas[app_name], values, unset)
                )
    for name, unit in units.items():
        app_name = unit["application"]
        app = apps.get(app_name)
        if app is None:
            out.append(f"unit {name!r} belongs to missing application {app_name!r}")
            continue
        try:
            parsed = names.parse_unit_name(name)
        except InvalidArgument:
            out.append(f"unit {name!r} has a name no call can address")
        else:
            if parsed != (app_name, unit["number"]):
                out.append(f"unit {name!r} has number {unit['number']} of {app_name!r}")
        if unit.get("application_uid", "") != app.get("uid", ""):
            out.append(f"unit {name!r} belongs to another incarnation of {app_name!r}")
        if unit["number"] >= app["next_unit"]:
            out.append(f"unit {name!r} is numbered at or past next_unit {app['next_unit']}")
        branch = unit.get("branch")
        if branch is not None and branch not in branches:
            out.append(f"unit {name!r} tracks missing branch {branch!r}")
        if app_name in whole and branch != whole[app_name]:
            out.append(
                f"unit {name!r} tracks {branch!r}, but branch {whole[app_name]!r} "
                f"tracks application {app_name!r} as a whole"
            )
    return out


def _unfit(
    where: str,
    schema: Schema,
    values: Mapping[str, Any],
    unset: list[str] | None = None,
) -> list[str]:
    out = [
        f"{where}: unset key {key!r} is not in the schema"
        for key in unset or ()
        if option_for(schema, key) is None
    ]
    for key, value in values.items():
        try:
            coerce_value(key, require_key(schema, key), value)
        except InvalidArgument as exc:
            out.append(f"{where}: {exc.message}")
    return out


async def load_documents(
    db: AsyncDatabase[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Applications, units and branches read at one snapshot (so a check made while
    writes go on still sees a state some serial order produced)."""
    async with db.client.start_session(snapshot=True) as session:
        found = []
        for coll in (APPLICATIONS, UNITS, BRANCHES):
            found.append({d["_id"]: d async for d in db[coll].find({}, session=session)})
    return found[0], found[1], found[2]


async def check_database(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    return violations(*(await load_documents(db)))
