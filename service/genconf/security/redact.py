"""Secret values, and whatever derives from them, out of what observers see.

A schema option marked ``secret`` keeps its value from observer tokens: every
response an observer gets (reads, diffs, history, the admin feed) is copied and
each secret value replaced by `REDACTED`. Other roles see values as they are.

**Hashes.** A config hash is the sha256 of the canonical JSON of the effective
config: with every other value in view, a redacted 4-digit PIN is one of 10,000
candidates, and hashing them all takes milliseconds. So every hash an observer
gets (`HASHED`: configs, bookmarks, applied reports, branch applied views) is
replaced by ``HMAC-SHA256(server key, hash)``, the key being a secret kept in
MongoDB and shared by every replica (`genconf.store.store.Store.observer_key`). That
keyed hash cannot be tested against guesses without the key, yet an observer can
still tell that a config changed (a rotated secret changes it too) and that two
units, or a unit's applied report and its config, hold the same config. A hash
over the redacted config would keep neither: a secret's change would not show,
and an agent's report (a hash the agent sent) could not be mapped at all. Without
a key (none loaded) hashes are blanked: redaction fails closed.

**Which keys.** The current schema gives ``public_keys``: the non-secret keys of
each application, None when it does not exist. History outlives the schema: a
version or generation may hold a value of an option dropped from it since, or of
an application removed (and maybe re-created) since. So redaction fails closed:
only values of keys known to be public now are shown; and history is also
redacted by the schema it was written under (``secret_keys`` of versions,
generations, version diffs and key history entries): a key is hidden if it was
secret then OR is not known public now. Records written before ``secret_keys``
was kept carry none, which leaves the current rule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Container, Iterable
from typing import Any, Final

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from genconf.domain import values
from genconf.v1 import agent_pb2, controller_pb2, history_pb2, types_pb2

REDACTED: Final = "<redacted>"
# Every message type with a field ``hash`` holding a config hash, as observers get it.
HASHED: Final = frozenset(
    m.DESCRIPTOR.full_name
    for m in (
        types_pb2.Config,
        types_pb2.AppliedReport,
        types_pb2.UnitApplied,
        agent_pb2.Bookmark,
    )
)

# application -> its non-secret keys; None: no such application (any key may be secret)
PublicKeys = Callable[[str], Container[str] | None]
Hidden = Callable[[str], bool]  # key -> whether its value is hidden


def keyed_hash(key: bytes, hash_: str) -> str:
    """What an observer sees of a config hash: HMAC-SHA256 under the server key, as
    64 hex digits like the hash itself; empty stays empty (no report, no hash)."""
    if not hash_:
        return ""
    return hmac.new(key, hash_.encode(), hashlib.sha256).hexdigest()


def redacted(message: Message, public_keys: PublicKeys, key: bytes | None = None) -> Message:
    """A copy of ``message`` with every value not known to be public replaced and
    every config hash keyed with ``key`` (blanked without one); shared messages
    stay intact."""
    out = type(message)()
    out.CopyFrom(message)
    _walk(out, _Policy(public_keys, key))
    return out


class _Policy:
    def __init__(self, public_keys: PublicKeys, key: bytes | None) -> None:
        self.public_keys = public_keys
        self.key = key

    def hidden(self, application: str, secret_then: Iterable[str] = ()) -> Hidden:
        """Keys of ``application`` whose values are hidden: not known public now, or
        ``secret_then`` (secret under the schema a record was written under)."""
        public = self.public_keys(application)
        if public is None:
            return lambda key: True
        then = frozenset(secret_then)
        if then:
            return lambda key: key in then or key not in public
        return lambda key: key not in public

    def hash(self, hash_: str) -> str:
        return keyed_hash(self.key, hash_) if self.key is not None else ""


def _hide(value: struct_pb2.Value) -> None:
    value.string_value = REDACTED


def _struct(struct: struct_pb2.Struct, hidden: Hidden) -> None:
    for key in _hidden_keys(struct.fields, hidden):
        _hide(struct.fields[key])


def _hidden_keys(keys: Iterable[str], hidden: Hidden) -> list[str]:
    return [key for key in keys if hidden(key)]


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def _entries(entries: Any, hidden: Hidden) -> None:
    """Diff entries of hidden keys redacted. An object value's entries name the
    paths inside it, which are part of the secret too: they become one entry for
    the key, ``changed`` from one redacted value to another."""
    nested = {_top(e.path) for e in entries if "." in e.path and hidden(_top(e.path))}
    for entry in entries:
        if hidden(_top(entry.path)):
            if entry.has_old:
                _hide(entry.old)
            if entry.has_new:
                _hide(entry.new)
            entry.text_diff = ""
    if not nested:
        return
    kept = [e for e in entries if not ("." in e.path and _top(e.path) in nested)]
    for key in sorted(nested):
        merged = types_pb2.DiffEntry(path=key, kind="changed", has_old=True, has_new=True)
        _hide(merged.old)
        _hide(merged.new)
        # Into the ``changed`` group (entries come added, removed, changed), by path.
        at = next(
            (i for i, e in enumerate(kept) if e.kind == "changed" and e.path > key), len(kept)
        )
        kept.insert(at, merged)
    copies = []
    for entry in kept:  # copied before the field they live in is cleared
        copy = types_pb2.DiffEntry()
        copy.CopyFrom(entry)
        copies.append(copy)
    del entries[:]
    entries.extend(copies)


def _walk(message: Message, policy: _Policy) -> None:
    if message.DESCRIPTOR.full_name in HASHED:
        message.hash = policy.hash(message.hash)  # type: ignore[attr-defined]
    if isinstance(message, types_pb2.Application):
        # Its own schema counts too: the admin feed replays past states of it.
        hidden = policy.hidden(message.name, (k for k, o in message.schema.items() if o.secret))
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
            message.config_json = values.canonical_json(config).decode()
        return
    if isinstance(message, types_pb2.Version):
        _struct(message.settings, policy.hidden(message.application, message.secret_keys))
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
        hidden = policy.hidden(message.application, message.secret_keys)
        for change in message.changes:
            if hidden(change.key):
                if change.has_from:
                    _hide(getattr(change, "from"))
                if change.has_to:
                    _hide(change.to)
        return
    if isinstance(message, history_pb2.DiffVersionsResponse):
        _entries(message.entries, policy.hidden(message.application, message.secret_keys))
        return
    if isinstance(message, history_pb2.KeyHistoryResponse):
        now = policy.hidden(message.application)(message.key)
        for entry in message.entries:
            if (now or entry.secret) and entry.has_value:
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
