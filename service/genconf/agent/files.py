"""The file an agent writes: its formats, their bytes, the hash a file on disk
holds, and the atomic write that makes PATH always hold one complete config."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from genconf.domain import values
from genconf.errors import UsageError

HEADER_RE: Final = re.compile(r"^# genconf unit=(\S+) hash=([0-9a-f]{64})$")


class FileFormat(enum.StrEnum):
    JSON = "json"
    YAML = "yaml"
    ENV = "env"

    @classmethod
    def for_path(cls, path: Path) -> FileFormat:
        """The format a file name says (``.json`` or none, ``.yaml``/``.yml``, ``.env``);
        any other suffix (``web.toml``) is refused rather than filled with JSON."""
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return cls.YAML
        if suffix == ".env":
            return cls.ENV
        if suffix in ("", ".json"):
            return cls.JSON
        raise UsageError(
            f"cannot tell which format to write {path.name} in: genconf writes json, yaml "
            f"and env; pass --format json|yaml|env, or name the file .json, .yaml or .env"
        )


class RenderError(Exception):
    """A config that cannot be put in the file asked for (an env value a shell cannot
    hold, a template that fails): the apply fails and PATH is left as it is."""


def env_name(key: str) -> str:
    """A config key as an environment variable name: ``log-level`` -> ``LOG_LEVEL``,
    ``2fa`` -> ``_2FA`` (a name cannot start with a digit)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    return f"_{name}" if name[:1].isdigit() else name


def env_quote(text: str) -> str:
    """``'debug'``: every value in single quotes, as the README shows, each ``'`` in
    it written ``'\\''``. Inside single quotes a shell takes every byte as it is
    (``$``, backslashes, newlines, any UTF-8), so sourcing gives ``text`` back."""
    return "'" + text.replace("'", "'\\''") + "'"


def env_value(value: Any) -> str:
    """A value as an env file holds it: a string as itself, anything else (numbers,
    booleans, lists, objects) as its JSON with sorted keys."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def env_lines(config: Mapping[str, Any]) -> str:
    """``LOG_LEVEL='debug'``, one line per key in key order. Refused (RenderError):
    two keys that make the same variable, and a NUL character, which no shell
    variable can hold."""
    names: dict[str, str] = {}
    lines = []
    for key in sorted(config):
        name = env_name(key)
        if name in names:
            raise RenderError(
                f"keys {names[name]!r} and {key!r} both become the variable {name} "
                "in an env file; write json or yaml, or rename one of them"
            )
        names[name] = key
        text = env_value(config[key])
        if "\0" in text:
            raise RenderError(
                f"the value of {key!r} holds a NUL character, which a shell variable "
                "cannot hold; write json or yaml instead"
            )
        lines.append(f"{name}={env_quote(text)}\n")
    return "".join(lines)


def render(fmt: FileFormat, unit: str, config: Mapping[str, Any], hash_: str) -> bytes:
    """The file's bytes. YAML and env files start with a header naming the unit and
    the config's hash, so a restarted agent knows what the file holds."""
    if fmt is FileFormat.JSON:
        return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    header = f"# genconf unit={unit} hash={hash_}\n"
    if fmt is FileFormat.YAML:
        body = yaml.safe_dump(
            dict(config), sort_keys=True, allow_unicode=True, default_flow_style=False
        )
        return (header + body).encode()
    return (header + env_lines(config)).encode()


def hash_on_disk(path: Path, fmt: FileFormat, unit: str) -> str:
    """The hash of the config the file holds, or "" when that cannot be told."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    try:
        if fmt is FileFormat.JSON:
            data = json.loads(text)
            return values.config_hash(data) if isinstance(data, dict) else ""
        match = HEADER_RE.match(text.split("\n", 1)[0])
        if match is None or match[1] != unit:
            return ""
        if fmt is FileFormat.YAML:
            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict) or values.config_hash(data) != match[2]:
                return ""
        return match[2]
    except (ValueError, TypeError, yaml.YAMLError):
        return ""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old file or the new
    one, never a mix, and no temp file survives a failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
