"""A figure's target stated as a factor of its same-run baseline (pure)."""

from __future__ import annotations

import pytest

from genconf.bench.figures import Figure


@pytest.mark.parametrize(
    ("value", "baseline", "met"),
    [(110.0, 100.0, True), (110.1, 100.0, False), (90.0, 100.0, True), (None, 100.0, False)],
)
def test_a_cost_within_a_factor_of_its_baseline(
    value: float | None, baseline: float, met: bool
) -> None:
    figure = Figure("cpu", "ms", value, baseline, target_factor=1.1)
    assert figure.target == "<= 1.1x baseline"
    assert figure.met is met


@pytest.mark.parametrize(("value", "met"), [(800.0, True), (799.0, False)])
def test_a_rate_within_a_factor_of_its_baseline(value: float, met: bool) -> None:
    figure = Figure("calls/s", "1/s", value, 1000.0, higher_is_better=True, target_factor=1.25)
    assert figure.met is met


def test_a_factor_without_a_baseline_is_a_miss() -> None:
    assert Figure("cpu", "ms", 5.0, None, target_factor=1.1).met is False
