"""Table cells that stay one short line: a version's CHANGES and a short TIME."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from genconf.cli.render import changes_text, short_time


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        ({}, {"port": 80}, "+port=80"),
        ({"port": 80}, {"port": 90}, "~port 80→90"),
        ({"port": 80, "tls": True}, {"port": 80}, "-tls"),
        ({"a": 1}, {"a": 1}, "(no change)"),
        (None, {"b": 1, "a": 2}, "=a =b"),
        ({"motd": "one\ntwo"}, {"motd": "one\nthree"}, "~motd one⏎two→one⏎three"),
        ({}, {"k": "x" * 40}, "+k=" + "x" * 23 + "…"),
    ],
)
def test_changes_text(before: dict[str, Any] | None, after: dict[str, Any], text: str) -> None:
    assert changes_text(before, after) == text


def test_short_time_is_the_time_today_and_the_date_otherwise() -> None:
    now = dt.datetime.now().astimezone()
    today = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    assert short_time(today, now) == now.strftime("%H:%M:%S")
    old = dt.datetime(2020, 1, 2, 12, tzinfo=dt.UTC)
    assert short_time(old.isoformat(), now) == old.astimezone().strftime("%Y-%m-%d")
    assert short_time(None) == "-"
