"""The model and the callers' tokens both access matrices (gRPC and HTTP) run
against, seeded the same way, so the two protocols are judged on one model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

from genconf.client import Client
from genconf.security import auth

WEB_SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "motd": {"type": "string"},
    "password": {"type": "string", "secret": True},
}
DB_SCHEMA: dict[str, Any] = {"motd": {"type": "string"}, "level": {"type": "int"}}

# The callers of the matrix. Writers get requests of their own (names, units), so
# that every allowed call can succeed; the others never get past the guard.
ROLES = ("admin", "controller", "observer", "agent", "other-agent")
# "stale-agent": an agent token of web/0 in an application "web" since removed and
# re-created (it names a live unit of another incarnation: refused like a revoked one).
REFUSED = ("none", "garbage", "forged", "expired", "revoked", "stale-agent")


@dataclass
class Seeded:
    start_revision: int  # before any seeding: WatchDeltas replays from here
    tokens: dict[str, str | None]  # caller -> bearer token
    generation_of: dict[str, int]  # writer -> a generation it may revert
    spare_token_id: str  # for RevokeToken


def role_of(caller: str) -> auth.Role | None:
    """The role a caller's token carries (None: it never gets authenticated)."""
    if caller in ("agent", "other-agent"):
        return auth.Role.AGENT
    if caller in ROLES:
        return auth.Role(caller)
    return None


async def seed_matrix(
    admin: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> Seeded:
    start = (await admin.snapshot()).revision
    # An agent token of web/0 in an earlier "web", removed before the one used here.
    await admin.create_application("web", units=1)
    stale = await admin.create_token("agent", unit="web/0", name="stale")
    await admin.remove_application("web", force=True)
    await admin.create_application("web", schema=WEB_SCHEMA, units=8)
    await admin.create_application("db", schema=DB_SCHEMA, units=1)
    for writer in ("admin", "controller"):
        await admin.create_application(f"rm-{writer}")
        await admin.add_branch(f"tb-{writer}")
        # What each writer's StartRollout rolls out (the servers run no rollout driver).
        await admin.add_branch(f"ro-{writer}")
        await admin.set_branch_config(f"ro-{writer}", "db", {"level": 7})
        # Rebased and a key dropped (two keys staged: either may come first).
        await admin.add_branch(f"hb-{writer}")
        await admin.set_branch_config(f"hb-{writer}", "web", {"port": 7000, "motd": writer})
    await admin.set_config("web", {"port": 8080, "password": "s3cret"})
    await admin.add_branch("feature")
    await admin.track_branch("feature", units=["web/2"])
    await admin.set_branch_config("feature", "web", {"port": 9090})
    generation_of = {}
    for writer, values in (("admin", {"motd": "hi"}), ("controller", {"level": 3})):
        generation_of[writer] = (await admin.set_config("db", values)).generation

    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-token-at-all",
        "stale-agent": stale.token,
    }
    for caller in ROLES:
        role = role_of(caller)
        assert role is not None
        unit = {"agent": "web/0", "other-agent": "web/1"}.get(caller, "")
        tokens[caller] = (
            await admin.create_token(role.value, unit=unit, description=caller, name=caller)
        ).token
    admin_token = tokens["admin"]
    assert admin_token is not None
    tokens["forged"] = (
        admin_token[:-43] + ("B" if admin_token[-43] == "A" else "A") + (admin_token[-42:])
    )
    revoked = await admin.create_token("controller", description="revoked")
    await admin.revoke_token(revoked.info.id)
    tokens["revoked"] = revoked.token
    spare = await admin.create_token("observer", description="spare")

    # An expired token cannot be minted through the API: store one directly.
    now = dt.datetime.now(dt.UTC)
    expired = auth.mint(
        auth.Role.ADMIN,
        unit=None,
        expires_at=now - dt.timedelta(minutes=1),
        created_by="test",
        description="expired",
        now=now - dt.timedelta(hours=1),
    )
    mongo_client[db_name]["tokens"].insert_one(expired.doc)
    tokens["expired"] = expired.plaintext
    # A write after the insert: once the server has it, it has the token too.
    barrier = await admin.add_branch("barrier")
    known = {t.id: t for t in await admin.list_tokens(min_revision=barrier.revision)}
    assert known[expired.doc["_id"]].expires_at.ToDatetime(dt.UTC) < now
    assert known[revoked.info.id].revoked
    await admin.abort_branch("barrier")
    return Seeded(start, tokens, generation_of, spare.info.id)
