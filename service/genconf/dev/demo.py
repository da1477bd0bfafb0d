"""The demo model `make run` loads on first run, and what to try next."""

from __future__ import annotations

from genconf.defaults import DEFAULT_LISTEN
from genconf.errors import AlreadyExists
from genconf.store.store import Store

WEB_SCHEMA = {
    "port": {"type": "int", "default": 8080, "description": "port to listen on"},
    "log-level": {"type": "string", "default": "info", "description": "debug|info|warning"},
    "workers": {"type": "int", "default": 2, "description": "worker processes"},
    "features": {"type": "object", "default": {"search": False}, "description": "flags"},
}
DB_SCHEMA = {
    "max-connections": {"type": "int", "default": 100, "description": "connection limit"},
    "replicas": {"type": "list", "default": [], "description": "replica hosts"},
    "tls": {"type": "boolean", "default": False, "description": "require TLS"},
}


async def load(store: Store) -> bool:
    """Create the demo model unless it exists; True when it was created now."""
    try:
        await store.create_application("web", charm="web-app", schema=WEB_SCHEMA, units=3)
    except AlreadyExists:
        return False
    await store.create_application("db", charm="postgres", schema=DB_SCHEMA, units=2)
    await store.set_config("web", set={"workers": 4}, reason="demo", created_by="demo")
    await store.add_branch("canary", created_by="demo")
    await store.track_branch("canary", units=["web/0"])
    await store.set_branch_config("canary", "web", set={"log-level": "debug"})
    return True


def banner(address: str, created: bool, command: str = ".venv/bin/genconf") -> str:
    """What `make run` prints before its ready line: the model, and three commands to
    try (with ``--server`` only when the address is not the default)."""
    state = "loaded the demo model" if created else "the demo model is already loaded"
    server = "" if address == DEFAULT_LISTEN else f" --server {address}"
    return (
        f"{state}: applications web (3 units) and db (2 units); branch 'canary' "
        "tracked by web/0\n"
        "try next:\n"
        f"  {command}{server} config get web/0\n"
        f"  {command}{server} branch diff canary\n"
        f"  {command}{server} unit list web\n"
        "Ctrl-C stops the server and the embedded MongoDB."
    )
