"""Unit labels (``zone=a``): what a key and a value may look like, and how a label
write changes a unit's labels.

The rules are Kubernetes' (so labels copied from a pod spec fit): a key is a name
of 1-63 characters (letters, digits, '-', '_', '.', a letter or digit at each end)
with an optional DNS-subdomain prefix and '/' (``example.com/tier``); a value is
empty or 1-63 characters of the same kind as a name. A unit holds at most
`MAX_LABELS`, so a unit document stays small.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from genconf.errors import InvalidArgument

MAX_LABELS: Final = 64
MAX_NAME_CHARS: Final = 63
MAX_PREFIX_CHARS: Final = 253
_NAME: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
NAME_RE: Final = re.compile(rf"^{_NAME}\Z")
VALUE_RE: Final = re.compile(rf"^(?:{_NAME})?\Z")
_DNS_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
PREFIX_RE: Final = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*\Z")
NAME_RULE: Final = (
    "1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)


def _shown(text: object) -> str:
    """``text`` as a message quotes it: at most 70 characters of it."""
    shown = repr(text)
    return shown if len(shown) <= 72 else f"{shown[:70]}… ({len(str(text))} characters)"


def validate_label_key(key: str) -> str:
    """``key`` if it is a label key (``tier``, ``example.com/tier``); InvalidArgument otherwise."""
    if not isinstance(key, str):
        raise InvalidArgument(f"invalid label key {_shown(key)}: it must be text")
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= MAX_PREFIX_CHARS and PREFIX_RE.match(prefix)):
        raise InvalidArgument(
            f"invalid label key {_shown(key)}: the prefix before '/' must be a DNS subdomain "
            "(lowercase letters, digits, '-' and '.', at most 253 characters), e.g. "
            "'example.com/tier'"
        )
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid label key {_shown(key)}: the name must be {NAME_RULE}")
    return key


def validate_label_value(key: str, value: str) -> str:
    """``value`` if it may be the value of label ``key``; InvalidArgument otherwise."""
    if not isinstance(value, str) or not VALUE_RE.match(value):
        raise InvalidArgument(
            f"invalid value {_shown(value)} for label {key!r}: use nothing, or {NAME_RULE}"
        )
    return value


def relabelled(
    current: Mapping[str, str], set: Mapping[str, str], remove: Iterable[str]
) -> dict[str, str]:
    """A unit's labels after a label write: ``set`` put on, ``remove`` taken off (a key
    it does not have is no error, as with ``kubectl label``). Everything is checked
    first; a key both set and removed, or more than `MAX_LABELS`, is refused."""
    removed = list(remove)
    for key, value in set.items():
        validate_label_key(key)
        validate_label_value(key, value)
    for key in removed:
        validate_label_key(key)
    both = sorted(frozenset(set) & frozenset(removed))
    if both:
        raise InvalidArgument(
            f"label(s) {', '.join(both)} are both set and removed: say which you mean"
        )
    if not set and not removed:
        raise InvalidArgument("give labels to set (KEY=VALUE) or to remove (KEY-)")
    labels = {k: v for k, v in current.items() if k not in removed}
    labels.update(set)
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(
            f"a unit holds at most {MAX_LABELS} labels; this write would leave {len(labels)}"
        )
    return dict(sorted(labels.items()))
