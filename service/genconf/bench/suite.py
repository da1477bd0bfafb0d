"""`genconf bench all`: every workload in one run, one table.

Each workload runs as its own subprocess (``python -m genconf.cli.main bench W -o
json``), one after the other, so one workload's crash, memory or leftover threads
cannot change the next one's figures. The suite collects each workload's report,
describes the machine once, and prints one table: each figure next to its
same-run baseline, their ratio, the target and whether it was met.

Exit codes: 2 when a workload failed to run (or the command line, ``--from`` or
``--readme`` is unusable), 1 with ``--check`` when a figure missed its target,
else 0. ``--save`` keeps the whole run as one JSON document and ``--from``
re-renders one without running anything, so the README's table
(``--readme``, between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``)
always comes from a single run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from genconf.bench import WORKLOADS
from genconf.bench.figures import Figure, Report, machine, number
from genconf.errors import BenchError, GenconfError, UsageError

__all__ = ["Outcome", "SuiteRun", "main", "render_markdown", "render_table", "replace_block"]

PROG: Final = "genconf bench all"
FORMAT: Final = 1  # of the --save document
# Not part of the suite: itself, and soak (minutes of churn; `make soak`).
EXCLUDED: Final = frozenset({"all", "soak"})
BEGIN: Final = "<!-- bench:begin -->"
END: Final = "<!-- bench:end -->"
STDERR_KEPT: Final = 40  # lines of a workload's stderr kept for its failure message
ERROR_SHOWN: Final = 120  # characters of a failure message in a table cell
INTERRUPT_GRACE: Final = 30.0  # s an interrupted workload has to clean up

# What each workload's baseline is, in a few words, for the table's baseline
# column; the report's own sentence (`Report.baseline`) is listed under the table.
BASELINE_NAMES: Final = {
    "ingest": "raw change stream",
    "fanout": "one pre-encoded message",
    "targeted": "plain change stream",
    "read": "empty unary handler",
    "http-read": "empty HTTP route",
    "idle": "streams that only wait",
    "storm": "baseline Watch",
    "scale": "the smallest size",
    "soak": "none",
}

RAN, FAILED, SKIPPED = "ran", "failed", "skipped"


@dataclass
class Outcome:
    """One workload's part of the run: its report, or why there is none."""

    workload: str
    status: str  # RAN, FAILED or SKIPPED
    report: Report | None = None
    error: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "status": self.status,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "command": self.command,
            "error": self.error,
            "report": None if self.report is None else self.report.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        report = data.get("report")
        status = str(data["status"])
        if status not in (RAN, FAILED, SKIPPED):
            raise ValueError(f"unknown status {status!r}")
        return cls(
            workload=str(data["workload"]),
            status=status,
            report=None if report is None else report_from_dict(report),
            error=str(data.get("error", "")),
            exit_code=data.get("exit_code"),
            seconds=float(data.get("seconds", 0.0)),
            command=list(data.get("command", [])),
        )


