"""The nested diff, its text diffs and apply_diff (`genconf.domain.diff`)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from domain_strategies import (
    PROPERTY,
    nested_dicts,
    reorder,
    same,
)
from hypothesis import given

from genconf.domain.diff import apply_diff, diff
from genconf.domain.values import ABSENT

# ---------------------------------------------------------------------------
# diff / apply_diff


def test_diff_nested_change_reported_at_dotted_path() -> None:
    a = {"a": {"b": {"c": 1, "d": 2}}, "x": 1}
    b = {"a": {"b": {"c": 3, "d": 2}}, "x": 1}
    d = diff(a, b)
    assert d.added == []
    assert d.removed == []
    assert [(e.path, e.old, e.new) for e in d.changed] == [("a.b.c", 1, 3)]


def test_diff_added_and_removed() -> None:
    d = diff({"gone": 1, "obj": {"old": 1}}, {"new": 2, "obj": {"fresh": [1]}})
    assert [(e.path, e.new) for e in d.added] == [("new", 2), ("obj.fresh", [1])]
    assert all(e.old is ABSENT for e in d.added)
    assert [(e.path, e.old) for e in d.removed] == [("gone", 1), ("obj.old", 1)]
    assert all(e.new is ABSENT for e in d.removed)
    assert d.changed == []


def test_diff_object_replaced_by_scalar_is_one_change() -> None:
    d = diff({"a": {"b": 1}}, {"a": 1})
    assert [(e.path, e.old, e.new) for e in d.changed] == [("a", {"b": 1}, 1)]


def test_diff_multiline_string_has_unified_text_diff() -> None:
    old, new = "line1\nline2\nline3\n", "line1\nLINE2\nline3\n"
    (entry,) = diff({"k": old}, {"k": new}).changed
    assert entry.text_diff == (
        "--- a/k\n+++ b/k\n@@ -1,3 +1,3 @@\n line1\n-line2\n+LINE2\n line3\n"
    )


def test_diff_text_diff_without_trailing_newline_is_well_formed() -> None:
    (entry,) = diff({"k": "a\nb"}, {"k": "a\nc"}).changed
    lines = entry.text_diff.splitlines()
    assert "-b" in lines
    assert "+c" in lines
    assert lines.count("\\ No newline at end of file") == 2


def test_diff_single_line_strings_have_no_text_diff() -> None:
    (entry,) = diff({"k": "a"}, {"k": "b"}).changed
    assert entry.text_diff == ""


@pytest.mark.parametrize(("old", "new"), [(1, 1.0), (1, True), (0, False), ([1], [1.0])])
def test_diff_type_change_counts_as_changed(old: Any, new: Any) -> None:
    (entry,) = diff({"k": old}, {"k": new}).changed
    assert entry.path == "k"
    assert same(entry.old, old)
    assert same(entry.new, new)


def test_diff_identical_is_empty_and_apply_diff_patches() -> None:
    a = {"a": {"b": 1}, "l": [1, 2]}
    assert diff(a, a).empty
    b = {"a": {"b": 2, "c": {"d": 1}}, "m": "x"}
    assert apply_diff(a, diff(a, b)) == b


def test_apply_diff_does_not_mutate_its_input() -> None:
    a = {"a": {"b": 1}}
    apply_diff(a, diff(a, {"a": {"b": 2}}))
    assert a == {"a": {"b": 1}}


@PROPERTY
@given(nested_dicts, nested_dicts)
def test_prop_apply_diff_of_diff_gives_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    d = diff(a, b)
    assert same(apply_diff(a, d), b)
    # nested objects are never reported as a whole-object change
    assert not any(isinstance(e.old, dict) and isinstance(e.new, dict) for e in d.changed)


@PROPERTY
@given(nested_dicts)
def test_prop_diff_with_itself_is_empty(a: dict[str, Any]) -> None:
    assert diff(a, a).empty
    assert diff(a, reorder(a, random.Random(0))).empty
