"""The history and token commands of `genconf`, run as subprocesses against a real server."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
from servers import running_server

from genconf.client import Client
from genconf.server import RunningServer

ADMIN = "test-admin-token-0123456789abcdef"


async def genconf(srv: RunningServer, *argv: str, token: str | None = None) -> tuple[int, Any, str]:
    """Run ``genconf ARGV -o json``; returns (exit code, parsed stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCONF_")}
    cmd = [sys.executable, "-m", "genconf.cli", *argv, "--server", srv.address, "-o", "json"]
    if token:
        cmd += ["--token", token]
    done = await anyio.run_process(cmd, env=env, check=False)
    out = done.stdout.decode()
    return done.returncode, (json.loads(out) if out.strip() else None), done.stderr.decode()


async def test_history_commands(srv: RunningServer, client: Client) -> None:
    await client.create_application("web", schema={"port": {"type": "int", "default": 80}})
    await client.set_config("web", {"port": 8080})
    await client.set_config("web", {"port": 9090})

    code, versions, _ = await genconf(srv, "versions", "web", "--limit", "2")
    assert code == 0 and [v["version"] for v in versions] == ["3", "2"]  # int64 as JSON text
    code, shown, _ = await genconf(srv, "version", "show", "web", "2")
    assert code == 0 and shown["settings"] == {"port": 8080}
    code, diff, _ = await genconf(srv, "version", "diff", "web", "2", "3")
    assert code == 0 and [(e["kind"], e["path"]) for e in diff["entries"]] == [("changed", "port")]
    code, rolled, _ = await genconf(srv, "version", "rollback", "web", "1", "--reason", "undo")
    assert code == 0 and rolled["versions"] == {"web": 4}
    code, bumped, _ = await genconf(srv, "version", "bump", "web", "minor")
    assert code == 0 and bumped["label"] == "1.0.0"
    code, tagged, _ = await genconf(srv, "version", "tag", "web", "2.0.0", "--version", "2")
    assert code == 0 and tagged["version"] == "2"
    code, latest, _ = await genconf(srv, "version", "latest", "web")
    assert code == 0 and (latest["label"], latest["label_version"]) == ("2.0.0", "2")
    code, history, _ = await genconf(srv, "key-history", "web", "port")
    assert code == 0 and [e["version"] for e in history] == ["4", "3", "2", "1"]
    code, generations, _ = await genconf(srv, "generations", "--application", "web")
    assert code == 0 and len(generations) == 3
    newest = int(generations[0]["id"])
    code, generation, _ = await genconf(srv, "generation", "show", str(newest))
    assert code == 0 and generation["kind"] == "rollback"
    code, reverted, _ = await genconf(srv, "generation", "revert", str(newest))
    assert code == 0 and reverted["versions"] == {"web": 5}
    assert (await client.get_version("web", 5)).settings["port"] == 9090

    # A commit that requires applied reports names the units that have not.
    await client.add_units("web", count=1)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"port": 1})
    await client.track_branch("canary", units=["web/0"])
    code, _, err = await genconf(srv, "branch", "commit", "canary", "--require-applied")
    assert code == 1 and "web/0" in err and "not applied" in err

    # Errors: the server's message and exit 1; usage errors exit 2.
    code, _, err = await genconf(srv, "version", "rollback", "web", "99")
    assert code == 1 and "no version 99" in err
    code, _, err = await genconf(srv, "version", "bump", "web", "huge")
    assert code == 2 and "invalid choice" in err


async def test_token_commands(mongo_uri: str, db_name: str) -> None:
    async with running_server(mongo_uri, db_name, admin_token=ADMIN) as srv:
        code, created, _ = await genconf(
            srv,
            "token",
            "create",
            "--role",
            "agent",
            "--unit",
            "web/0",
            "--expires",
            "1h",
            token=ADMIN,
        )
        assert code == 0 and created["role"] == "agent" and created["unit"] == "web/0"
        assert created["token"].startswith("gct_") and "expires_at" in created
        code, listed, _ = await genconf(srv, "token", "list", token=ADMIN)
        assert code == 0 and [t["id"] for t in listed] == [created["id"]]
        assert created["token"] not in json.dumps(listed)  # secrets are never listed
        # The agent token may not list tokens; without a token nothing works.
        code, _, err = await genconf(srv, "token", "list", token=created["token"])
        assert code == 1 and "may not call TokenService/ListTokens" in err
        code, _, err = await genconf(srv, "token", "list")
        assert code == 1 and "bearer token" in err
        code, revoked, _ = await genconf(srv, "token", "revoke", created["id"], token=ADMIN)
        assert code == 0 and revoked == {"revoked": created["id"]}
        code, listed, _ = await genconf(srv, "token", "list", token=ADMIN)
        assert listed[0]["revoked"] is True
