"""The per-event helpers made cheaper for bench ingest (the config hash, the
multiwatcher's and the feed's): each gives exactly what the plain way gives. Pure:
no mongod, no event loop."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from bson import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain import values
from genconf.domain.deltas import Batch, Delta, Kind
from genconf.readside.events import delta_of
from genconf.readside.feed import batch_bytes
from genconf.readside.multiwatcher import _batch_has_more
from genconf.store.documents import revision_of

# Configs as they come out of BSON: any JSON value, keys and strings of any text
# (non-ASCII, quotes, control characters), floats of every size.
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=16,
)
_configs = st.dictionaries(_text, _json, max_size=6)


@given(_configs)
def test_config_hash_is_the_hash_of_the_canonical_json(config: dict[str, Any]) -> None:
    assert values.config_hash(config) == hashlib.sha256(values.canonical_json(config)).hexdigest()


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"x": math.nan}, ValueError),
        ({"x": math.inf}, ValueError),
        ({"x": object()}, TypeError),
        ({"x": {1: "a", "b": 2}}, TypeError),  # keys that cannot be sorted together
    ],
    ids=["nan", "infinity", "not-json", "mixed-keys"],
)
def test_config_hash_refuses_what_the_canonical_json_refuses(
    config: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        values.canonical_json(config)
    with pytest.raises(error):
        values.config_hash(config)


def _event(op: str, coll: str = "applications") -> dict[str, Any]:
    event: dict[str, Any] = {
        "_id": {"_data": "82"},
        "operationType": op,
        "ns": {"db": "d", "coll": coll},
        "documentKey": {"_id": "web"},
        "clusterTime": Timestamp(1_700_000_000, 7),
    }
    if op != "delete":
        event["fullDocument"] = {
            "_id": "web",
            "charm": "web",
            "schema": {"port": {"type": "int", "default": 8080}},
            "settings": {"port": 9090},
            "version": 2,
            "revision": 2,
        }
    return event


@pytest.mark.parametrize("op", ["insert", "update", "replace", "delete"])
def test_a_given_revision_is_the_events_own(op: str) -> None:
    event = _event(op)
    revision = revision_of(event["clusterTime"])
    assert delta_of(event, {}, None, revision) == delta_of(event, {})
    assert delta_of(event, {}, None, revision).revision == revision  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "event",
    [_event("update", coll="leases"), _event("drop"), {"operationType": "update"}],
    ids=["unwatched-collection", "drop", "no-namespace"],
)
def test_events_not_modelled_give_no_delta(event: dict[str, Any]) -> None:
    assert delta_of(event, {}, None, 1) is None


@pytest.mark.parametrize("sizes", [[], [300], [300, 0, 512]], ids=["empty", "one", "several"])
def test_batch_bytes_counts_each_delta_once(sizes: list[int]) -> None:
    deltas = tuple(Delta(Kind.UNIT, f"a/{i}", 1, None, None, size) for i, size in enumerate(sizes))
    assert batch_bytes(Batch(1, deltas)) == sum(d.bytes for d in deltas)


class _Cursor:
    def __init__(self, buffered: int) -> None:
        self.buffered = buffered

    def _has_next(self) -> bool:
        return self.buffered > 0


class _Stream:
    def __init__(self, cursor: object) -> None:
        self._cursor = cursor


@pytest.mark.parametrize(
    ("stream", "more"),
    [(_Stream(_Cursor(2)), True), (_Stream(_Cursor(0)), False), (_Stream(None), False)],
    ids=["buffered", "drained", "no-cursor"],
)
def test_batch_has_more_asks_the_streams_cursor(stream: object, more: bool) -> None:
    assert _batch_has_more(stream) is more  # type: ignore[arg-type]