@dataclass
class SuiteRun:
    """A whole `genconf bench all` run: what --save writes and --from reads."""

    started_at: str
    machine: dict[str, Any]
    outcomes: list[Outcome]
    seconds: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def skipped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == SKIPPED]

    def targets(self) -> list[tuple[str, Figure]]:
        """Every figure that has a target, with its workload."""
        return [
            (o.workload, f)
            for o in self.outcomes
            if o.report is not None
            for f in o.report.figures
            if f.met is not None
        ]

    def missed(self) -> list[tuple[str, Figure]]:
        return [(w, f) for w, f in self.targets() if f.met is False]

    def exit_code(self, check: bool) -> int:
        """2 when a workload failed to run, 1 with ``check`` when a target was missed."""
        if self.failed:
            return 2
        return 1 if check and self.missed() else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": PROG,
            "format": FORMAT,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "machine": self.machine,
            "runs": [o.to_dict() for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteRun:
        if data.get("suite") != PROG or data.get("format") != FORMAT:
            raise ValueError(f"expected suite {PROG!r}, format {FORMAT}")
        return cls(
            started_at=str(data["started_at"]),
            machine=dict(data["machine"]),
            outcomes=[Outcome.from_dict(o) for o in data["runs"]],
            seconds=float(data.get("seconds", 0.0)),
        )


# ---------------------------------------------------------------------------
# reports from the workloads' JSON


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """A `Report` back from its ``to_dict`` (the derived ratio, target and met dropped)."""
    known = {f.name for f in fields(Figure)}
    return Report(
        workload=str(data["workload"]),
        title=str(data.get("title", "")),
        baseline=str(data.get("baseline", "")),
        params=dict(data.get("params", {})),
        machine=dict(data.get("machine", {})),
        figures=[Figure(**{k: v for k, v in f.items() if k in known}) for f in data["figures"]],
        details=dict(data.get("details", {})),
        seconds=float(data.get("seconds", 0.0)),
    )


def ingest_report(data: Mapping[str, Any]) -> Report:
    """`genconf bench ingest -o json` prints its own result, not a `Report`: the same
    figures as one (cache events/s next to the raw change stream's)."""
    repeat = int(data["repeat"])
    raw = "raw change stream"
    return Report(
        workload="ingest",
        title=f"{data['events']:,} change events over {data['apps']} applications x "
        f"{data['units_per_app']} units ({data['watches']} unit watches); "
        f"best of {repeat} runs per side",
        baseline="a raw change stream with the multiwatcher's pipeline and options, in "
        "the same process, over the same events",
        params={k: data[k] for k in ("events", "apps", "units_per_app", "watches", "repeat")},
        machine=machine(str(data.get("mongo_version", "?"))),
        figures=[
            Figure(
                f"events applied, best of {repeat}",
                "events/s",
                data["cache_events_per_s"],
                data["raw_events_per_s"],
                higher_is_better=True,
                baseline_name=raw,
            ),
            Figure(
                f"events applied, median of {repeat}",
                "events/s",
                data["cache_median_events_per_s"],
                data["raw_median_events_per_s"],
                higher_is_better=True,
                # The target judges the medians' ratio (`genconf.bench.ingest.TARGET`).
                target_ratio=data["target"],
                baseline_name=raw,
            ),
        ],
        details={
            k: data[k]
            for k in ("raw_runs", "cache_runs", "write_events_per_s", "start_revision")
            if k in data
        },
        seconds=float(data.get("seconds", 0.0)),
    )


def parse_report(workload: str, stdout: str) -> Report:
    """The report a workload printed with ``-o json``."""
    data = json.loads(stdout)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if "figures" not in data and "raw_events_per_s" in data:
        return ingest_report(data)
    report = report_from_dict(data)
    if report.workload != workload:
        raise ValueError(f"a report of {report.workload!r}")
    return report


# ---------------------------------------------------------------------------
# running


def unavailable(workload: str, workloads: Mapping[str, str] = WORKLOADS) -> str | None:
    """Why ``workload`` cannot run in this tree (None when it can)."""
    if workload not in workloads:
        return "not registered in genconf.bench.WORKLOADS yet"
    module = f"genconf.bench.{workloads[workload]}"
    if importlib.util.find_spec(module) is None:
        return f"{module} does not exist yet"
    return None


def suite_workloads() -> list[str]:
    """The default run: every registered workload but the excluded."""
    return [w for w in WORKLOADS if w not in EXCLUDED]


def command(workload: str, extra: Sequence[str]) -> list[str]:
    """The workload's command line; ``-o json`` last, so it wins over ``extra``."""
    return [sys.executable, "-m", "genconf.cli.main", "bench", workload, *extra, "-o", "json"]


def _relay(stream: IO[str], workload: str, kept: deque[str], echo: IO[str] | None) -> None:
    for line in stream:
        kept.append(line.rstrip("\n"))
        if echo is not None:
            echo.write(f"  {workload}| {line}")
            echo.flush()


def run_one(workload: str, extra: Sequence[str], echo: IO[str] | None = None) -> Outcome:
    """Run one workload in a subprocess; its stderr is relayed to ``echo`` as it comes."""
    cmd = command(workload, extra)
    started = time.perf_counter()
    kept: deque[str] = deque(maxlen=STDERR_KEPT)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    relay = threading.Thread(target=_relay, args=(proc.stderr, workload, kept, echo), daemon=True)
    relay.start()
    try:
        out = proc.stdout.read()
        code = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: the workload must not outlive the suite
            try:  # a Ctrl-C reached it too: let it stop its server, agents and mongod
                proc.wait(timeout=INTERRUPT_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        relay.join()
    seconds = time.perf_counter() - started
    last = next((line.strip() for line in reversed(kept) if line.strip()), "")
    try:
        if code not in (0, 1):  # 1: the workload's own --check (or an uncaught exception)
            raise ValueError(last or "no message on stderr")
        report = parse_report(workload, out)
    except (ValueError, KeyError, TypeError) as exc:
        why = str(exc) if code not in (0, 1) else f"printed no report: {last or exc}"
        return Outcome(workload, FAILED, error=why, exit_code=code, seconds=seconds, command=cmd)
    return Outcome(workload, RAN, report=report, exit_code=code, seconds=seconds, command=cmd)


def run_suite(
    selected: Sequence[str], extra: Mapping[str, Sequence[str]], echo: IO[str] | None
) -> SuiteRun:
    """Run ``selected`` one after the other (those that cannot run are skipped)."""
    started = time.perf_counter()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    outcomes: list[Outcome] = []
    for n, workload in enumerate(selected, 1):
        why = unavailable(workload)
        if why is not None:
            _say(echo, f"{workload} skipped: {why}")
            outcomes.append(Outcome(workload, SKIPPED, error=why))
            continue
        _say(echo, f"{workload} ({n} of {len(selected)}) ...")
        outcome = run_one(workload, extra.get(workload, ()), echo)
        if outcome.status == RAN:
            _say(echo, f"{workload} done in {outcome.seconds:.1f} s")
        else:
            _say(echo, f"{workload} failed (exit {outcome.exit_code}): {outcome.error}")
        outcomes.append(outcome)
    versions = sorted(
        {str(o.report.machine.get("mongodb", "?")) for o in outcomes if o.report is not None}
    )
    return SuiteRun(
        started_at=started_at,
        machine=machine(", ".join(versions) or "?"),  # load average: at the run's end
        outcomes=outcomes,
        seconds=time.perf_counter() - started,
    )


def _say(echo: IO[str] | None, text: str) -> None:
    if echo is not None:
        echo.write(f"{PROG}: {text}\n")
        echo.flush()


# ---------------------------------------------------------------------------
# rendering

HEADER: Final = ("workload", "figure", "genconf", "baseline", "ratio", "target", "met?")


def _with_unit(x: float | None, unit: str) -> str:
    return "-" if x is None else f"{number(x)} {unit}".rstrip()


def baseline_name(report: Report, figure: Figure) -> str:
    """The baseline in a few words: the figure's own, the workload's, or the report's
    sentence up to its first parenthesis or colon."""
    if figure.baseline_name:
        return figure.baseline_name
    if report.workload in BASELINE_NAMES:
        return BASELINE_NAMES[report.workload]
    short = report.baseline.split(" (", 1)[0].split(":", 1)[0].strip()
    return short if len(short) <= 40 else short[:39] + "…"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_SHOWN else text[: ERROR_SHOWN - 1] + "…"


def rows(run: SuiteRun) -> list[tuple[str, ...]]:
    """The table's rows: one per figure, one per workload that failed or was skipped."""
    out: list[tuple[str, ...]] = []
    for o in run.outcomes:
        if o.status == FAILED:
            out.append((o.workload, f"failed to run: {_short(o.error)}", "", "", "", "", "failed"))
        elif o.status == SKIPPED:
            out.append((o.workload, f"skipped: {_short(o.error)}", "", "", "", "", ""))
        elif o.report is not None:
            for f in o.report.figures:
                base = _with_unit(f.baseline, f.unit)
                if f.baseline is not None:
                    base += f" ({baseline_name(o.report, f)})"
                ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
                met = {True: "yes", False: "NO", None: ""}[f.met]
                out.append(
                    (o.workload, f.name, _with_unit(f.value, f.unit), base, ratio, f.target, met)
                )
    return out


def machine_line(run: SuiteRun) -> str:
    """The machine and the run, in one sentence (above the table, and in the README)."""
    m = run.machine
    return (
        f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, "
        f"{m.get('platform')}, Python {m.get('python')}, grpcio {m.get('grpcio')}, "
        f"MongoDB {m.get('mongodb')}; one `{PROG}` run, {run.started_at}, "
        f"{run.seconds:.0f} s; load average {m.get('load_average_1m')} at its end."
    )


def render_table(run: SuiteRun) -> str:
    """The terminal's view: machine, table, what each baseline is, the verdict."""
    body = [HEADER, *rows(run)]
    widths = [max(len(r[i]) for r in body) for i in range(len(HEADER))]
    lines = [machine_line(run), ""]
    for r in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if r is HEADER:
            lines.append("  ".join("-" * w for w in widths))
    baselines = [(o.workload, o.report.baseline) for o in run.outcomes if o.report is not None]
    if baselines:
        lines += ["", "baselines (each measured in the same run as its figures):"]
        lines += [f"  {w}: {text}" for w, text in baselines]
    lines += ["", *verdict(run)]
    return "\n".join(lines)


def verdict(run: SuiteRun) -> list[str]:
    targets, missed = run.targets(), run.missed()
    if missed:
        names = ", ".join(f"{w} {f.name!r}" for w, f in missed)
        lines = [f"FAIL: {len(missed)} of {len(targets)} targets missed: {names}"]
    else:
        lines = [f"PASS: every target met ({len(targets)} of {len(targets)})"]
    lines += [f"failed to run: {o.workload} (exit {o.exit_code}): {o.error}" for o in run.failed]
    lines += [f"skipped: {o.workload}: {o.error}" for o in run.skipped]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(run: SuiteRun) -> str:
    """The README's block: the machine line, then the table in markdown."""
    lines = [
        machine_line(run),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows(run)]
    return "\n".join(lines)


def replace_block(text: str, block: str, name: str) -> str:
    """``text`` with what lies between the bench markers replaced by ``block``."""
    begins, ends = text.count(BEGIN), text.count(END)
    if begins != 1 or ends != 1 or text.index(BEGIN) > text.index(END):
        raise BenchError(
            f"{name}: needs one {BEGIN} line and, after it, one {END} line around the "
            f"benchmark table (found {begins} begin and {ends} end markers); nothing written"
        )
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


# ---------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run every benchmark but soak, each in its own process, and print one\n"
        "table: each figure next to its same-run baseline, the ratio, the target and\n"
        "whether it was met, below a description of the machine. Exit 2 when a workload\n"
        "failed to run, 1 with --check when a target was missed.",
        epilog="Examples:\n"
        f"  {PROG} --check\n"
        f"  {PROG} --only ingest,read --workload-args read='--duration 5'\n"
        f"  {PROG} --skip storm --save bench.json\n"
        f"  {PROG} --from bench.json --readme README.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="W1,W2",
        help="run only these workloads (in the suite's order)",
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="W", help="leave out this workload"
    )
    parser.add_argument(
        "--workload-args",
        action="append",
        default=[],
        metavar='W="ARGS"',
        help='more options for one workload, e.g. fanout="--repeat 7" (repeatable)',
    )
    parser.add_argument(
        "--readme",
        metavar="FILE",
        help=f"write the machine and the table between {BEGIN} and {END} in FILE",
    )
    parser.add_argument("--save", metavar="FILE", help="write the whole run to FILE as JSON")
    parser.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="render a run saved with --save; runs nothing",
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    return parser


def _names(values: Iterable[str], flag: str, known: Sequence[str]) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise UsageError(f"{flag}: no workload {name!r} (choose from {', '.join(known)})")
    return names


def select(args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]]]:
    """The workloads to run, in order, and each one's extra arguments."""
    known = [w for w in WORKLOADS if w != "all"]
    only = _names(args.only, "--only", known)
    skip = set(_names(args.skip, "--skip", known))
    order = suite_workloads() + [w for w in only if w not in suite_workloads()]
    selected = [w for w in order if (w in only if only else True) and w not in skip]
    if not selected:
        raise UsageError("--only and --skip leave no workload to run")
    extra: dict[str, list[str]] = {}
    for value in args.workload_args:
        workload, sep, rest = value.partition("=")
        if not sep or workload.strip() not in known:
            raise UsageError(
                f'--workload-args {value!r}: expected WORKLOAD="ARGS" with WORKLOAD one of '
                f'{", ".join(known)}, e.g. fanout="--repeat 7"'
            )
        try:
            extra.setdefault(workload.strip(), []).extend(shlex.split(rest))
        except ValueError as exc:
            raise UsageError(f"--workload-args {value!r}: {exc}") from exc
    return selected, extra


