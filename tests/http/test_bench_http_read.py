"""`genconf bench http-read` at a small size: its server and client processes run,
every request is answered, the figures stand next to the empty route's, and the
run cleans up after itself. No timing assertions: how fast it runs depends on the
host. `genconf bench http-read` reports the real figures."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pymongo import MongoClient

from genconf.bench import WORKLOADS, http_read
from genconf.bench.options import Options
from genconf.cli.bench import BENCH_SUMMARIES


async def test_a_small_run(mongo_uri: str, mongo_client: MongoClient[dict[str, Any]]) -> None:
    opts = Options(streams=1, workers=1, channels=2, repeat=2, mongo_uri=mongo_uri, timeout=60)
    report = await http_read.run_http_read(opts, units=5, duration=0.3, profile=True)
    assert report.workload == "http-read"
    best = report.figures[0]
    assert [f.name for f in report.figures[1:]] == [
        "requests/s, median round",
        "server CPU per request",
    ]
    assert best.name == "GET config requests/s" and best.target_ratio == http_read.TARGET_RATIO
    for figure in report.figures:
        assert figure.value is not None and math.isfinite(figure.value) and figure.value > 0
        assert figure.baseline is not None and figure.baseline > 0
        assert figure.ratio is not None and figure.ratio > 0
    assert best.value == max(report.details["requests_per_s_per_round"]["genconf"])
    assert len(report.details["server_cpu_us_per_round"]["baseline"]) == 2
    assert report.details["requests"]["genconf"] > 0
    # The profile of the server: genconf's route and the HTTP stack's show in it.
    assert "get_unit_config" in report.details["profile"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["figures"][0]["target"] == "ratio >= 0.8"
    assert "GET config requests/s" in report.format_table()
    assert not any(n.startswith("bench_http_read_") for n in mongo_client.list_database_names())


async def test_it_refuses_a_given_server() -> None:
    with pytest.raises(ValueError, match="starts its own server"):
        await http_read.run_http_read(Options(streams=1, server="127.0.0.1:1"))


def test_it_is_a_registered_workload() -> None:
    assert WORKLOADS["http-read"] == "http_read"
    assert "HTTP" in BENCH_SUMMARIES["http-read"]
    assert http_read.build_parser().parse_args(["--units", "3"]).units == 3
