"""`genconf unit label` and `genconf branch track --percent/--selector --of` as the real
CLI against a real server: labels like kubectl's, stable cohorts that grow without
reshuffling, units added later placed by the same rule, and refusals that name the
flag and write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from support.cli_runner import Genconf, clean_env
from support.servers import digest

from genconf.api.server import RunningServer
from genconf.domain.cohorts import Cohort, members


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


async def units(genconf: Genconf, app: str) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in (await genconf("unit", "list", app, "-o", "json")).json()}


async def test_unit_label_sets_and_removes_like_kubectl(genconf: Genconf) -> None:
    (await genconf("app", "create", "web", "--units", "2")).ok()
    run = await genconf("unit", "label", "web/0", "zone=a", "tier=web")
    assert "labelled web/0: zone=a, tier=web" in run.ok().out
    assert (await units(genconf, "web"))["web/0"]["labels"] == {"tier": "web", "zone": "a"}
    (await genconf("unit", "label", "web/0", "zone=b", "tier-")).ok()
    listed = await units(genconf, "web")
    assert listed["web/0"]["labels"] == {"zone": "b"}
    assert listed["web/1"]["labels"] == {}
    written = (await genconf("unit", "label", "web/1", "rack=r1", "-o", "json")).json()
    assert written["units"] == ["web/1"] and written["revision"] > 0


async def test_unit_label_refusals_name_the_problem_and_write_nothing(
    genconf: Genconf, mongo_client: MongoClient[Any], db_name: str
) -> None:
    (await genconf("app", "create", "web", "--units", "1")).ok()
    before = digest(mongo_client, db_name)
    neither = await genconf("unit", "label", "web/0", "zone")
    assert neither.rc == 2 and "'zone' is neither KEY=VALUE" in neither.err
    bad_key = await genconf("unit", "label", "web/0", "_zone=a")
    assert bad_key.rc == 1 and "invalid label key '_zone'" in bad_key.err
    bad_value = await genconf("unit", "label", "web/0", "zone=a b")
    assert bad_value.rc == 1 and "invalid value 'a b' for label 'zone'" in bad_value.err
    missing = await genconf("unit", "label", "web/9", "zone=a")
    assert missing.rc == 1 and "unit 'web/9' not found" in missing.err
    assert digest(mongo_client, db_name) == before


async def test_track_ten_then_twenty_five_percent_keeps_the_first_ten(genconf: Genconf) -> None:
    (await genconf("app", "create", "web", "--units", "100")).ok()
    (await genconf("branch", "add", "canary")).ok()
    ten = await genconf("branch", "track", "canary", "--percent", "10", "--of", "web")
    assert "branch canary tracks 10% of web (" in ten.ok().out
    first = {u for u, d in (await units(genconf, "web")).items() if d["branch"] == "canary"}
    rule = set(members("canary", Cohort.of(10), {f"web/{n}": {} for n in range(100)}))
    assert first == rule and 2 <= len(first) <= 20

    quarter = (
        await genconf("branch", "track", "canary", "--percent", "25", "--of", "web", "-o", "json")
    ).json()
    second = {u for u, d in (await units(genconf, "web")).items() if d["branch"] == "canary"}
    assert first < second and set(quarter["units"]) == second - first
    assert quarter["skipped"] == {}
    shown = (await genconf("branch", "show", "canary", "-o", "json")).json()
    assert shown["cohorts"] == {"web": {"percent": 25.0, "selector": None}}

    # A unit added later is in or out by the same rule.
    added = (await genconf("unit", "add", "web", "--count", "20", "-o", "json")).json()["units"]
    now = {u for u, d in (await units(genconf, "web")).items() if d["branch"] == "canary"}
    in_rule = set(members("canary", Cohort.of(25), {u: {} for u in added}))
    assert now == second | in_rule

    lower = await genconf("branch", "track", "canary", "--percent", "10", "--of", "web")
    assert lower.rc == 1 and "FAILED_PRECONDITION" in lower.err
    assert "10%, less than 25%" in lower.err and "Untrack the application 'web'" in lower.err


async def test_selector_narrows_and_busy_units_are_listed(genconf: Genconf) -> None:
    (await genconf("app", "create", "web", "--units", "6")).ok()
    await genconf.all(
        *(("unit", "label", f"web/{n}", f"zone={'a' if n < 4 else 'b'}") for n in range(6))
    )
    (await genconf("branch", "add", "other")).ok()
    (await genconf("branch", "add", "canary")).ok()
    (await genconf("branch", "track", "other", "web/0")).ok()
    run = await genconf("branch", "track", "canary", "--selector", "zone=a", "--of", "web")
    out = run.ok().out
    assert "branch canary tracks every unit of web matching zone=a" in out
    assert "3 unit(s) joined: web/1, web/2, web/3" in out
    assert "left on their branch: web/0 (tracks 'other')" in out
    listed = await units(genconf, "web")
    assert {u for u, d in listed.items() if d["branch"] == "canary"} == {"web/1", "web/2", "web/3"}
    # Labelled at the add, a new unit of zone a joins; one of zone b does not.
    (await genconf("unit", "add", "web", "--label", "zone=a")).ok()
    (await genconf("unit", "add", "web", "--label", "zone=b")).ok()
    listed = await units(genconf, "web")
    assert listed["web/6"]["branch"] == "canary" and listed["web/7"]["branch"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--percent", "0", "--of", "web"], "argument --percent: must be more than 0 and at most"),
        (["--percent", "150", "--of", "web"], "argument --percent: must be more than 0"),
        (["--percent", "ten", "--of", "web"], "argument --percent: expected a percentage"),
        (["--percent", "10"], "--percent needs --of APP"),
        (["--selector", "zone=a"], "--selector needs --of APP"),
        (["--percent", "10", "--count", "2", "--of", "web"], "--count and --percent/--selector"),
        (["--of", "web"], "--of APP goes with --count N, --percent P or --selector S"),
        (["--selector", "zone", "--of", "web"], "--selector: invalid selector 'zone'"),
        (["--selector", "zone=a,", "--of", "web"], "--selector: invalid selector 'zone=a,'"),
    ],
)
async def test_track_refusals_name_the_flag(
    genconf: Genconf,
    mongo_client: MongoClient[Any],
    db_name: str,
    args: list[str],
    message: str,
) -> None:
    (await genconf("app", "create", "web", "--units", "3")).ok()
    (await genconf("branch", "add", "canary")).ok()
    before = digest(mongo_client, db_name)
    run = await genconf("branch", "track", "canary", *args)
    assert run.rc == 2, run.err
    assert message in run.err
    assert digest(mongo_client, db_name) == before


async def test_track_a_cohort_of_an_unknown_application(
    genconf: Genconf, mongo_client: MongoClient[Any], db_name: str
) -> None:
    (await genconf("branch", "add", "canary")).ok()
    before = digest(mongo_client, db_name)
    run = await genconf("branch", "track", "canary", "--percent", "10", "--of", "nope")
    assert run.rc == 1 and "NOT_FOUND" in run.err and "application 'nope' not found" in run.err
    assert digest(mongo_client, db_name) == before
