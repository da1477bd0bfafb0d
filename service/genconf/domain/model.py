"""Pure domain rules of genconf: no I/O, no clocks, no tasks.

Everything here is a function of its arguments, so the store, the cache and the
tests all compute the same effective configuration, conflicts and diffs.

Vocabulary (see DESIGN.md): an application's *schema* gives each key a type and
a charm default; *master* holds only the values an operator set; a branch holds
per-key *changes* ``{op: set|unset, value, from}``. The effective config of a unit
is ``defaults ⊕ master ⊕ changes`` where ``unset`` restores the charm default.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from genconf.domain.values import ABSENT, show_value
from genconf.errors import ConflictedKey, InvalidArgument

__all__ = ["ABSENT", "show_value"]  # re-exported: the domain's vocabulary

# ---------------------------------------------------------------------------
# Names

APP_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")
BRANCH_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
KEY_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}\Z")
# The largest unit number: nine digits, so a unit name stays short and its number
# fits every integer type a client may parse it into. `parse_unit_name` and
# `check_unit_numbers` both follow it.
MAX_UNIT_NUMBER: Final = 999_999_999
UNIT_NAME_RE: Final = re.compile(
    rf"^([a-z][a-z0-9-]{{0,62}})/(0|[1-9][0-9]{{0,{len(str(MAX_UNIT_NUMBER)) - 1}}})\Z"
)


def validate_app_name(name: str) -> str:
    if not isinstance(name, str) or not APP_NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid application name {name!r}: use 1-63 characters, a lowercase letter "
            "first, then lowercase letters, digits or '-'"
        )
    return name


def validate_branch_name(name: str) -> str:
    if not isinstance(name, str) or not BRANCH_NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid branch name {name!r}: use 1-63 characters: lowercase letters, "
            "digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidArgument(
            f"invalid config key {key!r}: use 1-128 characters: letters, digits, '_' or "
            "'-', not starting with a digit or '-'"
        )
    return key


def parse_unit_name(name: str) -> tuple[str, int]:
    """Split ``app/N`` into its application and number."""
    match = UNIT_NAME_RE.match(name) if isinstance(name, str) else None
    if match is None:
        raise InvalidArgument(
            f"invalid unit name {name!r}: use <application>/<number>, e.g. 'web/0'"
        )
    return match.group(1), int(match.group(2))


def unit_name(application: str, number: int) -> str:
    return f"{application}/{number}"


def check_unit_numbers(application: str, numbers: Iterable[int]) -> None:
    """Refuse unit numbers `parse_unit_name` would not accept, before any unit is
    made: a unit no call could address afterwards is worse than a refused add."""
    too_large = sorted(n for n in numbers if not 0 <= n <= MAX_UNIT_NUMBER)
    if too_large:
        raise InvalidArgument(
            f"unit number {too_large[-1]} of {application!r} is out of range: unit numbers "
            f"go from 0 to {MAX_UNIT_NUMBER} ({application}/{MAX_UNIT_NUMBER} is the last unit "
            "an application can have)"
        )


# ---------------------------------------------------------------------------
# Schema and values

MAX_VALUE_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 32
MAX_KEYS: Final = 1000
# Config values cross the gRPC API as `google.protobuf.Value`, whose numbers are
# doubles: an integer is exact there, and cannot be told from its neighbours'
# rounding, only up to 2^53 - 1 in magnitude (JSON's "safe integers", RFC 7493).
# So every integer in a value, at the top or nested, lies within ±MAX_EXACT_INT,
# and so does every number inside an object or list value (a double that large is
# an integer, maybe a rounded one). Only a `float` option holds larger numbers.
MAX_EXACT_INT: Final = 2**53 - 1


class ValueType(enum.StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOLEAN = "boolean"
    OBJECT = "object"
    LIST = "list"


@dataclass(frozen=True)
class OptionSpec:
    """One key of an application's schema. ``default`` is ABSENT when there is none."""

    type: ValueType
    default: Any = ABSENT
    description: str = ""
    secret: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type.value, "description": self.description}
        if self.default is not ABSENT:
            doc["default"] = self.default
        if self.secret:
            doc["secret"] = True
        return doc


Schema = Mapping[str, OptionSpec]

_TYPE_ALIASES: Final = {"str": "string", "integer": "int", "bool": "boolean", "dict": "object"}


