"""The ingest benchmark (`genconf.bench.ingest`) at a small size: it produces sane,
self-consistent figures and cleans up after itself. No timing assertions: how fast
it runs depends on the host."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from pymongo import MongoClient

from genconf.bench.ingest import TARGET, IngestResult, headline_ratio, main, run_ingest

EVENTS = 500


def check_figures(result: IngestResult, events: int) -> None:
    assert result.events == events
    assert result.raw_events_seen == events
    assert result.cache_events_seen == events
    assert result.raw_events_per_s > 0
    assert result.cache_events_per_s > 0
    assert result.write_events_per_s > 0
    assert result.ratio == pytest.approx(result.cache_events_per_s / result.raw_events_per_s)
    assert result.median_ratio == pytest.approx(
        result.cache_median_events_per_s / result.raw_median_events_per_s
    )
    assert result.raw_events_per_s == max(result.raw_runs)
    assert result.cache_events_per_s == max(result.cache_runs)
    assert result.target == TARGET
    assert result.passed == (result.median_ratio >= TARGET)  # the median is the headline
    assert result.end_revision > result.start_revision > 0
    assert result.seconds > 0
    assert result.mongo_version


async def test_small_run_produces_consistent_figures(
    mongo_uri: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    database = "bench_" + uuid4().hex[:12]
    result = await run_ingest(
        mongo_uri, events=EVENTS, apps=4, units_per_app=3, database=database, repeat=2
    )
    check_figures(result, EVENTS)
    assert len(result.raw_runs) == len(result.cache_runs) == 2
    assert (result.apps, result.units_per_app, result.watches) == (4, 3, 12)
    assert result.mongo_version.split(".")[0].isdigit()
    assert database not in mongo_client.list_database_names()

    data = json.loads(json.dumps(result.to_dict()))
    assert data["events"] == EVENTS
    assert data["ratio"] == pytest.approx(result.ratio)
    assert "profile" not in data

    table = result.format_table()
    for text in (f"{EVENTS:,} events", "raw change stream", "model cache", "ratio", "target"):
        assert text in table
    assert ("PASS" if result.passed else "FAIL") in table


async def test_without_watches_and_with_profile(mongo_uri: str) -> None:
    result = await run_ingest(
        mongo_uri, events=200, apps=2, units_per_app=1, repeat=1, watch_units=False, profile=True
    )
    check_figures(result, 200)
    assert result.watches == 0
    assert "apply" in result.profile  # the cache's hot path shows up in the profile
    assert "profile" in result.to_dict()


async def test_refuses_an_existing_database(
    mongo_uri: str, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    mongo_client[db_name]["keep"].insert_one({"_id": 1})
    with pytest.raises(ValueError, match="exists"):
        await run_ingest(mongo_uri, events=10, database=db_name)
    assert mongo_client[db_name]["keep"].count_documents({}) == 1


def test_main_json(mongo_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--events", "300", "--apps", "3", "--units-per-app", "2", "--repeat", "1"]
    code = main([*args, "--mongo-uri", mongo_uri, "-o", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["events"] == 300
    assert data["raw_events_seen"] == data["cache_events_seen"] == 300
    assert data["ratio"] == pytest.approx(data["cache_events_per_s"] / data["raw_events_per_s"])


def test_the_median_ratio_is_judged_not_the_best_run() -> None:
    raw = [1000.0, 1010.0, 990.0]
    cache = [950.0, 700.0, 650.0]  # one undisturbed run: its ratio alone would pass
    assert TARGET == 0.8
    assert headline_ratio(raw, cache) == pytest.approx(0.7)
    assert headline_ratio(raw, cache) < TARGET < max(cache) / max(raw)
    with pytest.raises(ValueError, match="no runs"):
        headline_ratio([], [1.0])


def test_check_exits_1_below_the_target(
    mongo_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from genconf.bench import ingest

    args = ["--events", "100", "--apps", "2", "--repeat", "1", "--mongo-uri", mongo_uri]
    monkeypatch.setattr(ingest, "TARGET", 1e9)  # unreachable: the median ratio fails it
    assert main([*args, "--check"]) == 1
    assert "FAIL" in capsys.readouterr().out
    monkeypatch.setattr(ingest, "TARGET", 0.0)
    assert main([*args, "--check"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_main_table_and_bad_arguments(mongo_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--events", "100", "--apps", "2", "--repeat", "1", "--mongo-uri", mongo_uri]) == 0
    out = capsys.readouterr().out
    assert "raw change stream (baseline)" in out
    assert "ratio cache / raw" in out
    assert main(["--events", "0", "--mongo-uri", mongo_uri]) == 2
    assert "events" in capsys.readouterr().err


@pytest.mark.mongo  # starts its own mongod
async def test_embedded_mongod_is_stopped_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    from genconf.bench import ingest
    from genconf.dev.embedded import EmbeddedMongo

    started: list[EmbeddedMongo] = []

    class Recording(EmbeddedMongo):
        def start(self) -> Recording:
            started.append(self)
            return super().start()

    monkeypatch.setattr(ingest, "EmbeddedMongo", Recording)
    result = await run_ingest(events=50, apps=2, units_per_app=1, repeat=1)
    check_figures(result, 50)
    assert len(started) == 1
    assert not started[0].running
    assert not started[0].data_dir.exists()
