"""Secret values out of what observers see.

A schema option marked ``secret`` keeps its value from observer tokens: every
response an observer gets (reads, diffs, history, the admin feed) is copied and
each secret value replaced by `REDACTED`. Hashes stay true, so an observer can
still tell that a config changed. Other roles see values as they are.

Which keys may be shown comes from the current schema, as ``public_keys``: the
non-secret keys of each application, None when it does not exist. History
outlives the schema: a version or generation may hold a value of an option that
has since been dropped from it, or of an application removed since. So redaction
fails closed: only values of keys known to be public are shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from genconf import model
from genconf.v1 import controller_pb2, history_pb2, types_pb2

REDACTED: Final = "<redacted>"

# application -> its non-secret keys; None: no such application (any key may be secret)
PublicKeys = Callable[[str], frozenset[str] | None]
Hidden = Callable[[str], bool]  # key -> whether its value is hidden


def redacted(message: Message, public_keys: PublicKeys) -> Message:
    """A copy of ``message`` with every value not known to be public replaced
    (shared messages stay intact)."""
    out = type(message)()
    out.CopyFrom(message)
    _walk(out, _Policy(public_keys))
    return out


class _Policy:
    def __init__(self, public_keys: PublicKeys) -> None:
        self.public_keys = public_keys

    def hidden(self, application: str) -> Hidden:
        public = self.public_keys(application)
        if public is None:
            return lambda key: True
        return lambda key: key not in public


def _hide(value: struct_pb2.Value) -> None:
    value.string_value = REDACTED


def _struct(struct: struct_pb2.Struct, hidden: Hidden) -> None:
    for key in _hidden_keys(struct.fields, hidden):
        _hide(struct.fields[key])


def _hidden_keys(keys: Iterable[str], hidden: Hidden) -> list[str]:
    return [key for key in keys if hidden(key)]


def _entries(entries: Any, hidden: Hidden) -> None:
    for entry in entries:
        if hidden(entry.path.split(".", 1)[0]):
            if entry.has_old:
                _hide(entry.old)
            if entry.has_new:
                _hide(entry.new)
            entry.text_diff = ""


def _walk(message: Message, policy: _Policy) -> None:
    if isinstance(message, types_pb2.Application):
        hidden = policy.hidden(message.name)
        _struct(message.settings, hidden)
        _struct(message.effective, hidden)
        for key in _hidden_keys(message.schema, hidden):
            # A secret's default is as secret as its value (the effective config shows it).
            if message.schema[key].HasField("default"):
                _hide(message.schema[key].default)
        return
    if isinstance(message, types_pb2.Config):
        keys = _hidden_keys(message.config.fields, policy.hidden(message.application))
        if keys:  # config and config_json hold the same keys
            for key in keys:
                _hide(message.config.fields[key])
            config = json.loads(message.config_json or "{}")
            for key in keys:
                config[key] = REDACTED
            message.config_json = model.canonical_json(config).decode()
        return
    if isinstance(message, types_pb2.Version):
        _struct(message.settings, policy.hidden(message.application))
        return
    if isinstance(message, types_pb2.ApplicationChanges):
        hidden = policy.hidden(message.application)
        for change in message.changes:
            if hidden(change.key):
                if change.HasField("value"):
                    _hide(change.value)
                if change.has_from:
                    _hide(getattr(change, "from"))
        return
    if isinstance(message, types_pb2.ApplicationKeyChanges):
        hidden = policy.hidden(message.application)
        for change in message.changes:
            if hidden(change.key):
                if change.has_from:
                    _hide(getattr(change, "from"))
                if change.has_to:
                    _hide(change.to)
        return
    if isinstance(message, history_pb2.DiffVersionsResponse):
        _entries(message.entries, policy.hidden(message.application))
        return
    if isinstance(message, history_pb2.KeyHistoryResponse):
        if policy.hidden(message.application)(message.key):
            for entry in message.entries:
                if entry.has_value:
                    _hide(entry.value)
        return
    if isinstance(message, controller_pb2.ApplicationDiff):
        _entries(message.entries, policy.hidden(message.application))
        for conflict in message.conflicts:
            _walk(conflict, policy)
        return
    if isinstance(message, types_pb2.ConflictDetail):
        if policy.hidden(message.application)(message.key):
            for name in ("from", "current", "proposed"):
                setattr(message, name, REDACTED)
        return
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for item in value:
                _walk(item, policy)
        else:
            _walk(value, policy)
