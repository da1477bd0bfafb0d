"""The client stands alone: importing it (and the reference agent) loads no
pymongo and no server-side module, so an agent's host needs neither."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = (
    "pymongo",
    "genconf.store",
    "genconf.readside",
    "genconf.multiwatcher",
    "genconf.cache",
    "genconf.api",
    "genconf.server",
)


def loaded_by(module: str) -> list[str]:
    """Server-side modules a fresh interpreter holds after importing ``module``."""
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({SERVER_SIDE!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(out.stdout))


def test_the_client_loads_no_server_code() -> None:
    assert loaded_by("genconf.client") == []


def test_the_agent_loads_no_server_code() -> None:
    assert loaded_by("genconf.agent") == []


def test_the_check_can_fail() -> None:
    """The same check over the server module does see them (it is not vacuous)."""
    found = loaded_by("genconf.server")
    assert "pymongo" in found and "genconf.store" in found