def load(path: str) -> SuiteRun:
    try:
        return SuiteRun.from_dict(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise BenchError(f"{path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BenchError(f"{path}: not a run saved by `{PROG} --save` ({exc})") from exc


def read_readme(path: str) -> str:
    """The README's text, its markers checked."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BenchError(f"{path}: {exc.strerror or exc}") from exc
    replace_block(text, "", path)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``genconf bench all``: run or re-render, print, save, write the README."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.from_file and (args.only or args.skip or args.workload_args):
            raise UsageError(
                "--from renders a saved run: --only, --skip and --workload-args "
                "apply to a new run only"
            )
        if args.readme:  # its markers checked now, not after an hour of benchmarks
            read_readme(args.readme)
        if args.save and not Path(args.save).resolve().parent.is_dir():
            raise BenchError(f"--save {args.save}: its directory does not exist")
        if args.from_file:
            run = load(args.from_file)
        else:
            selected, extra = select(args)
            run = run_suite(selected, extra, echo=sys.stderr)
        if args.save:
            try:
                Path(args.save).write_text(json.dumps(run.to_dict(), indent=2) + "\n")
            except OSError as exc:
                raise BenchError(f"--save {args.save}: {exc.strerror or exc}") from exc
        if args.readme:  # read again: it may have been edited during the run
            new = replace_block(read_readme(args.readme), render_markdown(run), args.readme)
            try:
                Path(args.readme).write_text(new)
            except OSError as exc:
                raise BenchError(f"--readme {args.readme}: {exc.strerror or exc}") from exc
    except GenconfError as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if args.output == "json":
        print(json.dumps(run.to_dict(), indent=2))
    else:
        print(render_table(run))
    return run.exit_code(args.check)


if __name__ == "__main__":
    sys.exit(main())
