"""What a write must satisfy before the store writes anything.

Each public write validates first and raises a `GenconfError` before its
transaction changes a document, so a rejected request leaves the database as it
was. These checks are pure: they look at the request and at documents already read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from genconf.domain import config, patch, schema
from genconf.domain.authorship import Authorship
from genconf.domain.config import Change
from genconf.domain.values import ABSENT, show_value
from genconf.errors import ExpectationFailed, FailedPrecondition, InvalidArgument, VersionMismatch
from genconf.store import limits
from genconf.store.documents import schema_of

MAX_UNITS_PER_CALL: Final = 1000


def check_retention(retain_versions: int | None) -> None:
    if retain_versions is not None and retain_versions < 1:
        raise InvalidArgument(f"retain_versions must be at least 1, not {retain_versions}")


def check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"unit count must be a whole number >= 0, not {count!r}")
    if count > MAX_UNITS_PER_CALL:
        raise InvalidArgument(f"{count} units in one call; the limit is {MAX_UNITS_PER_CALL}")


def parse_bounded_schema(raw: Mapping[str, Any]) -> dict[str, schema.OptionSpec]:
    parsed = schema.parse_schema(raw)
    for key, spec in parsed.items():
        limits.check_text(
            f"the description of option {key!r}", spec.description, limits.MAX_DESCRIPTION_CHARS
        )
    return parsed


def check_application_size(doc: Mapping[str, Any]) -> None:
    limits.check_document(
        f"application {doc['_id']!r} (schema and master settings)",
        doc,
        limits.MAX_APPLICATION_BYTES,
        "Store fewer or smaller values in one application.",
    )


def check_branch_size(doc: Mapping[str, Any]) -> None:
    limits.check_document(
        f"branch {doc['_id']!r} (its staged changes)",
        doc,
        limits.MAX_BRANCH_BYTES,
        "Stage fewer or smaller changes on one branch, or commit it first.",
    )


def check_free_text(author: Authorship, reason: str = "") -> None:
    limits.check_text("reason", reason, limits.MAX_REASON_CHARS)
    limits.check_text("created_by", author.created_by, limits.MAX_NAME_CHARS)
    limits.check_text(
        "created_by (kept as on_behalf_of)", author.on_behalf_of, limits.MAX_NAME_CHARS
    )


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(metadata or {})
    schema.coerce_value("metadata", schema.OptionSpec(schema.ValueType.OBJECT), meta)
    return meta


def check_expected(app: Mapping[str, Any], expected: int | None) -> None:
    if expected is not None and int(app["version"]) != expected:
        raise VersionMismatch(f"application {app['_id']!r}", expected, int(app["version"]))


def set_and_unset(
    values: Mapping[str, Any] | None, unset: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """The keys a config write sets and unsets: at least one, and none both."""
    to_set = dict(values or {})
    to_unset = list(unset)
    if not to_set and not to_unset:
        raise InvalidArgument("nothing to change: give keys to set or unset")
    both = sorted(k for k in to_unset if k in to_set)
    if both:
        raise InvalidArgument(f"key(s) {both} are both set and unset in one write")
    return to_set, to_unset


def fit_schema(app: Mapping[str, Any], settings: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Settings re-validated against the current schema (it may have changed since)."""
    try:
        return schema.validate_settings(schema_of(app), settings)
    except InvalidArgument as exc:
        raise FailedPrecondition(
            f"{what} does not fit application {app['_id']!r}'s current schema: {exc.message}"
        ) from exc


def check_expectations(
    app: Mapping[str, Any],
    expect: Mapping[str, Any] | None,
    changes: Mapping[str, Change] | None = None,
    branch: str = "",
) -> None:
    """Refuse a write unless each expected key holds its value in master's view of
    ``app`` (or, with a branch's ``changes``, the branch's): `ExpectationFailed`."""
    if not expect:
        return
    parsed = schema_of(app)
    expected = schema.validate_expectations(parsed, expect)
    effective = config.effective_config(parsed, app["settings"], changes)
    wrong = config.mismatches(app["_id"], effective, expected, branch)
    if wrong:
        raise ExpectationFailed(wrong)


def patched_value(
    parsed: schema.Schema, key: str, effective: Mapping[str, Any], unified_diff: str
) -> str:
    """``key``'s text after applying ``unified_diff`` to its effective value (no value:
    the empty text, so a diff can create one)."""
    schema.require_key(parsed, key)
    current = effective.get(key, ABSENT)
    if current is ABSENT:
        current = ""
    if not isinstance(current, str):
        raise FailedPrecondition(
            f"{key!r} holds {type(current).__name__} {show_value(current)}; only a string "
            "value takes a patch: set it instead"
        )
    return patch.apply_patch(current, unified_diff, key)
