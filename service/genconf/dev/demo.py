"""The demo model `make run` loads on first run, and what to try next."""

from __future__ import annotations

from genconf.defaults import DEFAULT_LISTEN
from genconf.errors import AlreadyExists
from genconf.store.documents import APPLICATIONS, BRANCHES, UNITS
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


async def describe(store: Store) -> str:
    """The model as it is now, in one sentence: applications with their unit counts,
    branches with the units tracking them (read from MongoDB, not assumed)."""
    units: dict[str, int] = {}
    tracking: dict[str, list[str]] = {}
    async for unit in store.db[UNITS].find({}, {"application": 1, "branch": 1}):
        units[unit["application"]] = units.get(unit["application"], 0) + 1
        if unit.get("branch"):
            tracking.setdefault(unit["branch"], []).append(unit["_id"])
    apps = ", ".join(
        f"{name} ({units.get(name, 0)} unit{'s' * (units.get(name, 0) != 1)})"
        for name in sorted(await store.db[APPLICATIONS].distinct("_id"))
    )
    branches = "; ".join(
        f"branch '{b}' tracked by {', '.join(sorted(tracking.get(b, []))) or 'no unit'}"
        for b in sorted(await store.db[BRANCHES].distinct("_id"))
    )
    return (f"applications {apps}" if apps else "no applications") + (
        f"; {branches}" if branches else ""
    )


def banner(
    address: str,
    created: bool,
    model: str,
    command: str = ".venv/bin/genconf",
    *,
    http_address: str | None = None,
    token_hint: bool = False,
) -> str:
    """What `make run` prints before its ready line: the model as it is, three commands
    to try (with ``--server`` only when the address is not the default, ``--token``
    when authentication is on) and the console's address."""
    state = "loaded the demo model" if created else "the demo model is already loaded"
    server = "" if address == DEFAULT_LISTEN else f" --server {address}"
    if token_hint:
        server += " --token $GENCONF_TOKEN"
    console = (
        f"console: http://{http_address}/ (JSON API /api/v1/, docs /api/v1/docs)\n"
        if http_address
        else ""
    )
    return (
        f"{state}: {model}\n"
        f"{console}"
        "try next:\n"
        f"  {command}{server} config get web/0\n"
        f"  {command}{server} branch diff canary\n"
        f"  {command}{server} unit list web\n"
        "Ctrl-C stops the server and the embedded MongoDB."
    )