def parse_schema(raw: Mapping[str, Any]) -> dict[str, OptionSpec]:
    """Validate a schema given as ``{key: {type, default?, description?, secret?}}``."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument("schema must be a mapping of key -> {type, default, description}")
    if len(raw) > MAX_KEYS:
        raise InvalidArgument(f"schema has {len(raw)} keys; the limit is {MAX_KEYS}")
    schema: dict[str, OptionSpec] = {}
    for key, option in raw.items():
        validate_key(key)
        if not isinstance(option, Mapping):
            raise InvalidArgument(f"schema option {key!r} must be a mapping with a 'type'")
        unknown = set(option) - {"type", "default", "description", "secret"}
        if unknown:
            raise InvalidArgument(
                f"schema option {key!r} has unknown field(s) {sorted(unknown)}; "
                "allowed: type, default, description, secret"
            )
        type_name = _TYPE_ALIASES.get(str(option.get("type")), option.get("type"))
        try:
            value_type = ValueType(type_name)
        except ValueError:
            raise InvalidArgument(
                f"schema option {key!r} has type {option.get('type')!r}; use one of "
                + ", ".join(t.value for t in ValueType)
            ) from None
        description = option.get("description", "")
        if not isinstance(description, str):
            raise InvalidArgument(f"schema option {key!r}: description must be a string")
        secret = option.get("secret", False)
        if not isinstance(secret, bool):
            raise InvalidArgument(f"schema option {key!r}: secret must be true or false")
        spec = OptionSpec(value_type, ABSENT, description, secret)
        if "default" in option and option["default"] is not None:
            spec = OptionSpec(
                value_type, coerce_value(key, spec, option["default"]), description, secret
            )
        schema[key] = spec
    return schema


def schema_to_doc(schema: Schema) -> dict[str, dict[str, Any]]:
    return {key: spec.to_doc() for key, spec in schema.items()}


def _inexact(key: str, path: str, number: int | float) -> InvalidArgument:
    if isinstance(number, float) and abs(number) < 1e19:
        number = int(number)  # an integral double, most likely sent as an integer
    if path == key:
        where, what = f"value of {key!r} is {show_value(number)}", "integers"
    else:
        where = f"value of {key!r} has {show_value(number)} at {path}"
        what = "numbers inside objects and lists"
    return InvalidArgument(
        f"{where}: {what} must lie within ±{MAX_EXACT_INT} (±(2^53-1)) to cross the API "
        "exactly (its numbers are doubles); give a larger one as a string"
    )


def _check_number(key: str, path: str, value: int | float, nested: bool) -> None:
    """Integers anywhere, and any number inside an object or list, within
    ±MAX_EXACT_INT (see there); floats finite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"value of {key!r} is {value}; only finite numbers are allowed")
        if nested and abs(value) > MAX_EXACT_INT:
            raise _inexact(key, path, value)
    elif abs(value) > MAX_EXACT_INT:
        raise _inexact(key, path, value)


def check_wire_numbers(key: str, value: Any) -> None:
    """What `_check_json` says about numbers, alone: for a client to refuse a value
    the server would refuse, before protobuf rounds it on the way."""
    stack: list[tuple[Any, str, bool]] = [(value, key, False)]
    while stack:
        item, path, nested = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, (int, float)):
            _check_number(key, path, item, nested)
        elif isinstance(item, Mapping):  # reversed: the first offender, as _check_json
            stack.extend(reversed([(v, f"{path}.{k}", True) for k, v in item.items()]))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(v, f"{path}[{i}]", True) for i, v in enumerate(item)]))


def _check_json(key: str, value: Any, depth: int, path: str | None = None) -> None:
    """Only JSON data, bounded depth, finite floats, exact numbers (see
    MAX_EXACT_INT), Mongo-safe object keys."""
    path = key if path is None else path
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"value of {key!r} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        _check_number(key, path, value, depth > 0)
        return
    if isinstance(value, str):
        _check_text(key, value)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or not k or "." in k or k.startswith("$") or "\0" in k:
                raise InvalidArgument(
                    f"value of {key!r} has object key {k!r}: object keys must be non-empty "
                    "strings without '.', NUL or a leading '$'"
                )
            _check_text(key, k)
            _check_json(key, v, depth + 1, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(key, v, depth + 1, f"{path}[{i}]")
        return
    raise InvalidArgument(f"value of {key!r} has unsupported type {type(value).__name__}")


def _check_text(key: str, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"value of {key!r} holds text that is not valid UTF-8 (a lone surrogate)"
        ) from None


def _expect(key: str, spec: OptionSpec, value: Any) -> InvalidArgument:
    return InvalidArgument(
        f"{key!r} is of type {spec.type.value}; got {type(value).__name__} {show_value(value)}"
    )


def coerce_value(key: str, spec: OptionSpec, value: Any) -> Any:
    """Check a typed value (from the API) against its option and normalise it."""
    t = spec.type
    if t is ValueType.STRING:
        if not isinstance(value, str):
            raise _expect(key, spec, value)
    elif t is ValueType.INT:
        if isinstance(value, float) and value.is_integer():
            # protobuf Value carries every number as a double; past MAX_EXACT_INT
            # it may be a rounded integer, refused as one.
            if abs(value) > MAX_EXACT_INT:
                raise _inexact(key, key, value)
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _expect(key, spec, value)
    elif t is ValueType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expect(key, spec, value)
        try:
            value = float(value)
        except OverflowError:
            raise InvalidArgument(
                f"{key!r} is {show_value(value)}, too large for a float"
            ) from None
    elif t is ValueType.BOOLEAN:
        if not isinstance(value, bool):
            raise _expect(key, spec, value)
    elif t is ValueType.OBJECT:
        if not isinstance(value, Mapping):
            raise _expect(key, spec, value)
        _check_json(key, value, 0)
        value = json.loads(canonical_json(value))
    elif t is ValueType.LIST:
        if not isinstance(value, (list, tuple)):
            raise _expect(key, spec, value)
        _check_json(key, value, 0)
        value = json.loads(canonical_json(list(value)))
    _check_json(key, value, 0)
    size = len(canonical_json(value))
    if size > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"value of {key!r} is {size} bytes as JSON; the limit is {MAX_VALUE_BYTES}"
        )
    return value


