"""The difference between two configs, by dotted path, and the patch that replays it.

A changed multi-line string also carries a unified text diff, for people to read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genconf.domain.patch import unified_diff
from genconf.domain.values import ABSENT, canonical_json, values_equal


@dataclass(frozen=True)
class DiffEntry:
    """One difference at a dotted path; ``old``/``new`` are ABSENT when added/removed."""

    path: str
    old: Any = ABSENT
    new: Any = ABSENT
    text_diff: str = ""


@dataclass(frozen=True)
class Diff:
    added: list[DiffEntry] = field(default_factory=list)
    removed: list[DiffEntry] = field(default_factory=list)
    changed: list[DiffEntry] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _text_diff(path: str, old: Any, new: Any) -> str:
    """A unified diff of multi-line strings, one that `patch.apply_patch` (and GNU
    patch) applies back: `genconf config patch` takes it as it is printed."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return unified_diff(old, new, path)
    return ""


def diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> Diff:
    """Differences from ``a`` to ``b``, recursing into objects by dotted path."""
    result = Diff()
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        if key not in b:
            result.removed.append(DiffEntry(path, old=a[key]))
        elif key not in a:
            result.added.append(DiffEntry(path, new=b[key]))
        elif isinstance(a[key], Mapping) and isinstance(b[key], Mapping):
            inner = diff(a[key], b[key], prefix=f"{path}.")
            result.added.extend(inner.added)
            result.removed.extend(inner.removed)
            result.changed.extend(inner.changed)
        elif not values_equal(a[key], b[key]):
            result.changed.append(DiffEntry(path, a[key], b[key], _text_diff(path, a[key], b[key])))
    return result


def apply_diff(a: Mapping[str, Any], d: Diff) -> dict[str, Any]:
    """Patch ``a`` with ``d``; ``apply_diff(a, diff(a, b)) == b``."""
    out = json.loads(canonical_json(a)) if a else {}

    def parent(path: str) -> tuple[dict[str, Any], str]:
        *heads, last = path.split(".")
        node = out
        for head in heads:
            node = node.setdefault(head, {})
        return node, last

    for entry in d.removed:
        node, last = parent(entry.path)
        node.pop(last, None)
    for entry in [*d.changed, *d.added]:
        node, last = parent(entry.path)
        node[last] = entry.new
    return out
