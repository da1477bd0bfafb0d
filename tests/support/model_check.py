"""The one oracle of what a server must show: MongoDB's documents.

After any writes (concurrent ones included) the model's invariants hold in MongoDB,
and a server's view (Snapshot, GetConfig of every unit) equals what the documents
say, every unit's config recomputed from scratch (`expected_configs`). Tests that
compare a server, a cache or a fleet of agents with MongoDB use these.

A plain module: tests import it as ``from support.model_check import ...``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from pymongo import MongoClient

from genconf.client import Client
from genconf.domain.values import config_hash
from genconf.store import invariants
from genconf.store.documents import APPLICATIONS, BRANCHES, UNITS, effective_by_unit
from genconf.store.store import Store
from support.servers import settled_model

Documents = dict[str, dict[str, Any]]


def mongo_documents(
    mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> tuple[Documents, Documents, Documents]:
    """The applications, units and branches in MongoDB, each keyed by ``_id``."""
    db = mongo_client[db_name]
    apps, units, branches = (
        {d["_id"]: d for d in db[c].find()} for c in (APPLICATIONS, UNITS, BRANCHES)
    )
    return apps, units, branches


def expected_configs(
    applications: Documents, units: Documents, branches: Documents
) -> dict[str, dict[str, Any]]:
    """Every unit's effective config, recomputed from scratch from the documents: the
    answer a server's memoized, incrementally updated cache must agree with."""
    return effective_by_unit(applications, branches, units.values())


async def stored_configs(store: Store) -> dict[str, dict[str, Any]]:
    """`expected_configs` over the documents an async `Store` reads back."""
    state = await store.load()
    return expected_configs(state[APPLICATIONS], state[UNITS], state[BRANCHES])


def with_hashes(configs: dict[str, dict[str, Any]]) -> dict[str, tuple[dict[str, Any], str]]:
    """Each unit's (config, hash): what a cache holds for it."""
    return {unit: (config, config_hash(config)) for unit, config in configs.items()}


def expected_hashes(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> dict[str, str]:
    """Every unit's config hash computed straight from the documents in MongoDB."""
    configs = expected_configs(*mongo_documents(mongo_client, db_name))
    return {unit: config_hash(config) for unit, config in configs.items()}


def mongo_violations(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> list[str]:
    return invariants.violations(*mongo_documents(mongo_client, db_name))


def mongo_view(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> dict[str, Any]:
    """What a server must show, straight from the documents."""
    db = mongo_client[db_name]
    return {
        "applications": {a["_id"]: (a["version"], a["settings"]) for a in db[APPLICATIONS].find()},
        "units": {u["_id"]: u["branch"] or "" for u in db[UNITS].find()},
        "branches": {
            b["_id"]: (sorted(b["track_applications"]), sorted(b["changes"]))
            for b in db[BRANCHES].find()
        },
    }


async def server_view(client: Client) -> dict[str, Any]:
    """The same from a server's Snapshot, once it has seen every write so far."""
    await settled_model(client)  # a barrier write: the cache is past every earlier write
    snap = await client.snapshot()
    return {
        "applications": {
            a.name: (a.version, json_format.MessageToDict(a.settings)) for a in snap.applications
        },
        "units": {u.name: u.branch for u in snap.units},
        "branches": {
            b.name: (sorted(b.track_applications), sorted(c.application for c in b.changes))
            for b in snap.branches
        },
    }


async def assert_consistent(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str, label: str = ""
) -> None:
    """Invariants hold in MongoDB; Snapshot and every unit's GetConfig agree with it."""
    broken = mongo_violations(mongo_client, db_name)
    assert not broken, f"{label}: {broken}"
    view = await server_view(client)
    want = mongo_view(mongo_client, db_name)
    # Settings travel as protobuf Values (numbers as doubles): compare as JSON numbers.
    assert _numbers_as_floats(view) == _numbers_as_floats(want), label
    hashes = expected_hashes(mongo_client, db_name)
    for unit, want_hash in hashes.items():
        got = await client.get_config(unit)
        assert got.hash == want_hash, f"{label}: {unit} serves {got.hash}, MongoDB says {want_hash}"


def _numbers_as_floats(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers_as_floats(v) for v in value]
    return value
