"""ControllerService end to end: real mongod, a real server on loopback, a real client.

Every RPC has its success path here; every error code it can return is in the
`ERRORS` table of tests/api/test_api_errors.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import grpc
import pytest
from google.protobuf import json_format
from support.rpcs import UNAVAILABLE
from support.servers import assert_code

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1, "description": "a number"},
    "s": {"type": "string", "default": "x"},
    "o": {"type": "object"},
}

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def plain(value: Any) -> Any:
    return json_format.MessageToDict(value)


# -- success paths ---------------------------------------------------------------


async def test_applications_create_update_get_list_remove(client: Client) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=2, created_by="ops")
    assert created.units == ["web/0", "web/1"]
    assert dict(created.versions) == {"web": 1}
    assert created.revision > 0

    app = await client.get_application("web", min_revision=created.revision)
    assert app.name == "web"
    assert app.charm == "web"  # the charm defaults to the application's name
    assert app.version == 1
    assert list(app.units) == ["web/0", "web/1"]
    assert set(app.schema) == {"k", "s", "o"}
    assert app.schema["k"].type == "int"
    assert app.schema["k"].description == "a number"
    assert not app.schema["o"].HasField("default")
    assert plain(app.settings) == {}
    assert plain(app.effective) == {"k": 1, "s": "x"}

    other = await client.create_application("db", charm="postgres")
    updated = await client.update_application("web", charm="web-v2")
    assert updated.revision > other.revision > created.revision
    app = await client.get_application("web", min_revision=updated.revision)
    assert app.charm == "web-v2"
    assert set(app.schema) == {"k", "s", "o"}  # a charm change keeps the schema

    reschema = await client.update_application(
        "web", schema={**SCHEMA, "n": {"type": "float", "default": 0.5}}
    )
    app = await client.get_application("web", min_revision=reschema.revision)
    assert plain(app.effective) == {"k": 1, "s": "x", "n": 0.5}
    assert app.charm == "web-v2"

    apps = await client.list_applications(min_revision=reschema.revision)
    assert [a.name for a in apps] == ["db", "web"]
    assert apps[0].charm == "postgres"

    removed = await client.remove_application("web", force=True)
    apps = await client.list_applications(min_revision=removed.revision)
    assert [a.name for a in apps] == ["db"]
    assert await client.list_units(min_revision=removed.revision) == []
    with pytest.raises(ClientError) as caught:
        await client.get_application("web")
    assert_code(caught.value, NOT_FOUND)


async def test_units_add_list_remove(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.create_application("db", units=1)
    added = await client.add_units("web", count=2)
    assert list(added.units) == ["web/1", "web/2"]
    named = await client.add_units("web", names=["web/7", "web/5"])
    assert list(named.units) == ["web/5", "web/7"]
    after = await client.add_units("web", count=1)
    assert list(after.units) == ["web/8"]  # numbering continues after the highest

    units = await client.list_units("web", min_revision=after.revision)
    assert [u.name for u in units] == ["web/0", "web/1", "web/2", "web/5", "web/7", "web/8"]
    assert all(u.application == "web" and u.branch == "" for u in units)
    every = await client.list_units(min_revision=after.revision)
    assert [u.name for u in every] == ["db/0"] + [u.name for u in units]

    removed = await client.remove_unit("web/1")
    assert list(removed.units) == ["web/1"]
    units = await client.list_units("web", min_revision=removed.revision)
    assert "web/1" not in [u.name for u in units]
    again = await client.add_units("web", count=1)
    assert list(again.units) == ["web/9"]  # a removed number is never reused


async def test_set_config_versions_and_effective(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    first = await client.set_config(
        "web",
        {"k": 5, "o": {"a": [1, 2]}},
        reason="tune",
        created_by="alice",
        metadata={"ticket": "T-1"},
    )
    assert dict(first.versions) == {"web": 2}
    assert first.generation == 1
    app = await client.get_application("web", min_revision=first.revision)
    assert app.version == 2
    assert plain(app.settings) == {"k": 5, "o": {"a": [1, 2]}}
    assert plain(app.effective) == {"k": 5, "s": "x", "o": {"a": [1, 2]}}

    second = await client.set_config("web", unset=["k"], expected_version=2)
    assert dict(second.versions) == {"web": 3}
    assert second.generation == 2
    cfg = await client.get_config("web/0", min_revision=second.revision)
    assert cfg.config == {"k": 1, "s": "x", "o": {"a": [1, 2]}}
    assert cfg.app_version == 3

    # A write that changes nothing writes nothing: same version, no generation.
    same = await client.set_config("web", {"o": {"a": [1, 2]}})
    assert dict(same.versions) == {"web": 3}
    assert same.generation == 0


async def test_branch_lifecycle(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=4)
    await client.create_application("db", schema=SCHEMA, units=1)
    base = await client.set_config("web", {"s": "master"})

    added = await client.add_branch("canary", created_by="alice")
    assert added.revision > base.revision
    branch = await client.get_branch("canary", min_revision=added.revision)
    assert branch.name == "canary"
    assert branch.created_by == "alice"
    assert branch.created_at.seconds > 0
    assert list(branch.units) == [] and list(branch.changes) == []

    tracked = await client.track_branch("canary", units=["web/0"])
    assert list(tracked.units) == ["web/0"]
    by_count = await client.track_branch("canary", application="web", count=2)
    assert list(by_count.units) == ["web/1"]  # web/0 counts already: the lowest free one
    whole = await client.track_branch("canary", applications=["db"])
    assert list(whole.units) == ["db/0"]

    staged = await client.set_branch_config("canary", "web", {"k": 10, "o": {"x": 1}})
    restaged = await client.set_branch_config("canary", "web", {"s": "canary"}, unset=["o"])
    branch = await client.get_branch("canary", min_revision=restaged.revision)
    assert list(branch.units) == ["db/0", "web/0", "web/1"]
    assert list(branch.track_applications) == ["db"]
    [changes] = branch.changes
    assert changes.application == "web"
    by_key = {c.key: c for c in changes.changes}
    assert by_key["k"].op == "set" and plain(by_key["k"].value) == 10
    assert not by_key["k"].has_from  # master had no k when the branch first touched it
    assert by_key["s"].op == "set" and by_key["s"].has_from
    assert plain(getattr(by_key["s"], "from")) == "master"
    assert by_key["o"].op == "unset"  # set then unset: the first touch's from is kept
    assert staged.revision < restaged.revision

    assert [b.name for b in await client.list_branches(min_revision=restaged.revision)] == [
        "canary"
    ]
    cfg = await client.get_config("web/0", min_revision=restaged.revision)
    assert (cfg.branch, cfg.config) == ("canary", {"k": 10, "s": "canary"})
    assert (await client.get_config("web/2")).config == {"k": 1, "s": "master"}

    diff = await client.diff_branch("canary", min_revision=restaged.revision)
    assert diff.branch == "canary"
    [web_diff] = diff.applications
    assert web_diff.application == "web"
    entries = {e.path: e for e in web_diff.entries}
    assert entries["k"].kind == "changed"
    assert plain(entries["k"].old) == 1 and plain(entries["k"].new) == 10
    assert entries["s"].kind == "changed"
    assert list(web_diff.conflicts) == []

    untracked = await client.untrack_branch("canary", units=["web/1"])
    assert list(untracked.units) == ["web/1"]
    cfg = await client.get_config("web/1", min_revision=untracked.revision)
    assert cfg.branch == "" and cfg.config == {"k": 1, "s": "master"}
    by_app = await client.untrack_branch("canary", applications=["db"])
    assert list(by_app.units) == ["db/0"]

    committed = await client.commit_branch("canary", created_by="bob", reason="ship it")
    assert committed.generation == 2
    assert dict(committed.versions) == {"web": 3}
    assert list(committed.units) == ["web/0"]
    app = await client.get_application("web", min_revision=committed.revision)
    assert plain(app.settings) == {"k": 10, "s": "canary"}
    assert await client.list_branches(min_revision=committed.revision) == []
    cfg = await client.get_config("web/0", min_revision=committed.revision)
    assert cfg.branch == "" and cfg.config == {"k": 10, "s": "canary"}

    # Abort: refused while tracked (see ERRORS); forced, the units fall back to master.
    await client.add_branch("doomed")
    await client.set_branch_config("doomed", "web", {"k": 99})
    await client.track_branch("doomed", units=["web/3"])
    aborted = await client.abort_branch("doomed", force=True)
    assert list(aborted.units) == ["web/3"]
    cfg = await client.get_config("web/3", min_revision=aborted.revision)
    assert cfg.branch == "" and cfg.config == {"k": 10, "s": "canary"}
    app = await client.get_application("web", min_revision=aborted.revision)
    assert app.version == 3  # an abort changes no master

    await client.add_branch("empty")
    plain_abort = await client.abort_branch("empty")
    assert list(plain_abort.units) == []
    assert await client.list_branches(min_revision=plain_abort.revision) == []


async def test_diff_branch_lists_what_a_commit_would_refuse(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.set_config("web", {"s": "m"})
    await client.add_branch("late")
    await client.set_branch_config("late", "web", {"s": "b"})
    moved = await client.set_config("web", {"s": "m2"})
    diff = await client.diff_branch("late", min_revision=moved.revision)
    [web_diff] = diff.applications
    [conflict] = web_diff.conflicts
    assert (conflict.application, conflict.key) == ("web", "s")
    assert (getattr(conflict, "from"), conflict.current, conflict.proposed) == (
        '"m"',
        '"m2"',
        '"b"',
    )
    forced = await client.commit_branch("late", force=True)
    app = await client.get_application("web", min_revision=forced.revision)
    assert plain(app.settings) == {"s": "b"}  # force: last write wins


# -- errors ------------------------------------------------------------------------


async def test_reads_waiting_for_a_future_revision_end_unavailable(srv: RunningServer) -> None:
    """min_revision beyond the cache, and a short deadline: UNAVAILABLE (retry elsewhere),
    not a hang and not DEADLINE_EXCEEDED."""
    future = srv.read.cache.revision + (3600 << 32)
    reads: dict[str, Callable[[Client], Awaitable[Any]]] = {
        "GetApplication": lambda c: c.get_application("web", min_revision=future),
        "ListApplications": lambda c: c.list_applications(min_revision=future),
        "ListUnits": lambda c: c.list_units(min_revision=future),
        "DiffBranch": lambda c: c.diff_branch("b1", min_revision=future),
        "ListBranches": lambda c: c.list_branches(min_revision=future),
        "GetBranch": lambda c: c.get_branch("b1", min_revision=future),
    }
    outcomes: dict[str, Any] = {}

    async def attempt(name: str, client: Client) -> None:
        try:
            outcomes[name] = await reads[name](client)
        except ClientError as exc:
            outcomes[name] = exc

    async with Client(srv.address, timeout=1.0) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for name in reads:
                    tg.start_soon(attempt, name, client)
    for name, outcome in outcomes.items():
        error = assert_code(outcome, UNAVAILABLE)
        assert "revision" in error.message, name
    assert set(outcomes) == set(reads)
