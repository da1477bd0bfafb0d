"""Tracking stable cohorts of an application's units, and unit labels, against a real
mongod (`Store.track_branch(percent=..., selector=...)`, `Store.label_unit`).

The rule itself is `genconf.domain.cohorts`; here: the store applies it inside one
transaction, remembers it on the branch, places units added later by it, and a
unit added while a cohort is tracked ends where the rule says, whatever the order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.model_check import stored_configs
from support.servers import store_digest

from genconf.domain.cohorts import Cohort, members
from genconf.errors import FailedPrecondition, InvalidArgument, NotFound
from genconf.store.documents import BRANCHES, UNITS
from genconf.store.invariants import check_database
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 80}}


async def units_of(store: Store, app: str) -> dict[str, dict[str, Any]]:
    return {u: d for u, d in (await store.load())[UNITS].items() if d["application"] == app}


async def tracking(store: Store, branch: str) -> set[str]:
    return {u for u, d in (await store.load())[UNITS].items() if d["branch"] == branch}


async def by_rule(store: Store, branch: str, app: str, cohort: Cohort) -> set[str]:
    """The units of ``app`` the rule puts in ``cohort`` of ``branch``, by their labels now."""
    units = {u: d.get("labels") or {} for u, d in (await units_of(store, app)).items()}
    return set(members(branch, cohort, units))


async def test_ten_then_twenty_five_percent_of_a_hundred_units(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=100)
    await store.add_branch("canary")
    ten = await store.track_branch("canary", application="web", percent=10)
    first = await tracking(store, "canary")
    assert first == set(ten.units) == await by_rule(store, "canary", "web", Cohort.of(10))
    assert 2 <= len(first) <= 20 and ten.skipped == {}

    quarter = await store.track_branch("canary", application="web", percent=25)
    second = await tracking(store, "canary")
    assert first < second  # the first 10 % are among the 25 %
    assert second == await by_rule(store, "canary", "web", Cohort.of(25))
    assert set(quarter.units) == second - first  # only the new ones are reported
    branch = (await store.load())[BRANCHES]["canary"]
    assert branch["cohorts"] == {"web": {"percent": 25.0, "selector": ""}}

    again = await store.track_branch("canary", application="web", percent=25)
    assert again.units == [] and await tracking(store, "canary") == second
    assert await check_database(store.db) == []


async def test_a_unit_added_later_is_in_or_out_by_the_same_rule(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=20)
    await store.add_branch("canary")
    await store.track_branch("canary", application="web", percent=30)
    added = await store.add_units("web", count=80)
    rule = await by_rule(store, "canary", "web", Cohort.of(30))
    assert await tracking(store, "canary") == rule
    joined = rule & set(added.units)
    assert joined and set(added.units) - joined  # some in, some out, for this seed
    # A joined unit sees the branch's config, like any tracking unit.
    await store.set_branch_config("canary", "web", {"port": 9090})
    configs = await stored_configs(store)
    assert {u for u in added.units if configs[u]["port"] == 9090} == joined
    assert await check_database(store.db) == []


async def test_selector_and_percent_combine(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=60)
    for n in range(60):
        await store.label_unit(f"web/{n}", {"zone": "a" if n % 2 else "b"})
    await store.add_branch("canary")
    done = await store.track_branch("canary", application="web", percent=50, selector="zone=a")
    chosen = await tracking(store, "canary")
    assert (
        chosen == set(done.units) == await by_rule(store, "canary", "web", Cohort.of(50, "zone=a"))
    )
    assert chosen and all(int(u.split("/")[1]) % 2 for u in chosen)
    assert chosen < await by_rule(store, "canary", "web", Cohort.of(100, "zone=a"))
    # Units added later: labels given at the add are read by the same rule.
    await store.add_units("web", count=20, labels={"zone": "a"})
    await store.add_units("web", count=20, labels={"zone": "b"})
    after = await tracking(store, "canary")
    assert after == await by_rule(store, "canary", "web", Cohort.of(50, "zone=a"))
    assert after > chosen
    web = await units_of(store, "web")
    assert all(web[u]["labels"] == {"zone": "a"} for u in after)


async def test_a_selector_alone_takes_every_unit_it_matches(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=4)
    await store.label_unit("web/1", {"tier": "db"})
    await store.add_branch("b")
    done = await store.track_branch("b", application="web", selector="tier!=db")
    assert done.units == ["web/0", "web/2", "web/3"]


async def test_units_on_another_branch_are_skipped_and_named(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=50)
    await store.add_branch("other")
    await store.add_branch("canary")
    cohort = sorted(await by_rule(store, "canary", "web", Cohort.of(40)))
    busy = cohort[:3]
    await store.track_branch("other", units=busy)
    done = await store.track_branch("canary", application="web", percent=40)
    assert done.skipped == {u: "tracks 'other'" for u in busy}
    assert set(done.units) == set(cohort) - set(busy)
    assert await tracking(store, "other") == set(busy)
    # Freed later, they join when the cohort is tracked again.
    await store.untrack_branch("other", units=busy)
    again = await store.track_branch("canary", application="web", percent=40)
    assert set(again.units) == set(busy) and again.skipped == {}


async def test_lowering_or_reselecting_is_refused_and_untrack_forgets_the_cohort(
    store: Store,
) -> None:
    await store.create_application("web", schema=SCHEMA, units=40)
    await store.add_branch("canary")
    await store.track_branch("canary", application="web", percent=25)
    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition) as lower:
        await store.track_branch("canary", application="web", percent=10)
    assert "tracks 25% of 'web'" in lower.value.message
    assert "10%, less than 25%" in lower.value.message
    assert "Untrack the application 'web' from 'canary' first" in lower.value.message
    with pytest.raises(FailedPrecondition) as reselect:
        await store.track_branch("canary", application="web", percent=50, selector="zone=a")
    assert "selector 'zone=a' instead of '(none)'" in reselect.value.message
    assert await store_digest(store.db) == before

    left = await store.untrack_branch("canary", applications=["web"])
    assert set(left.units) == await by_rule(store, "canary", "web", Cohort.of(25))
    assert await tracking(store, "canary") == set()
    assert "cohorts" not in (await store.load())[BRANCHES]["canary"]
    added = await store.add_units("web", count=30)
    assert await tracking(store, "canary") == set()  # nobody joins a forgotten cohort
    now = await store.track_branch("canary", application="web", percent=10)
    assert set(now.units) == await by_rule(store, "canary", "web", Cohort.of(10))
    assert set(now.units) & set(added.units)


async def test_whole_application_and_cohort(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=10)
    await store.add_branch("whole")
    await store.add_branch("canary")
    await store.track_branch("canary", application="web", percent=50)
    # Tracking the whole application replaces the cohort: every unit, later ones too.
    await store.track_branch("canary", applications=["web"])
    assert "cohorts" not in (await store.load())[BRANCHES]["canary"]
    assert len(await tracking(store, "canary")) == 10
    with pytest.raises(FailedPrecondition, match=r"as a whole .* would add nothing"):
        await store.track_branch("canary", application="web", percent=50)
    with pytest.raises(FailedPrecondition, match="tracked as a whole by branch 'canary'"):
        await store.track_branch("whole", application="web", percent=50)


async def test_refusals_write_nothing(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=3)
    await store.add_branch("b")
    before = await store_digest(store.db)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"application": "web", "percent": 0.0, "selector": ""}, InvalidArgument, "give units"),
        ({"application": "web", "percent": 150}, InvalidArgument, "percent must be more than 0"),
        ({"application": "web", "percent": -5}, InvalidArgument, "percent must be more than 0"),
        ({"percent": 10}, InvalidArgument, "needs the application"),
        ({"application": "web", "percent": 10, "count": 2}, InvalidArgument, "not both"),
        ({"application": "web", "selector": "zone"}, InvalidArgument, "invalid selector 'zone'"),
        ({"application": "nope", "percent": 10}, NotFound, "application 'nope' not found"),
        (
            {"application": "web", "applications": ["web"], "percent": 10},
            InvalidArgument,
            "both as a whole and for a cohort",
        ),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error) as caught:
            await store.track_branch("b", **kwargs)
        assert message in str(caught.value), kwargs
    with pytest.raises(NotFound):
        await store.track_branch("nope", application="web", percent=10)
    assert await store_digest(store.db) == before


async def test_labels_live_on_the_unit_document(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=2)
    before = await store_digest(store.db)
    with pytest.raises(InvalidArgument, match="invalid label key 'bad key'"):
        await store.label_unit("web/0", {"bad key": "a"})
    with pytest.raises(InvalidArgument, match="invalid value"):
        await store.label_unit("web/0", {"zone": "a b"})
    with pytest.raises(NotFound, match="unit 'web/9' not found"):
        await store.label_unit("web/9", {"zone": "a"})
    with pytest.raises(InvalidArgument, match="give labels"):
        await store.label_unit("web/0")
    with pytest.raises(InvalidArgument, match="invalid label key"):
        await store.add_units("web", count=1, labels={"-x": "a"})
    assert await store_digest(store.db) == before

    done = await store.label_unit("web/0", {"zone": "a", "tier": "web"})
    assert done.units == ["web/0"]
    assert (await units_of(store, "web"))["web/0"]["labels"] == {"tier": "web", "zone": "a"}
    await store.label_unit("web/0", {"zone": "b"}, remove=["tier", "never-there"])
    assert (await units_of(store, "web"))["web/0"]["labels"] == {"zone": "b"}
    await store.label_unit("web/0", remove=["zone"])
    assert "labels" not in (await units_of(store, "web"))["web/0"]  # none left: no field


async def test_removing_the_application_takes_its_cohort_off_the_branch(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=10)
    await store.create_application("db", schema=SCHEMA, units=10)
    await store.add_branch("canary")
    await store.track_branch("canary", application="web", percent=50)
    await store.track_branch("canary", application="db", percent=50)
    await store.remove_application("web", force=True)
    assert set((await store.load())[BRANCHES]["canary"]["cohorts"]) == {"db"}
    await store.remove_application("db", force=True)
    assert "cohorts" not in (await store.load())[BRANCHES]["canary"]
    await store.create_application("web", schema=SCHEMA, units=10)
    assert await tracking(store, "canary") == set()  # a new "web" owes the old cohort nothing


async def test_adding_units_while_a_cohort_is_tracked_ends_as_the_rule_says(
    store: Store, mongo_uri: str
) -> None:
    """AddUnits and TrackBranch(percent) race on two clients; both read the application
    under its fence, so whichever commits second sees the first: every unit of the
    application tracks the branch iff the rule puts it in the cohort."""
    other = Store.connect(mongo_uri, store.db.name)
    try:
        for r in range(12):
            app, branch = f"w{r}", f"b{r}"
            await store.create_application(app, schema=SCHEMA, units=30)
            await store.add_branch(branch)
            await store.track_branch(branch, application=app, percent=20)
            await asyncio.gather(
                other.add_units(app, count=30),
                store.track_branch(branch, application=app, percent=40),
            )
            expected = await by_rule(store, branch, app, Cohort.of(40))
            assert await tracking(store, branch) == expected, f"round {r}"
            assert len(await units_of(store, app)) == 60
        assert await check_database(store.db) == []
    finally:
        await other.aclose()
