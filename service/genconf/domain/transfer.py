"""The export format, version 1 (docs/export-format.md): its records, their canonical
JSON, and every check a record passes on its own.

An export is a stream of records, one JSON object each: the header
(``genconf-export``) first, then applications, units, versions, branches and
generations, and the ``end`` record with their counts last. Each record is
validated at the edge, strictly (pydantic, no coercion, unknown fields refused):
names by `genconf.domain.names`, schemas by `genconf.domain.schema.parse_schema`,
an application's settings against its schema, history values as JSON data
genconf could have stored. What needs several records (a unit's application, a
version's generation) is the importer's to check (`genconf.store.transfer_import`).

Canonical JSON: the fields of a record in the order of its model below, every
nested object's keys sorted, no whitespace, UTF-8, times as RFC 3339 UTC with
milliseconds. The same model state gives the same bytes, so
``export(import(export(x))) == export(x)``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from genconf.domain import names, schema, semver
from genconf.domain.cohorts import Cohort
from genconf.domain.labels import MAX_LABELS, validate_label_key, validate_label_value
from genconf.errors import InvalidArgument

FORMAT: Final = 1
HEADER: Final = "genconf-export"
# A record's JSON text is at most this long (a generation, the largest record, is
# at most 12 MiB as BSON): the importer never holds more than one such text.
MAX_RECORD_CHARS: Final = 32 * 1024 * 1024
UID_RE: Final = re.compile(r"^(?:[0-9a-f]{32})?\Z")  # "" for documents older than uids
GENERATION_KIND_RE: Final = re.compile(r"^[a-z][a-z_-]{0,31}\Z")
TIME_RE: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z\Z", re.ASCII
)
MAX_ID: Final = 2**63 - 1  # generation ids and numbers are int64 in MongoDB
SHOWN_ERRORS: Final = 5  # a record's validation errors named in one message


class Kind(enum.StrEnum):
    """A record's ``record`` field."""

    HEADER = HEADER
    APPLICATION = "application"
    UNIT = "unit"
    VERSION = "version"
    BRANCH = "branch"
    GENERATION = "generation"
    END = "end"


# -- times -----------------------------------------------------------------------------


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds (what MongoDB keeps): ``2024-05-01T12:00:00.250Z``."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> dt.datetime:
    """The inverse of `format_time`; any other form is refused (ValueError)."""
    match = TIME_RE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a time as RFC 3339 UTC with milliseconds, e.g. "
            "2024-05-01T12:00:00.250Z"
        )
    y, mo, d, h, mi, s, ms = (int(g) for g in match.groups())
    try:
        return dt.datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=dt.UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None


