"""`genconf bench soak` at a small size: every kind of activity happens, memory is
sampled, and at the end every agent and every GetConfig matches the config
computed from MongoDB's documents. No timing or memory assertions: both depend on
the host."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pymongo import MongoClient

from genconf.bench import soak, soak_activity
from genconf.bench.options import Options

SMALL = {"workers": 2, "channels": 2}
AGENTS = 30


def no_bench_databases(mongo_client: MongoClient[dict[str, Any]]) -> bool:
    return not any(n.startswith("bench_soak_") for n in mongo_client.list_database_names())


async def test_soak_small(mongo_uri: str, mongo_client: MongoClient[dict[str, Any]]) -> None:
    plan = soak_activity.Plan(
        minutes=0.2,
        branch_interval=2.0,
        churn_interval=2.0,
        churn_fraction=0.2,
        sample_interval=1.0,
        seed=7,
        ring_size=50,
    )
    report = await soak.run_soak(
        Options(streams=AGENTS, mongo_uri=mongo_uri, timeout=60, **SMALL), plan
    )
    assert report.workload == "soak"

    # The consistency check ran over every connected agent and every unit.
    consistency = report.details["consistency"]
    assert consistency["agents_connected"] == AGENTS
    assert consistency["agents_checked"] == AGENTS
    assert consistency["agent_mismatches"] == 0, consistency["sample"]
    assert consistency["units_as_the_bench_made_them"] is True
    assert consistency["get_config_checked"] == consistency["units_in_mongodb"] > 0
    assert consistency["get_config_mismatches"] == 0, consistency["sample"]
    assert consistency["invariant_violations"] == 0, consistency["sample"]
    assert report.passed
    assert report.figure("agents off MongoDB's config").met is True

    # Every kind of activity happened, and nothing was refused.
    counts = report.details["counts"]
    for kind in (
        "writes",
        "branches_committed",
        "forced_commits",
        "branches_aborted",
        "forced_aborts",
        "units_added",
        "units_removed",
        "agents_joined",
        "agents_left",
        "config_messages",
    ):
        assert counts[kind] > 0, kind
    assert counts["agents_initial"] == AGENTS
    assert counts["errors"] == 0, report.details["errors"]
    assert counts["join_failures"] == 0
    # Agents of removed units saw their streams ended by the server.
    assert consistency["removed_unit_streams_ended"] == counts["agents_of_removed_units"]

    # Memory was sampled (warm-up, during the run, end) and the figures are finite.
    memory = report.details["memory"]
    assert memory["samples"] >= 3
    assert len(report.details["rss_mib_series"]) == memory["samples"]
    assert all(x > 0 for x in report.details["rss_mib_series"])
    assert 0 < memory["watch_streams_min"] <= memory["watch_streams_max"]
    # The server ran with the soak's ring size: the run made well over 50 deltas,
    # and the ring kept about 50 (it drops whole transactions, oldest first).
    assert memory["ring_size"] == 50
    assert counts["writes"] + counts["agents_initial"] > 50  # a delta each at least
    assert 25 <= memory["ring_deltas_end"] <= 50
    for figure in report.figures:
        assert figure.value is not None and math.isfinite(figure.value), figure
        assert figure.baseline is None and figure.ratio is None
    warm = report.figure("server RSS after warm-up").value
    end = report.figure("server RSS at end").value
    peak = report.figure("peak server RSS").value
    assert warm is not None and end is not None and peak is not None
    assert 0 < warm <= peak and end <= peak
    assert report.figure("RSS growth").value == pytest.approx(end - warm)

    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is True
    assert [f["name"] for f in data["figures"]] == [f.name for f in report.figures]
    assert data["details"]["counts"] == counts
    assert data["params"]["seed"] == 7
    table = report.format_table()
    for figure in report.figures:
        assert figure.name in table
    assert no_bench_databases(mongo_client)


async def test_soak_fails_when_an_agent_is_off(
    mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: with MongoDB's hash of one unit replaced, that unit's agent
    and its GetConfig are reported, and the run does not pass."""
    real = soak_activity.expected_hashes

    async def off_by_one(*args: Any) -> tuple[dict[str, str], list[str]]:
        expected, broken = await real(*args)
        expected[min(expected)] = "0" * 64
        return expected, broken

    monkeypatch.setattr(soak_activity, "expected_hashes", off_by_one)
    plan = soak_activity.Plan(minutes=0.05, branch_interval=1.0, churn_interval=1.0, seed=3)
    report = await soak.run_soak(Options(streams=10, mongo_uri=mongo_uri, timeout=3, **SMALL), plan)
    consistency = report.details["consistency"]
    assert consistency["agent_mismatches"] == 1
    assert consistency["get_config_mismatches"] == 1
    assert any("0" * 12 in line for line in consistency["sample"])
    assert not report.passed
    assert report.figure("agents off MongoDB's config").met is False
    # A failed soak is a failed command, --check or not.
    assert soak.build_parser().parse_args([]).check is True


def test_soak_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.main(["--minutes", "0"]) == 2
    assert "--minutes" in capsys.readouterr().err
    assert soak.main(["--churn-fraction", "2"]) == 2
    assert "--churn-fraction" in capsys.readouterr().err
    assert soak.main(["--server", "127.0.0.1:1"]) == 2
    assert "--server" in capsys.readouterr().err
    assert soak.main(["--ring-size", "0"]) == 2
    assert "--ring-size" in capsys.readouterr().err
