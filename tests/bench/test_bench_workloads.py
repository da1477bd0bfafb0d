"""The agent-facing benchmarks (`genconf bench fanout|targeted|read|idle|storm`) at a
small size: each produces its figures, next to a same-run baseline, and they are
sane (every agent got what it should, counts add up, ratios are positive). No
timing assertions: how fast they run depends on the host. Also the bookmark
clock that replaced the per-stream timers."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pymongo import MongoClient

from genconf.api.agent import BookmarkClock
from genconf.bench import WORKLOADS, fanout, idle, read, storm, targeted
from genconf.bench.figures import Report
from genconf.bench.options import Options
from genconf.bench.session import sum_stats

SMALL = {"workers": 2, "channels": 2}


def check_report(report: Report, workload: str) -> None:
    """Every figure has a value; every figure with a baseline has a positive ratio;
    the JSON and the table carry the same figures."""
    assert report.workload == workload
    assert report.figures
    for figure in report.figures:
        assert figure.value is not None and math.isfinite(figure.value), figure
        if figure.baseline is not None:
            assert math.isfinite(figure.baseline), figure
    data = json.loads(json.dumps(report.to_dict()))
    assert [f["name"] for f in data["figures"]] == [f.name for f in report.figures]
    assert data["passed"] == report.passed
    assert data["machine"]["cpus"] >= 1
    assert data["machine"]["mongodb"].split(".")[0].isdigit()
    table = report.format_table()
    for figure in report.figures:
        assert figure.name in table
    assert "baseline" in table and "ratio" in table


def no_bench_databases(mongo_client: MongoClient[dict[str, Any]], workload: str) -> bool:
    return not any(n.startswith(f"bench_{workload}_") for n in mongo_client.list_database_names())


def test_every_workload_is_registered() -> None:
    assert set(WORKLOADS) >= {"ingest", "fanout", "targeted", "read", "idle", "storm", "soak"}


async def test_fanout_small(mongo_uri: str, mongo_client: MongoClient[dict[str, Any]]) -> None:
    report = await fanout.run_fanout(
        Options(streams=40, repeat=2, mongo_uri=mongo_uri, timeout=60, **SMALL)
    )
    check_report(report, "fanout")
    assert report.details["agents_received_per_round"] == {
        "baseline": [40, 40],
        "genconf": [40, 40],
    }
    last = report.figure("last agent has it")
    assert last.value is not None and last.value > 0
    assert last.baseline is not None and last.baseline > 0
    assert last.ratio is not None and last.ratio > 0
    p50, p99 = report.figure("p50 per agent"), report.figure("p99 per agent")
    assert p50.value is not None and p99.value is not None
    best = report.figure("last agent, best round")
    assert best.value is not None and 0 < p50.value <= p99.value <= best.value <= last.value
    cpu = report.figure("server CPU per fan-out")
    assert cpu.value and cpu.baseline and cpu.target == "<= 1.1x baseline"
    assert last.target == "<= 1.15x baseline, <= 1000 ms"
    # Two rounds of one change each, to 40 agents.
    assert report.details["notifications"] == 80
    assert no_bench_databases(mongo_client, "fanout")


def test_fleet_stats_are_the_sum_of_the_workers() -> None:
    one = {"pid": 1, "cpu_seconds": 1.5, "rss_bytes": 10, "config_watchers": 3, "revision": 9}
    two = {"pid": 2, "cpu_seconds": 0.5, "rss_bytes": 20, "config_watchers": 4, "revision": 7}
    one["gc_collections"], two["gc_collections"] = [5, 1, 0], [2, 2, 1]
    total = sum_stats([one, two])
    assert total["cpu_seconds"] == 2.0 and total["rss_bytes"] == 30
    assert total["config_watchers"] == 7 and total["gc_collections"] == [7, 3, 1]
    assert total["revision"] == 7  # what every worker has applied
    assert total["workers"] == [one, two]
    assert sum_stats([one]) == {**one, "workers": [one]}


async def test_fanout_with_two_server_workers(mongo_uri: str) -> None:
    """`--server-workers 2`: the kernel spreads the agents' 2 x 8 connections over both
    workers, Fire reaches each worker's share, and the server's CPU is the workers'."""
    report = await fanout.run_fanout(
        Options(
            streams=40,
            repeat=1,
            workers=2,
            channels=8,
            mongo_uri=mongo_uri,
            timeout=60,
            server_workers=2,
        )
    )
    check_report(report, "fanout")
    assert report.params["server_workers"] == 2
    assert "2 server workers" in report.title
    assert report.details["agents_received_per_round"] == {"baseline": [40], "genconf": [40]}
    workers = report.details["server_workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert all(w["config_watchers"] > 0 and w["baseline_subscribers"] > 0 for w in workers)
    assert sum(w["config_watchers"] for w in workers) == 40
    assert sum(w["baseline_subscribers"] for w in workers) == 40
    assert all(w["cpu_s"] > 0 for w in workers)
    # The server's figures are the workers' summed (the same Stats call).
    rss = sum(w["rss_mib"] for w in workers)
    assert report.details["server_rss_mib"] == pytest.approx(rss, abs=0.2)
    cpu = report.figure("server CPU per fan-out")
    assert cpu.value is not None and cpu.value > 0
    assert cpu.baseline is not None and cpu.baseline > 0
    # Each worker notified its own share of the one change.
    assert report.details["notifications"] == 40


async def test_targeted_small(mongo_uri: str) -> None:
    report = await targeted.run_targeted(
        Options(streams=30, mongo_uri=mongo_uri, timeout=60, **SMALL),
        targets=5,
        rate=25,
        duration=1.0,
    )
    check_report(report, "targeted")
    commits = report.params["commits"]
    assert commits == 25
    assert report.details["notified"] == commits
    assert report.details["baseline_events"] == commits
    assert report.details["fleet_configs_beyond_initial"] == 0
    p50, p99 = report.figure("commit to notified p50"), report.figure("commit to notified p99")
    assert p50.value is not None and p99.value is not None and 0 < p50.value <= p99.value
    assert p99.ratio is not None and p99.ratio > 0


async def test_read_small(mongo_uri: str) -> None:
    report = await read.run_read(
        Options(streams=1, repeat=1, mongo_uri=mongo_uri, timeout=60, **SMALL),
        units=10,
        concurrency=4,
        duration=0.5,
    )
    check_report(report, "read")
    rate = report.figure("GetConfig calls/s")
    assert rate.value is not None and rate.value > 0
    assert rate.baseline is not None and rate.baseline > 0
    assert rate.ratio == pytest.approx(rate.value / rate.baseline)
    assert report.details["calls"]["genconf"] > 0
    assert report.details["calls"]["baseline"] > 0


async def test_idle_small(mongo_uri: str) -> None:
    report = await idle.run_idle(
        Options(streams=50, mongo_uri=mongo_uri, timeout=60, **SMALL), window=1.0, interval=0.5
    )
    check_report(report, "idle")
    assert report.details["genconf"]["watchers"] == 50
    assert report.details["baseline"]["watchers"] == 50
    # Bookmarks were on: a stream's first comes within one interval of subscribing,
    # and the baseline's streams were sent as many (two broadcasts in the window).
    assert 0 < report.details["genconf"]["bookmarks"]
    assert 0 < report.details["baseline"]["bookmarks"] <= 100
    cpu = report.figure("server CPU while idle")
    assert cpu.value is not None and cpu.value >= 0
    assert len(report.details["genconf"]["cpu_percent_slices"]) == 3


async def test_idle_small_without_bookmarks(mongo_uri: str) -> None:
    """The server's default: a quiet stream sends nothing, nor does the baseline's."""
    report = await idle.run_idle(
        Options(streams=50, mongo_uri=mongo_uri, timeout=60, **SMALL),
        window=1.0,
        interval=0.0,
        settle=0.2,
    )
    check_report(report, "idle")
    assert report.details["genconf"]["watchers"] == 50
    assert report.details["genconf"]["bookmarks"] == 0
    assert report.details["baseline"]["bookmarks"] == 0
    assert report.figure("server CPU while idle").target == "<= 1 % of a core"


async def test_storm_small(mongo_uri: str) -> None:
    report = await storm.run_storm(
        Options(streams=40, repeat=1, mongo_uri=mongo_uri, timeout=60, **SMALL), known_hash=True
    )
    check_report(report, "storm")
    everyone = report.figure("all agents have their config")
    assert everyone.value is not None and everyone.value > 0
    assert everyone.baseline is not None and everyone.baseline > 0
    p50 = report.figure("p50 per agent")
    assert p50.value is not None and p50.value <= everyone.value


def test_main_json_and_table(mongo_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--streams", "20", "--workers", "1", "--channels", "1", "--mongo-uri", mongo_uri]
    assert storm.main([*args, "--repeat", "1", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workload"] == "storm"
    assert data["params"]["streams"] == 20
    assert {f["name"] for f in data["figures"]} >= {"all agents have their config"}
    assert all(f["ratio"] is None or f["ratio"] > 0 for f in data["figures"])
    assert fanout.main([*args, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "last agent has it (ms)" in out and "baseline" in out


def test_main_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert fanout.main(["--streams", "0"]) == 2
    assert "--streams" in capsys.readouterr().err
    assert idle.main(["--window", "-1", "--streams", "5"]) == 2
    assert "window" in capsys.readouterr().err


# -- the bookmark clock ---------------------------------------------------------


class FakeWatch:
    def __init__(self) -> None:
        self.nudges = 0

    def nudge(self) -> None:
        self.nudges += 1


def due(clock: BookmarkClock, now: float) -> list[FakeWatch]:
    """What the clock's task would nudge at ``now``."""
    return [quiet.watch for quiet in clock.advance(now)]  # type: ignore[misc]


async def test_bookmark_clock_nudges_only_quiet_streams_once_per_interval() -> None:
    now = [0.0]
    # Ticks of 100 s on a fake clock: the clock's own task never wakes in this test.
    clock = BookmarkClock(800.0, ticks=8, clock=lambda: now[0], jitter=lambda: 0.0)
    quiet_watch, busy_watch = FakeWatch(), FakeWatch()
    quiet = clock.register(quiet_watch)  # type: ignore[arg-type]
    busy = clock.register(busy_watch)  # type: ignore[arg-type]
    assert clock.streams == 2
    now[0] = 400.0
    clock.sent(busy)  # a config: its bookmark moves to 1200
    assert due(clock, 700.0) == []
    assert due(clock, 800.0) == [quiet_watch]
    now[0] = 800.0
    clock.sent(quiet, refile=True)  # the bookmark went out
    assert due(clock, 1200.0) == [busy_watch]
    clock.unregister(busy)  # gone while the clock had let go of it: nothing breaks
    assert due(clock, 1600.0) == [quiet_watch]
    assert due(clock, 2400.0) == []  # not filed again yet: its bookmark is in flight
    clock.unregister(quiet)
    assert clock.streams == 0
    assert clock._task is None  # no streams, no timer
    assert clock.nudged == 3


async def test_bookmark_clock_spreads_first_bookmarks_over_the_interval() -> None:
    now = [0.0]
    jitters = iter([0.0, 0.5, 0.99])
    clock = BookmarkClock(800.0, ticks=8, clock=lambda: now[0], jitter=lambda: next(jitters))
    late, middle, early = FakeWatch(), FakeWatch(), FakeWatch()
    handles = [clock.register(w) for w in (late, middle, early)]  # type: ignore[arg-type]
    assert due(clock, 100.0) == [early]
    assert due(clock, 400.0) == [middle]
    assert due(clock, 800.0) == [late]
    for handle in handles:
        clock.unregister(handle)