def _time(value: Any) -> Any:
    """A time from JSON text, or from MongoDB (an aware datetime, kept to milliseconds)."""
    if isinstance(value, str):
        return parse_time(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a time must carry its time zone")
        utc = value.astimezone(dt.UTC)
        return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    raise ValueError(f"expected a time as text, e.g. 2024-05-01T12:00:00.250Z, not {value!r}")


# -- JSON values --------------------------------------------------------------------------


def check_json(value: Any, nested: bool = False) -> Any:
    """``value`` if it is JSON data genconf stores (as `schema.coerce_value` allows at
    write time): finite numbers, integers anywhere and any number inside an object
    or list within ±(2^53-1), at most `schema.MAX_DEPTH` levels, object keys
    non-empty without '.', NUL or a leading '$'; else ValueError naming the path."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1 if nested else 0)]
    while stack:
        item, path, depth = stack.pop()
        where = f" at {path}" if path else ""
        if depth > schema.MAX_DEPTH:
            raise ValueError(f"nested deeper than {schema.MAX_DEPTH} levels{where}")
        if item is None or isinstance(item, (bool, str)):
            if isinstance(item, str):
                _utf8(item, where)
            continue
        if isinstance(item, int):
            if abs(item) > schema.MAX_EXACT_INT:
                raise ValueError(f"integer {item}{where} is beyond ±(2^53-1)")
        elif isinstance(item, float):
            if not math.isfinite(item) or (depth > 0 and abs(item) > schema.MAX_EXACT_INT):
                raise ValueError(f"number {item}{where} is not finite or beyond ±(2^53-1)")
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str) or not k or "." in k or k[0] == "$" or "\0" in k:
                    raise ValueError(
                        f"object key {k!r}{where}: keys are non-empty text without '.', "
                        "NUL or a leading '$'"
                    )
                _utf8(k, where)
                stack.append((v, f"{path}.{k}" if path else k, depth + 1))
        else:
            raise ValueError(f"{type(item).__name__}{where} is not JSON data")
    return value


def _utf8(text: str, where: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(f"text{where} is not valid UTF-8 (a lone surrogate)") from None


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        try:
            check_json(value)
        except ValueError as exc:
            raise ValueError(f"value of {key!r}: {exc}") from None
    return values


def _nested_json(values: dict[str, Any]) -> dict[str, Any]:
    check_json(values)
    return values


# -- field types ----------------------------------------------------------------------


def _rule(check: Callable[[Any], object]) -> AfterValidator:
    """A genconf name rule as a pydantic check (its InvalidArgument as ValueError)."""

    def validate(value: Any) -> Any:
        try:
            check(value)
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None
        return value

    return AfterValidator(validate)


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def validate(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(validate)


def _label(text: str) -> str:
    try:
        normal = str(semver.SemVer.parse(text))
    except InvalidArgument as exc:
        raise ValueError(exc.message) from None
    if normal != text:
        raise ValueError(f"label {text!r} is written {normal!r} in an export")
    return text


AppName = Annotated[str, _rule(names.validate_app_name)]
BranchName = Annotated[str, _rule(names.validate_branch_name)]
UnitName = Annotated[str, _rule(names.parse_unit_name)]
Key = Annotated[str, _rule(names.validate_key)]
Uid = Annotated[str, _pattern(UID_RE, "a uid (32 lowercase hex digits)")]
Label = Annotated[str, AfterValidator(_label)]
Time = Annotated[dt.datetime, BeforeValidator(_time), PlainSerializer(format_time)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Values = Annotated[dict[Key, Any], AfterValidator(_json_values)]
Metadata = Annotated[dict[str, Any], AfterValidator(_nested_json)]
# {app: {key: {...}}}: a branch's staged changes, a generation's from/to per key.
PerKey = dict[AppName, dict[Key, dict[str, Any]]]


def _entries(
    changes: PerKey, allowed: frozenset[str], check: Callable[[dict[str, Any]], None]
) -> None:
    for app, keys in changes.items():
        for key, entry in keys.items():
            where = f"{app}.{key}"
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise ValueError(
                    f"{where} has unknown field(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
                )
            try:
                for name in ("value", "from", "to"):
                    if name in entry:
                        check_json(entry[name])
                check(entry)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None


# -- records ------------------------------------------------------------------------------


class Record(BaseModel):
    """A record of format 1: strict types, no unknown field, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)
    # Fields added to format 1 later: left out of the text when empty, so a record
    # from before them encodes to the bytes it was read from.
    omit_when_empty: ClassVar[frozenset[str]] = frozenset()


class Header(Record):
    record: Literal["genconf-export"]
    format: int
    exported_at: Time
    applications: list[AppName] | None  # the export's scope (None: the whole model)


