"""Names of applications, branches, units and config keys: what each may look like.

Every name is checked where it enters (the API, the CLI), so the store and the
cache only ever hold names these rules accept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from genconf.errors import InvalidArgument

APP_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")
# A charm name as Juju spells one ("postgresql", "web-v2"), optionally with a
# revision ("web-v2-17") or a store prefix ("ch:postgresql", "local:web").
CHARM_NAME_RE: Final = re.compile(r"^(?:(?:ch|cs|local):)?[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
BRANCH_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
KEY_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}\Z")
# The largest unit number: nine digits, so a unit name stays short and its number
# fits every integer type a client may parse it into. `parse_unit_name` and
# `check_unit_numbers` both follow it.
MAX_UNIT_NUMBER: Final = 999_999_999
UNIT_NAME_RE: Final = re.compile(
    rf"^([a-z][a-z0-9-]{{0,62}})/(0|[1-9][0-9]{{0,{len(str(MAX_UNIT_NUMBER)) - 1}}})\Z"
)


def _checked(name: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise InvalidArgument(f"invalid {what} {name!r}: {rule}")
    return name


def validate_app_name(name: str) -> str:
    rule = "use 1-63 characters, a lowercase letter first, then lowercase letters, digits or '-'"
    return _checked(name, APP_NAME_RE, "application name", rule)


def validate_charm_name(name: str) -> str:
    rule = (
        "use 1-63 lowercase letters and digits in words joined by single '-', a letter "
        "first, optionally after 'ch:', 'cs:' or 'local:' (e.g. 'postgresql', 'web-v2', "
        "'ch:redis')"
    )
    bare = name.partition(":")[2] if isinstance(name, str) and ":" in name else name
    if isinstance(bare, str) and len(bare) > 63:
        raise InvalidArgument(f"invalid charm name {name[:40]!r}… ({len(name)} characters): {rule}")
    return _checked(name, CHARM_NAME_RE, "charm name", rule)


def validate_branch_name(name: str) -> str:
    rule = "use 1-63 characters: lowercase letters, digits, '.', '_' or '-', starting with a "
    return _checked(name, BRANCH_NAME_RE, "branch name", rule + "letter or digit")


def validate_key(key: str) -> str:
    rule = "use 1-128 characters: letters, digits, '_' or '-', not starting with a digit or '-'"
    return _checked(key, KEY_RE, "config key", rule)


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
