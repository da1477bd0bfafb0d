"""The scale benchmark (`genconf bench scale`) at two tiny sizes: every figure is
there and positive, the growth figures compare the last size with the first,
the JSON is well formed, each size's model is the one asked for, and no database
is left behind. No timing assertions: how fast it runs depends on the host."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pymongo import MongoClient

from genconf.bench import WORKLOADS, scale
from genconf.cli.bench import BENCH_SUMMARIES

SIZES = (500, 1000)
LABELS = ("500", "1k")  # how the figures name the sizes
PER_SIZE = (
    "build",
    "memory per unit",
    "cold start",
    "snapshot load",
    "snapshot load per unit",
    "resync",
    "resync per unit",
    "GetConfig p50",
    "GetConfig p99",
    "GetConfig CPU per call",
    "fan-out median round",
    "fan-out p99 round",
)
GROWTH = (
    "memory per unit",
    "snapshot load per unit",
    "resync per unit",
    "GetConfig p99",
    "fan-out median round",
)


def test_scale_is_registered() -> None:
    assert WORKLOADS["scale"] == "scale"
    assert "scale" in BENCH_SUMMARIES


def test_plan_spreads_units_over_applications() -> None:
    assert scale._plan(1000, 100) == [100] * 10
    assert scale._plan(250, 100) == [100, 100, 50]
    assert scale._plan(40, 100) == [40]


def test_small_run_reports_every_figure(
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Two of each repeated measurement instead of three: the test checks the shape.
    monkeypatch.setattr(scale, "COLD_STARTS", 2)
    monkeypatch.setattr(scale, "RESYNCS", 2)
    argv = [
        "--sizes",
        ",".join(map(str, SIZES)),
        "--rate",
        "200",
        "--duration",
        "1",
        "--repeat",
        "3",
        "--workers",
        "1",
        "--channels",
        "2",
        "--mongo-uri",
        mongo_uri,
        "-o",
        "json",
    ]
    assert scale.main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["workload"] == "scale"
    assert data["params"]["sizes"] == list(SIZES)
    assert "smallest size (500 units)" in data["baseline"]
    figures = {f["name"]: f for f in data["figures"]}
    expected = [f"{name} @{label}" for name in PER_SIZE for label in LABELS]
    expected += [f"{name} 1k/500" for name in GROWTH]
    assert list(figures) == expected
    for figure in data["figures"]:
        assert figure["value"] is not None and math.isfinite(figure["value"]), figure
        assert figure["value"] > 0, figure
    for name in PER_SIZE:
        first, last = figures[f"{name} @500"], figures[f"{name} @1k"]
        # The smallest size is every size's baseline.
        assert first["baseline"] == last["baseline"] == first["value"]
        assert first["ratio"] == pytest.approx(1.0)
    for name in GROWTH:
        growth = figures[f"{name} 1k/500"]
        assert growth["unit"] == "x" and growth["target"] == "<= 1.5 x"
        assert growth["value"] == pytest.approx(
            figures[f"{name} @1k"]["value"] / figures[f"{name} @500"]["value"]
        )
        assert growth["met"] is (growth["value"] <= 1.5)
    assert data["passed"] == all(f["met"] is not False for f in data["figures"])

    for size in SIZES:
        detail = data["details"][f"size {size:,}"]
        apps = size // 100
        assert (detail["units"], detail["applications"], detail["branches"]) == (size, apps, apps)
        assert detail["tracking_units"] == size // 10
        assert len(detail["starts_s"]) == len(detail["empty_starts_s"]) == 2
        assert len(detail["resyncs_s"]) == len(detail["empty_resyncs_s"]) == 2
        assert detail["get_sent"] == detail["get_completed"] == 200
        assert detail["get_errors"] == 0
        assert len(detail["fanout_s"]) == len(detail["fanout_ack_s"]) == 3
        assert all(ack > 0 for ack in detail["fanout_ack_s"])
        assert detail["rss_mib"] > detail["empty_rss_mib"]
    # Progress went to stderr, one line per phase, and no database is left behind.
    assert "1,000 units: built 10 applications, 10 branches" in captured.err
    assert not any(n.startswith("bench_scale_") for n in mongo_client.list_database_names())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--branch-share", "2"], "--branch-share must be between 0 and 1"),
        (["--rate", "0"], "--rate and --duration must be > 0"),
        (["--units-per-app", "0"], "--units-per-app must be >= 1"),
        (["--server", "127.0.0.1:1"], "scale starts and restarts its own server"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert scale.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_sizes_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        scale.main(["--sizes", "1000,x"])
    assert info.value.code == 2
    assert "--sizes takes unit counts separated by commas" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scale.main(["--sizes", "0"])
    assert "every size must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scale.main(["--sizes", "1000,1000"])
    assert "name each size once" in capsys.readouterr().err
