"""Branch changes and the effective config: defaults, master and changes combined.

Vocabulary (see DESIGN.md): an application's *schema* gives each key a type and
a charm default; *master* holds only the values an operator set; a branch holds
per-key *changes* ``{op: set|unset, value, from}``. The effective config of a unit
is ``defaults ⊕ master ⊕ changes`` where ``unset`` restores the charm default.

Everything here is a function of its arguments, so the store, the cache and the
tests all compute the same effective configuration, conflicts and key history.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from genconf.domain.schema import OptionSpec, Schema, defaults, option_for
from genconf.domain.values import ABSENT, values_equal
from genconf.errors import ConflictedKey, MismatchedKey


class Op(enum.StrEnum):
    SET = "set"
    UNSET = "unset"


@dataclass(frozen=True)
class Change:
    """A branch's change to one key; ``from_`` is master's value when first touched."""

    op: Op
    value: Any = ABSENT
    from_: Any = ABSENT

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"op": self.op.value}
        if self.value is not ABSENT:
            doc["value"] = self.value
        if self.from_ is not ABSENT:
            doc["from"] = self.from_
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Change:
        return cls(Op(doc["op"]), doc.get("value", ABSENT), doc.get("from", ABSENT))

    @property
    def target(self) -> Any:
        """The value master would hold after this change (ABSENT for unset)."""
        return self.value if self.op is Op.SET else ABSENT


def touch(existing: Change | None, master_value: Any, op: Op, value: Any = ABSENT) -> Change:
    """Record a branch edit; the first touch of a key remembers master's value as ``from``."""
    from_ = existing.from_ if existing is not None else master_value
    return Change(op, value if op is Op.SET else ABSENT, from_)


def effective_config(
    schema: Schema, master: Mapping[str, Any], changes: Mapping[str, Change] | None = None
) -> dict[str, Any]:
    """``defaults ⊕ master ⊕ changes``; an ``unset`` change restores the charm default
    (removes the key when it has none, as every undeclared key of an open schema)."""
    config = defaults(schema)
    for key, value in master.items():
        if option_for(schema, key) is not None:
            config[key] = value
    for key, change in (changes or {}).items():
        spec = option_for(schema, key)
        if spec is None:
            continue
        if change.op is Op.SET:
            config[key] = change.value
        elif spec.default is ABSENT:
            config.pop(key, None)
        else:
            config[key] = spec.default
    return config


def apply_changes(master: Mapping[str, Any], changes: Mapping[str, Change]) -> dict[str, Any]:
    """Master after committing ``changes``: set writes the value, unset removes the key."""
    out = dict(master)
    for key, change in changes.items():
        if change.op is Op.SET:
            out[key] = change.value
        else:
            out.pop(key, None)
    return out


def find_conflicts(
    application: str, master: Mapping[str, Any], changes: Mapping[str, Change]
) -> list[ConflictedKey]:
    """Keys whose master value moved away from the branch's recorded ``from``.

    A key already holding the branch's target is not a conflict: both sides agree.
    """
    conflicts = []
    for key in sorted(changes):
        change = changes[key]
        current = master.get(key, ABSENT)
        if values_equal(current, change.from_) or values_equal(current, change.target):
            continue
        conflicts.append(ConflictedKey(application, key, change.from_, current, change.target))
    return conflicts


def mismatches(
    application: str,
    effective: Mapping[str, Any],
    expected: Mapping[str, Any],
    branch: str = "",
) -> list[MismatchedKey]:
    """Keys whose effective value is not the one a write expects (ABSENT: no value),
    in key order: a per-key check-before-update, as an etcd transaction's compare."""
    out = []
    for key in sorted(expected):
        actual = effective.get(key, ABSENT)
        if not values_equal(actual, expected[key]):
            out.append(MismatchedKey(application, key, expected[key], actual, branch))
    return out


def inverse_changes(changes: Mapping[str, Mapping[str, Any]]) -> dict[str, Change]:
    """The branch-style changes that undo a generation's ``{key: {from?, to?}}``.

    Each inverse change expects master to still hold ``to`` (its ``from_``) and puts
    back ``from``, so `find_conflicts` checks a revert exactly like a commit.
    """
    out = {}
    for key, ft in changes.items():
        before = ft.get("from", ABSENT)
        op = Op.UNSET if before is ABSENT else Op.SET
        out[key] = Change(op, before, ft.get("to", ABSENT))
    return out


@dataclass(frozen=True)
class KeyValueAt:
    """A key's effective value from one version on (``value`` ABSENT: no value at all)."""

    version: int
    value: Any
    is_default: bool


def key_history(
    spec: OptionSpec, versions: Iterable[tuple[int, Mapping[str, Any]]], key: str
) -> list[KeyValueAt]:
    """The versions (oldest first, as given) where ``key``'s effective value changed.

    The first version given always opens the list: it is where the value starts.
    A change back to the default is a change; re-setting the default explicitly
    is not (units see the same value).
    """
    out: list[KeyValueAt] = []
    for version, settings in versions:
        is_default = key not in settings
        value = spec.default if is_default else settings[key]
        if not out or not values_equal(out[-1].value, value):
            out.append(KeyValueAt(version, value, is_default))
    return out
