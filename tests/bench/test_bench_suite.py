"""`genconf bench all` (`genconf.bench.suite`): the combined table, the README block,
the exit codes and the saved run, on synthetic reports; a workload that fails to
run; and one real run of a tiny ingest through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.cli_runner import Genconf, clean_env

from genconf.bench import WORKLOADS, ingest, suite
from genconf.bench.figures import Figure, Report
from genconf.bench.ingest import IngestResult
from genconf.bench.suite import (
    BEGIN,
    END,
    FAILED,
    RAN,
    SKIPPED,
    Outcome,
    SuiteRun,
    main,
    render_markdown,
    render_table,
    replace_block,
)
from genconf.errors import BenchError

MACHINE = {
    "cpus": 2,
    "load_average_1m": 0.5,
    "cpu_model": "Test CPU",
    "memory_gib": 4.0,
    "platform": "Linux 6.1 x86_64",
    "python": "3.11.7",
    "grpcio": "1.85.1",
    "mongodb": "6.0.5",
}
README = f"# genconf\n\nintro\n\n{BEGIN}\nold table\n{END}\n\nafter the table\n"


def fanout_report(*, last_ms: float) -> Report:
    """A fanout report whose first figure meets its target (<= 1000 ms) or not."""
    return Report(
        workload="fanout",
        title="one change to 10 streams",
        baseline="the same server sending one pre-encoded message (Watch/Fire): no cache",
        params={"streams": 10},
        machine=MACHINE,
        figures=[
            Figure("last agent has it", "ms", last_ms, 250.0, target_ratio=0.5, target_max=1000),
            Figure("server CPU per fan-out", "ms", 420.0, 290.0),
            Figure("SetConfig acknowledged", "ms", 3.25),
        ],
        seconds=12.0,
    )


def synthetic_run(*outcomes: Outcome) -> SuiteRun:
    return SuiteRun("2026-01-02 03:04 UTC", dict(MACHINE), list(outcomes), seconds=61.0)


def ran(report: Report) -> Outcome:
    return Outcome(report.workload, RAN, report=report, exit_code=0, seconds=report.seconds)


FAILED_STORM = Outcome(
    "storm", FAILED, error="genconf bench storm: agents | timed out after 120 s", exit_code=2
)
SKIPPED_SCALE = Outcome("scale", SKIPPED, error="genconf.bench.scale does not exist yet")


def save(tmp_path: Path, run: SuiteRun) -> Path:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run.to_dict()))
    return path


# ---------------------------------------------------------------------------
# rendering


def test_table_has_the_machine_once_and_each_figure_beside_its_baseline() -> None:
    run = synthetic_run(ran(fanout_report(last_ms=400.0)), FAILED_STORM, SKIPPED_SCALE)
    text = render_table(run)
    lines = text.splitlines()
    assert lines[0].startswith("Machine: 2 CPUs (Test CPU), 4.0 GiB, Linux 6.1 x86_64")
    assert "Python 3.11.7, grpcio 1.85.1, MongoDB 6.0.5" in lines[0]
    assert "2026-01-02 03:04 UTC, 61 s" in lines[0]
    assert text.count("Machine:") == 1
    header = next(line for line in lines if line.startswith("workload"))
    assert header.split() == list(suite.HEADER)
    last = next(line for line in lines if "last agent has it" in line)
    assert "400.0 ms" in last and "250.0 ms (one pre-encoded message)" in last
    assert "0.62" in last and "ratio >= 0.5, <= 1000 ms" in last and last.endswith("yes")
    cpu = next(line for line in lines if "server CPU per fan-out" in line)
    assert "0.69" in cpu and not cpu.endswith(("yes", "NO"))
    ack = next(line for line in lines if "SetConfig acknowledged" in line)
    assert "3.25 ms" in ack
    storm = next(line for line in lines if line.startswith("storm"))
    assert "failed to run: genconf bench storm" in storm and storm.endswith("failed")
    assert any(line.startswith("scale") and "skipped" in line for line in lines)
    # What each baseline is, in full, once; the verdict last.
    assert "  fanout: the same server sending one pre-encoded message" in text
    assert "PASS: every target met (1 of 1)" in text
    assert "failed to run: storm (exit 2): genconf bench storm: agents | timed out" in text
    assert "skipped: scale: genconf.bench.scale does not exist yet" in text


def test_markdown_is_the_machine_line_and_one_row_per_figure() -> None:
    run = synthetic_run(ran(fanout_report(last_ms=1500.0)), FAILED_STORM)
    block = render_markdown(run).splitlines()
    assert block[0].startswith("Machine: 2 CPUs (Test CPU)") and block[1] == ""
    assert block[2] == "| workload | figure | genconf | baseline | ratio | target | met? |"
    assert block[3] == "|---|---|---|---|---|---|---|"
    rows = block[4:]
    assert len(rows) == 4  # three figures, one failed workload
    for row in rows:  # a "|" in a cell is escaped, so every row has seven cells
        assert row.replace("\\|", "").count("|") == 8, row
    assert rows[0] == (
        "| fanout | last agent has it | 1,500 ms | 250.0 ms (one pre-encoded message) | "
        "0.17 | ratio >= 0.5, <= 1000 ms | NO |"
    )
    assert "agents \\| timed out" in rows[3] and rows[3].endswith("| failed |")


def test_a_figure_without_a_known_baseline_name_takes_the_reports_first_words() -> None:
    report = Report(
        workload="newcomer",
        title="t",
        baseline="the same fleet on the baseline Watch (one message): no cache",
        params={},
        machine=MACHINE,
        figures=[Figure("agents served", "1/s", 90.0, 100.0, higher_is_better=True)],
    )
    table = render_table(synthetic_run(ran(report)))
    assert "100.0 1/s (the same fleet on the baseline Watch)" in table
    assert "0.90" in table


def test_ingest_json_becomes_a_report_with_its_target() -> None:
    result = IngestResult(
        events=500,
        raw_events_per_s=1000.0,
        cache_events_per_s=600.0,
        ratio=0.6,
        target=0.7,
        passed=False,
        seconds=3.0,
        mongo_version="6.0.5",
        apps=2,
        units_per_app=1,
        watches=2,
        repeat=2,
        raw_median_events_per_s=900.0,
        cache_median_events_per_s=720.0,
    )
    report = suite.parse_report("ingest", json.dumps(result.to_dict()))
    best, median = report.figures
    assert (best.value, best.baseline, best.ratio) == (600.0, 1000.0, pytest.approx(0.6))
    assert best.target == "" and best.met is None  # the best run is shown, not judged
    assert median.ratio == pytest.approx(0.8) and median.target == "ratio >= 0.7"
    assert median.met is True and report.passed
    assert report.machine["mongodb"] == "6.0.5" and report.params["events"] == 500
    low = IngestResult(**{**result.to_dict(), "cache_median_events_per_s": 600.0})
    assert not suite.parse_report("ingest", json.dumps(low.to_dict())).passed


def test_a_report_of_another_workload_is_refused() -> None:
    text = json.dumps(fanout_report(last_ms=1.0).to_dict())
    assert suite.parse_report("fanout", text).figures[0].value == 1.0
    with pytest.raises(ValueError, match="a report of 'fanout'"):
        suite.parse_report("read", text)


# ---------------------------------------------------------------------------
# the README block


def test_readme_block_is_replaced_between_the_markers_only() -> None:
    once = replace_block(README, "new table", "README.md")
    assert once == f"# genconf\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\nafter the table\n"
    assert replace_block(once, "new table", "README.md") == once  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        f"{BEGIN}\nonly the beginning\n",
        f"{END}\n{BEGIN}\n",  # in the wrong order
        f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n",  # two blocks: which one?
    ],
)
def test_readme_without_one_pair_of_markers_is_refused(text: str) -> None:
    with pytest.raises(BenchError, match=r"^docs/x\.md: needs one <!-- bench:begin --> line"):
        replace_block(text, "table", "docs/x.md")


def test_readme_written_from_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = synthetic_run(ran(fanout_report(last_ms=400.0)))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert main(["--from", str(save(tmp_path, run)), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# genconf\n\nintro\n\n" + BEGIN + "\nMachine: 2 CPUs")
    assert text.endswith(f"{END}\n\nafter the table\n")
    assert "old table" not in text
    assert render_markdown(run) in text
    assert "last agent has it" in capsys.readouterr().out


def test_readme_without_markers_is_an_error_naming_it_and_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = save(tmp_path, synthetic_run(ran(fanout_report(last_ms=400.0))))
    readme = tmp_path / "README.md"
    readme.write_text("# genconf\n\nno markers\n")
    assert main(["--from", str(saved), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert f"genconf bench all: {readme}: needs one {BEGIN} line" in err
    assert "nothing written" in err
    assert readme.read_text() == "# genconf\n\nno markers\n"


def test_readme_markers_are_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    saved = tmp_path / "run.json"
    argv = ["--only", "ingest", "--readme", str(readme), "--save", str(saved)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{readme}: needs one {BEGIN} line" in err
    assert "ingest (1 of 1)" not in err and not saved.exists()


# ---------------------------------------------------------------------------
# exit codes, saved runs, the command line


@pytest.mark.parametrize(
    ("last_ms", "failed", "check", "code"),
    [
        (400.0, False, True, 0),  # every target met
        (1500.0, False, False, 0),  # missed, but no --check
        (1500.0, False, True, 1),  # missed, --check
        (400.0, True, False, 2),  # a workload failed to run
        (1500.0, True, True, 2),  # failed beats missed
    ],
)
def test_exit_codes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    last_ms: float,
    failed: bool,
    check: bool,
    code: int,
) -> None:
    outcomes = [ran(fanout_report(last_ms=last_ms)), *([FAILED_STORM] if failed else [])]
    run = synthetic_run(*outcomes)
    assert run.exit_code(check) == code
    argv = ["--from", str(save(tmp_path, run)), *(["--check"] if check else [])]
    assert main(argv) == code
    out = capsys.readouterr().out
    assert ("FAIL: 1 of 1 targets missed: fanout 'last agent has it'" in out) == (last_ms > 1000)


def test_saved_run_renders_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = synthetic_run(ran(fanout_report(last_ms=400.0)), FAILED_STORM, SKIPPED_SCALE)
    again = SuiteRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again.to_dict() == run.to_dict()
    assert render_table(again) == render_table(run)
    copy = tmp_path / "copy.json"
    assert main(["--from", str(save(tmp_path, run)), "-o", "json", "--save", str(copy)]) == 2
    assert json.loads(capsys.readouterr().out) == run.to_dict()
    assert json.loads(copy.read_text()) == run.to_dict()


def test_from_a_file_that_is_not_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "fanout.json"
    other.write_text(json.dumps(fanout_report(last_ms=1.0).to_dict()))
    assert main(["--from", str(other)]) == 2
    assert f"{other}: not a run saved by `genconf bench all --save`" in capsys.readouterr().err
    assert main(["--from", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: No such file or directory" in capsys.readouterr().err
    assert main(["--from", str(other), "--only", "read"]) == 2
    assert "--from renders a saved run" in capsys.readouterr().err


def test_selection_only_skip_and_workload_args() -> None:
    parser = suite.build_parser()
    selected, extra = suite.select(parser.parse_args([]))
    assert "soak" not in selected and "all" not in selected
    assert set(selected) >= {"ingest", "fanout", "targeted", "read", "http-read", "idle"}
    assert {"storm", "scale"} <= set(selected)
    assert extra == {}
    only = ["--only", "read,ingest", "--only", "fanout", "--skip", "fanout"]
    more = ["--workload-args", "read=--duration 5 --units '1 0'", "--workload-args", "read=-v"]
    args = parser.parse_args([*only, *more])
    selected, extra = suite.select(args)
    assert selected == ["ingest", "read"]  # the suite's order, not the flag's
    assert extra == {"read": ["--duration", "5", "--units", "1 0", "-v"]}
    assert suite.select(parser.parse_args(["--only", "soak"]))[0] == ["soak"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "reed"], "--only: no workload 'reed' (choose from ingest, fanout"),
        (["--skip", "all"], "--skip: no workload 'all'"),
        (["--only", "read", "--skip", "read"], "--only and --skip leave no workload to run"),
        (["--workload-args", "--repeat 7"], "--workload-args '--repeat 7': expected WORKLOAD="),
        (["--workload-args", "x=--repeat 7"], 'expected WORKLOAD="ARGS" with WORKLOAD one of'),
        (["--workload-args", "read=--x 'open"], '--workload-args "read=--x \'open": No closing'),
    ],
)
def test_bad_selection_exits_2_before_running_anything(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "run.json"
    assert main([*argv, "--save", str(saved)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert not saved.exists()


def test_a_workload_that_cannot_run_yet_is_skipped_with_the_reason() -> None:
    assert suite.unavailable("scale", {}) == "not registered in genconf.bench.WORKLOADS yet"
    assert suite.unavailable("x", {"x": "no_such_module"}) == (
        "genconf.bench.no_such_module does not exist yet"
    )
    assert suite.unavailable("ingest") is None
    assert WORKLOADS["all"] == "suite"


def test_a_workload_that_fails_to_run_exits_2_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real subprocess: ingest refuses --events 0 before starting anything."""
    saved = tmp_path / "run.json"
    argv = ["--only", "ingest", "--workload-args", "ingest=--events 0", "--save", str(saved)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    why = "genconf bench ingest: events, apps and repeat must be >= 1"
    assert f"failed to run: ingest (exit 2): {why}" in captured.out
    assert f"  ingest| {why}" in captured.err  # its stderr, relayed as it came
    (outcome,) = SuiteRun.from_dict(json.loads(saved.read_text())).outcomes
    assert (outcome.status, outcome.exit_code, outcome.report) == (FAILED, 2, None)
    assert outcome.error.startswith(why)
    assert outcome.command[-5:] == ["ingest", "--events", "0", "-o", "json"]


def test_a_workload_that_crashes_fails_with_its_last_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An uncaught exception exits 1 like a missed --check, but prints no report."""
    crash = "import sys; print('{\\n', end=''); raise NameError('name x is not defined')"
    monkeypatch.setattr(suite, "command", lambda w, extra: [sys.executable, "-c", crash])
    outcome = suite.run_one("ingest", [])
    assert (outcome.status, outcome.exit_code) == (FAILED, 1)
    assert outcome.error == "printed no report: NameError: name x is not defined"


# ---------------------------------------------------------------------------
# one real run


async def test_tiny_ingest_end_to_end(mongo_uri: str, tmp_path: Path) -> None:
    """`genconf bench all --only ingest` through the CLI: the table, the saved run,
    the README block, and --from re-rendering it with --check's verdict."""
    genconf = Genconf(None, clean_env(tmp_path))
    saved, readme = tmp_path / "run.json", tmp_path / "README.md"
    readme.write_text(README)
    tiny = f"ingest=--events 200 --apps 2 --units-per-app 1 --repeat 1 --mongo-uri {mongo_uri}"
    argv = ["bench", "all", "--only", "ingest", "--workload-args", tiny]
    done = (await genconf(*argv, "--save", str(saved), "--readme", str(readme))).ok()

    run = SuiteRun.from_dict(json.loads(saved.read_text()))
    (outcome,) = run.outcomes
    assert outcome.status == RAN and outcome.report is not None, outcome.error
    best = outcome.report.figures[0]
    assert best.name == "events applied, best of 1" and best.unit == "events/s"
    assert best.value is not None and best.value > 0
    assert best.baseline is not None and best.baseline > 0
    assert best.ratio is not None and best.ratio > 0 and best.target == ""
    median = outcome.report.figures[1]
    assert median.name == "events applied, median of 1"
    assert median.target == f"ratio >= {ingest.TARGET:g}"
    assert outcome.report.params["events"] == 200
    assert run.machine["mongodb"].split(".")[0].isdigit()
    assert done.out.startswith("Machine: ") and f"MongoDB {run.machine['mongodb']}" in done.out
    assert "events applied, best of 1" in done.out and "(raw change stream)" in done.out
    assert "genconf bench all: ingest done in" in done.err

    text = readme.read_text()
    assert text.startswith("# genconf\n\nintro\n\n") and text.endswith("after the table\n")
    assert render_markdown(run) in text and "old table" not in text

    again = await genconf("bench", "all", "--from", str(saved), "--check")
    assert again.rc == (0 if median.met else 1)
    assert again.out == done.out
