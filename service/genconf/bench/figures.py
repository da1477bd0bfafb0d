"""A workload's figures and report: each figure next to its same-run baseline and
their ratio, as a table or (``-o json``) as JSON with the same data; and the
statistics the workloads take them with."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from genconf.errors import BenchError

LIST_SHOWN: Final = 12  # a longer list in a table shows its ends only
SIDES: Final = ("baseline", "genconf")  # what every agent-facing workload compares


@dataclass
class Figure:
    """One measured figure, its same-run baseline, and its target.

    ``ratio`` says how genconf compares with the baseline, 1.0 meaning as good:
    baseline / genconf for costs (time, memory, CPU), genconf / baseline for
    rates (``higher_is_better``).
    """

    name: str
    unit: str
    value: float | None
    baseline: float | None = None
    higher_is_better: bool = False
    target_ratio: float | None = None  # the ratio must be at least this
    target_max: float | None = None  # the value must be at most this
    target_min: float | None = None  # the value must be at least this
    baseline_name: str = ""
    # A cost at most this many times the baseline's (``1.1``: within 1.1x); the same
    # test as ``target_ratio = 1 / target_factor``, said the way a target is stated.
    target_factor: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        num, den = (
            (self.value, self.baseline) if self.higher_is_better else (self.baseline, self.value)
        )
        return num / den if den > 0 else None

    @property
    def target(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f"ratio >= {self.target_ratio:g}")
        if self.target_factor is not None:
            parts.append(f"<= {self.target_factor:g}x baseline")
        if self.target_max is not None:
            parts.append(f"<= {self.target_max:g} {self.unit}")
        if self.target_min is not None:
            parts.append(f">= {self.target_min:g} {self.unit}")
        return ", ".join(parts)

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        if self.value is None:
            return False
        ok = True
        if self.target_ratio is not None:
            ok = ok and self.ratio is not None and self.ratio >= self.target_ratio
        if self.target_factor is not None:
            ok = ok and self._within_factor(self.target_factor)
        if self.target_max is not None:
            ok = ok and self.value <= self.target_max
        if self.target_min is not None:
            ok = ok and self.value >= self.target_min
        return ok

    def _within_factor(self, factor: float) -> bool:
        if self.value is None or self.baseline is None:
            return False
        if self.higher_is_better:
            return self.value * factor >= self.baseline
        return self.value <= self.baseline * factor

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ratio=self.ratio, target=self.target, met=self.met)
        return out


@dataclass
class Report:
    """A workload's figures, how they were taken, and on what."""

    workload: str
    title: str
    baseline: str  # what the baseline is, in a few words
    params: dict[str, Any]
    machine: dict[str, Any]
    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(f.met is not False for f in self.figures)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "title": self.title,
            "baseline": self.baseline,
            "params": self.params,
            "machine": self.machine,
            "figures": [f.to_dict() for f in self.figures],
            "passed": self.passed,
            "details": self.details,
            "seconds": self.seconds,
        }

    def format_table(self) -> str:
        m = self.machine
        lines = [
            f"genconf bench {self.workload}: {self.title}",
            f"baseline: {self.baseline}",
            f"machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), "
            f"{m.get('memory_gib')} GiB, {m.get('platform')}, Python {m.get('python')}, "
            f"grpcio {m.get('grpcio')}, MongoDB {m.get('mongodb')}; "
            f"load average {m.get('load_average_1m')} at the end",
            "",
            f"  {'figure':<36}{'genconf':>12}{'baseline':>12}{'ratio':>8}  "
            f"{'target':<28}{'met':>4}",
        ]
        for f in self.figures:
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
            met = {True: "yes", False: "NO", None: ""}[f.met]
            lines.append(
                f"  {f.name + ' (' + f.unit + ')':<36}{number(f.value):>12}"
                f"{number(f.baseline):>12}{ratio:>8}  {f.target:<28}{met:>4}"
            )
        lines.append("")
        for key, value in self.details.items():
            if isinstance(value, dict):
                lines.append(f"  {key}:")
                lines.extend(f"    {k}: {_plain(v)}" for k, v in value.items())
            else:
                lines.append(f"  {key}: {_plain(value)}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"  {verdict}: every target met" if self.passed else f"  {verdict}")
        lines.append(f"  total run {self.seconds:.1f} s")
        return "\n".join(lines)


def number(x: float | None) -> str:
    """A figure as the tables round it (-, 1,234, 12.3, 1.23)."""
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list):
        if len(value) > LIST_SHOWN:
            half = LIST_SHOWN // 2
            shown = [*map(_plain, value[:half]), "...", *map(_plain, value[-half:])]
            return "[" + ", ".join(shown) + f"] ({len(value)} values; all with -o json)"
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


def turns(sides: Sequence[str], round_: int) -> Sequence[str]:
    """The sides in round ``round_``'s order: alternating, so neither always goes first."""
    return sides if round_ % 2 == 0 else sides[::-1]


def best_rounds(costs: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """Each side's best round (least disturbed by the host): the index of its lowest cost."""
    return {
        side: min(range(len(per_round)), key=per_round.__getitem__)
        for side, per_round in costs.items()
    }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def machine(mongodb: str = "?") -> dict[str, Any]:
    """What the figures were measured on."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 2**20
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        # Other work on the host at the end of the run (the figures share its CPUs).
        "load_average_1m": round(load[0], 2),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "mongodb": mongodb,
    }


def ms(seconds: float) -> float:
    return seconds * 1000.0