class ApplicationRecord(Record):
    record: Literal["application"]
    name: AppName
    uid: Uid
    charm: str
    version: Id
    next_unit: Annotated[int, Field(ge=0, le=names.MAX_UNIT_NUMBER + 1)]
    created_at: Time
    updated_at: Time
    schema_: dict[str, Any] = Field(alias="schema")
    settings: dict[str, Any]

    @field_validator("schema_")
    @classmethod
    def _schema(cls, raw: dict[str, Any]) -> dict[str, Any]:
        try:
            return schema.schema_to_doc(schema.parse_schema(raw))
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None

    @field_validator("settings")
    @classmethod
    def _settings(cls, settings: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Master holds only values that fit the schema (stored in its types)."""
        if "schema_" not in info.data:
            return settings  # the schema's own error is reported
        parsed = schema.parse_schema(info.data["schema_"])
        try:
            return {
                key: schema.coerce_value(key, schema.require_key(parsed, key), value)
                for key, value in settings.items()
            }
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None


class UnitRecord(Record):
    record: Literal["unit"]
    name: UnitName
    uid: Uid
    application: AppName
    application_uid: Uid
    number: Annotated[int, Field(ge=0, le=names.MAX_UNIT_NUMBER)]
    branch: BranchName | None
    labels: dict[str, str] = Field(default_factory=dict)  # absent: none

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"labels"})

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_LABELS:
            raise ValueError(f"a unit holds at most {MAX_LABELS} labels, not {len(labels)}")
        try:
            for key, value in labels.items():
                validate_label_value(validate_label_key(key), value)
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None
        return labels

    @model_validator(mode="after")
    def _named(self) -> UnitRecord:
        if self.name != names.unit_name(self.application, self.number):
            raise ValueError(
                f"unit {self.name!r} must be named {self.application}/{self.number} "
                "(its application and number)"
            )
        return self


class VersionRecord(Record):
    record: Literal["version"]
    application: AppName
    version: Id
    previous_version: Count
    generation: Id | None
    timestamp: Time
    labels: list[Label]
    reason: str
    created_by: str
    on_behalf_of: str
    authenticated: bool
    metadata: Metadata
    secret_keys: list[Key]
    settings: Values

    @model_validator(mode="after")
    def _ordered(self) -> VersionRecord:
        if self.previous_version >= self.version:
            raise ValueError(
                f"previous_version {self.previous_version} is not before version {self.version}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels {self.labels} name the same label twice")
        return self


def _change(entry: dict[str, Any]) -> None:
    op = entry.get("op")
    if op == "set" and "value" not in entry:
        raise ValueError("a set change needs its value")
    if op == "unset" and "value" in entry:
        raise ValueError("an unset change has no value")
    if op not in ("set", "unset"):
        raise ValueError(f"op must be set or unset, not {op!r}")


class BranchRecord(Record):
    record: Literal["branch"]
    name: BranchName
    created_at: Time
    created_by: str
    on_behalf_of: str
    authenticated: bool
    track_applications: list[AppName]
    changes: PerKey
    # {app: {percent, selector}}: the stable cohorts it tracks (absent: none).
    cohorts: dict[AppName, dict[str, Any]] = Field(default_factory=dict)
    expires_at: Time | None = None  # when the server aborts it (absent: never)

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"cohorts", "expires_at"})

    @field_validator("changes")
    @classmethod
    def _changes(cls, changes: PerKey) -> PerKey:
        _entries(changes, frozenset({"op", "value", "from"}), _change)
        return changes

    @field_validator("cohorts")
    @classmethod
    def _cohorts(cls, cohorts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for app, spec in cohorts.items():
            if set(spec) != {"percent", "selector"}:
                raise ValueError(f"the cohort of {app!r} must hold percent and selector only")
            percent, selector = spec["percent"], spec["selector"]
            if not isinstance(percent, float) or not isinstance(selector, str):
                raise ValueError(f"the cohort of {app!r}: percent is a number, selector a text")
            try:
                canonical = Cohort.of(percent, selector).to_doc()
            except InvalidArgument as exc:
                raise ValueError(f"the cohort of {app!r}: {exc.message}") from None
            if canonical != spec:
                raise ValueError(f"the cohort of {app!r} must read {canonical}, as stored")
        return cohorts


class GenerationRecord(Record):
    record: Literal["generation"]
    id: Id
    kind: Annotated[str, _pattern(GENERATION_KIND_RE, "a generation kind (commit, set, ...)")]
    branch: BranchName | None
    created_at: Time
    created_by: str
    on_behalf_of: str
    authenticated: bool
    reason: str
    versions: dict[AppName, Id]
    secret_keys: dict[AppName, list[Key]]
    # Absent in exports made before generations kept them (as uids may be "").
    application_uids: dict[AppName, Uid] = Field(default_factory=dict)
    changes: PerKey

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"application_uids"})

    @field_validator("changes")
    @classmethod
    def _changes(cls, changes: PerKey) -> PerKey:
        _entries(changes, frozenset({"from", "to"}), lambda entry: None)
        return changes

    @property
    def applications(self) -> list[str]:
        """Every application the generation names (some may be gone since)."""
        names = set(self.changes) | set(self.versions) | set(self.secret_keys)
        return sorted(names | set(self.application_uids))


class EndRecord(Record):
    record: Literal["end"]
    applications: Count
    units: Count
    versions: Count
    branches: Count
    generations: Count


BodyRecord = ApplicationRecord | UnitRecord | VersionRecord | BranchRecord | GenerationRecord
AnyRecord = Header | BodyRecord | EndRecord

MODELS: Final[Mapping[Kind, type[Record]]] = {
    Kind.HEADER: Header,
    Kind.APPLICATION: ApplicationRecord,
    Kind.UNIT: UnitRecord,
    Kind.VERSION: VersionRecord,
    Kind.BRANCH: BranchRecord,
    Kind.GENERATION: GenerationRecord,
    Kind.END: EndRecord,
}
# What the end record counts, by the kind of record it counts.
COUNTED: Final[Mapping[Kind, str]] = {
    Kind.APPLICATION: "applications",
    Kind.UNIT: "units",
    Kind.VERSION: "versions",
    Kind.BRANCH: "branches",
    Kind.GENERATION: "generations",
}


# -- canonical JSON -----------------------------------------------------------------------


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def encode(record: Record) -> str:
    """The record's canonical JSON text (one line)."""
    fields = record.model_dump(by_alias=True)
    return json.dumps(
        {
            name: _sorted(value)
            for name, value in fields.items()
            if value or name not in record.omit_when_empty
        },
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def kind_of(record: Record) -> Kind:
    return Kind(record.record)  # type: ignore[attr-defined]


# -- parsing ------------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str) -> Any:
    """JSON text as data: duplicate keys and NaN/Infinity refused (ValueError)."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def describe(data: Mapping[str, Any]) -> str:
    """How a record is named in a message: ``version web@3``, ``unit 'web/0'``."""
    kind = data.get("record")
    if kind == Kind.HEADER:
        return "header"
    if kind == Kind.VERSION:
        return f"version {data.get('application')}@{data.get('version')}"
    if kind == Kind.GENERATION:
        return f"generation {data.get('id')}"
    if kind in (Kind.APPLICATION, Kind.UNIT, Kind.BRANCH) and isinstance(data.get("name"), str):
        return f"{kind} {data['name']!r}"
    return str(kind)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _problem(error: Mapping[str, Any], kind: str) -> str:
    where = _field(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r} (a {kind} record of format {FORMAT} has no such field)"
    if error["type"] == "missing":
        return f"missing field {where!r}"
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    return f"field {where!r}: {message}" if where else message


def _invalid(number: int, data: Mapping[str, Any], exc: ValidationError) -> InvalidArgument:
    errors = exc.errors(include_url=False)
    problems = [_problem(e, str(data.get("record"))) for e in errors[:SHOWN_ERRORS]]
    more = f" (and {len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
    return InvalidArgument(f"record {number} ({describe(data)}): " + "; ".join(problems) + more)


def check_format(number: int, data: Mapping[str, Any]) -> None:
    """The header's format version, read before anything else of the header: a
    newer format is refused as such, not for the fields it added."""
    version = data.get("format")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidArgument(
            f"record {number} (header): field 'format' must be the format version, "
            f"{FORMAT}, not {version!r}"
        )
    if version != FORMAT:
        raise InvalidArgument(
            f"record {number} (header): unknown format version {version}; this genconf "
            f"reads format {FORMAT} only: import with the genconf that exported it, or "
            "export again with this one"
        )


def parse_record(number: int, text: str) -> AnyRecord:
    """Record number ``number`` (1: the header) of an export, validated on its own;
    InvalidArgument naming the record number, the record and the field otherwise."""
    if len(text) > MAX_RECORD_CHARS:
        raise InvalidArgument(
            f"record {number} is {len(text):,} characters of JSON; the limit is "
            f"{MAX_RECORD_CHARS:,} (no valid record is that large)"
        )
    try:
        data = load_json(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"record {number} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"record {number} is a JSON {type(data).__name__}, not an object")
    try:
        kind = Kind(data.get("record"))
    except ValueError:
        raise InvalidArgument(
            f"record {number}: field 'record' is {data.get('record')!r}; a record is one of "
            + ", ".join(k.value for k in Kind)
        ) from None
    if kind is Kind.HEADER:
        check_format(number, data)
    try:
        return MODELS[kind].model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise _invalid(number, data, exc) from None


def record_from(kind: Kind, fields: Mapping[str, Any]) -> AnyRecord:
    """A record built from stored fields (export); a field out of format 1 is a
    ValidationError naming it, never a record import would refuse."""
    return MODELS[kind].model_validate({"record": kind.value, **fields})  # type: ignore[return-value]


def check_labels_grow(application: str, labelled: list[tuple[int, list[str]]]) -> None:
    """Labels grow with versions: every label of a version is above every label of
    the versions before it (``labelled``: (version, labels), by version)."""
    highest: tuple[int, semver.SemVer] | None = None
    for version, labels in labelled:
        parsed = [semver.SemVer.parse(label) for label in labels]
        for label in parsed:
            if highest is not None and label.sort_key() <= highest[1].sort_key():
                raise InvalidArgument(
                    f"label {label} on version {version} of {application!r} is not above "
                    f"label {highest[1]} on version {highest[0]}: labels grow with versions"
                )
        if parsed:
            top = max(parsed, key=semver.SemVer.sort_key)
            highest = (version, top)
