"""Secret values out of what observers see.

A schema option marked ``secret`` keeps its value from observer tokens: every
response an observer gets (reads, diffs, history, the admin feed) is copied and
each secret value replaced by `REDACTED`. Hashes stay true, so an observer can
still tell that a config changed. Other roles see values as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from genconf import model
from genconf.v1 import controller_pb2, history_pb2, types_pb2

REDACTED: Final = "<redacted>"

SecretKeys = Callable[[str], frozenset[str]]  # application -> its secret keys


def redacted(message: Message, secret_keys: SecretKeys) -> Message:
    """A copy of ``message`` with every secret value replaced (shared messages stay intact)."""
    out = type(message)()
    out.CopyFrom(message)
    _walk(out, secret_keys)
    return out


def _hide(value: struct_pb2.Value) -> None:
    value.string_value = REDACTED


def _struct(struct: struct_pb2.Struct, keys: frozenset[str]) -> None:
    for key in keys:
        if key in struct.fields:
            _hide(struct.fields[key])


def _entries(entries: Any, keys: frozenset[str]) -> None:
    for entry in entries:
        if entry.path.split(".", 1)[0] in keys:
            if entry.has_old:
                _hide(entry.old)
            if entry.has_new:
                _hide(entry.new)
            entry.text_diff = ""


def _walk(message: Message, secret_keys: SecretKeys) -> None:
    if isinstance(message, types_pb2.Application):
        keys = secret_keys(message.name)
        _struct(message.settings, keys)
        _struct(message.effective, keys)
        return
    if isinstance(message, types_pb2.Config):
        keys = secret_keys(message.application)
        if keys:
            _struct(message.config, keys)
            config = json.loads(message.config_json or "{}")
            for key in keys & config.keys():
                config[key] = REDACTED
            message.config_json = model.canonical_json(config).decode()
        return
    if isinstance(message, types_pb2.Version):
        _struct(message.settings, secret_keys(message.application))
        return
    if isinstance(message, types_pb2.ApplicationChanges):
        keys = secret_keys(message.application)
        for change in message.changes:
            if change.key in keys:
                if change.HasField("value"):
                    _hide(change.value)
                if change.has_from:
                    _hide(getattr(change, "from"))
        return
    if isinstance(message, types_pb2.ApplicationKeyChanges):
        keys = secret_keys(message.application)
        for change in message.changes:
            if change.key in keys:
                if change.has_from:
                    _hide(getattr(change, "from"))
                if change.has_to:
                    _hide(change.to)
        return
    if isinstance(message, history_pb2.DiffVersionsResponse):
        _entries(message.entries, secret_keys(message.application))
        return
    if isinstance(message, history_pb2.KeyHistoryResponse):
        if message.key in secret_keys(message.application):
            for entry in message.entries:
                if entry.has_value:
                    _hide(entry.value)
        return
    if isinstance(message, controller_pb2.ApplicationDiff):
        _entries(message.entries, secret_keys(message.application))
        for conflict in message.conflicts:
            _walk(conflict, secret_keys)
        return
    if isinstance(message, types_pb2.ConflictDetail):
        if message.key in secret_keys(message.application):
            for name in ("from", "current", "proposed"):
                setattr(message, name, REDACTED)
        return
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.label == field.LABEL_REPEATED:
            for item in value:
                _walk(item, secret_keys)
        else:
            _walk(value, secret_keys)