_TRUE: Final = {"true", "yes", "on", "1"}
_FALSE: Final = {"false", "no", "off", "0"}


def parse_text_value(key: str, spec: OptionSpec, text: str) -> Any:
    """Turn a command-line string into a typed value of the option's type."""
    t = spec.type
    try:
        if t is ValueType.STRING:
            value: Any = text
        elif t is ValueType.INT:
            value = int(text.strip())
        elif t is ValueType.FLOAT:
            value = float(text.strip())
        elif t is ValueType.BOOLEAN:
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(text)
            value = lowered in _TRUE
        else:
            value = json.loads(text)
    except ValueError:
        raise InvalidArgument(
            f"{key!r} is of type {t.value}; cannot read {text!r} as one"
            + (" (give JSON)" if t in (ValueType.OBJECT, ValueType.LIST) else "")
        ) from None
    return coerce_value(key, spec, value)


def check_write_keys(count: int) -> None:
    """One write names at most `MAX_KEYS` keys, those it sets and those it unsets
    together: checked before any key is looked at, so a huge write costs little."""
    if count > MAX_KEYS:
        raise InvalidArgument(
            f"{count} keys in one write (set and unset together); the limit is "
            f"{MAX_KEYS} keys per write: split the change into smaller writes"
        )


def validate_settings(
    schema: Schema, values: Mapping[str, Any], unset: Collection[str] = ()
) -> dict[str, Any]:
    """Check every key is in the schema and every value has the key's type; the
    keys to ``unset`` in the same write count towards the limit and must exist too."""
    check_write_keys(len(values) + len(unset))
    for key in unset:
        require_key(schema, key)
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[key] = coerce_value(key, require_key(schema, key), value)
    return out


def require_key(schema: Schema, key: str) -> OptionSpec:
    spec = schema.get(key)
    if spec is None:
        known = ", ".join(sorted(schema)) or "none"
        raise InvalidArgument(f"unknown config key {key!r}; the schema has: {known}")
    return spec


def defaults(schema: Schema) -> dict[str, Any]:
    return {k: s.default for k, s in schema.items() if s.default is not ABSENT}


# ---------------------------------------------------------------------------
# Branch changes and effective config


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
    """``defaults ⊕ master ⊕ changes``; an ``unset`` change restores the charm default."""
    config = defaults(schema)
    for key, value in master.items():
        if key in schema:
            config[key] = value
    for key, change in (changes or {}).items():
        if key not in schema:
            continue
        if change.op is Op.SET:
            config[key] = change.value
        elif schema[key].default is ABSENT:
            config.pop(key, None)
        else:
            config[key] = schema[key].default
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


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes the hash is taken over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config)).hexdigest()


# ---------------------------------------------------------------------------
# Diff


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


def values_equal(a: Any, b: Any) -> bool:
    """Equality of config values as JSON sees them (1 != 1.0 != true); ABSENT only equals itself."""
    if a is ABSENT or b is ABSENT:
        return a is b
    return type(a) is type(b) and canonical_json(a) == canonical_json(b)


def _text_diff(path: str, old: Any, new: Any) -> str:
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )
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


# ---------------------------------------------------------------------------
# Semantic version labels

SEMVER_RE: Final = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?\Z",
    re.ASCII,
)


class Bump(enum.StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


@dataclass(frozen=True, order=False)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = SEMVER_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidArgument(
                f"invalid version label {text!r}: use MAJOR.MINOR.PATCH, e.g. 1.4.0 "
                "(optionally -prerelease, e.g. 2.0.0-rc.1)"
            )
        return cls(int(match[1]), int(match[2]), int(match[3]), match[4] or "")

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core

    def sort_key(self) -> tuple[Any, ...]:
        # A release sorts after its prereleases; prerelease identifiers compare
        # numerically when numeric, else lexically, as semver.org says.
        pre: tuple[Any, ...] = (1,)
        if self.prerelease:
            pre = (
                0,
                tuple(
                    (0, int(p), "") if p.isdigit() else (1, 0, p)
                    for p in self.prerelease.split(".")
                ),
            )
        return (self.major, self.minor, self.patch, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self.sort_key() < other.sort_key()

    def bump(self, part: Bump) -> SemVer:
        if part is Bump.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if part is Bump.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        if self.prerelease:
            return SemVer(self.major, self.minor, self.patch)
        return SemVer(self.major, self.minor, self.patch + 1)


def next_label(existing: Iterable[str], part: Bump) -> SemVer:
    """The label a bump gives: the first bump of an application is 1.0.0."""
    parsed = [SemVer.parse(label) for label in existing]
    if not parsed:
        return SemVer(1, 0, 0)
    return max(parsed, key=SemVer.sort_key).bump(part)
