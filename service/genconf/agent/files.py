"""The file an agent writes: its formats, their bytes, the hash a file on disk
holds, and the atomic write that makes PATH always hold one complete config."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import shlex
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


def env_name(key: str) -> str:
    """A config key as an environment variable name: ``log-level`` -> ``LOG_LEVEL``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", key).upper()


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
    lines = []
    for key in sorted(config):
        value = config[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"{env_name(key)}={shlex.quote(text)}\n")
    return (header + "".join(lines)).encode()


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
