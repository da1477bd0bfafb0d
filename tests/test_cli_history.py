"""The history and token commands of `genconf`, run as subprocesses against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import Genconf, Run, clean_env
from servers import running_server

from genconf.client import Client
from genconf.server import RunningServer

ADMIN = "test-admin-token-0123456789abcdef"


class JsonGenconf:
    """`cli_runner.Genconf` for ``srv`` with ``-o json`` (and ``--token`` when given)."""

    def __init__(self, srv: RunningServer, tmp_path: Path) -> None:
        self.run = Genconf(srv.address, clean_env(tmp_path))

    async def __call__(self, *argv: str, token: str | None = None) -> Run:
        return await self.run(*argv, "-o", "json", *(("--token", token) if token else ()))


async def test_history_commands(srv: RunningServer, client: Client, tmp_path: Path) -> None:
    genconf = JsonGenconf(srv, tmp_path)
    await client.create_application("web", schema={"port": {"type": "int", "default": 80}})
    await client.set_config("web", {"port": 8080})
    await client.set_config("web", {"port": 9090})

    versions = (await genconf("versions", "web", "--limit", "2")).json()
    assert [v["version"] for v in versions] == ["3", "2"]  # int64 as JSON text
    shown = (await genconf("version", "show", "web", "2")).json()
    assert shown["settings"] == {"port": 8080}
    diff = (await genconf("version", "diff", "web", "2", "3")).json()
    assert [(e["kind"], e["path"]) for e in diff["entries"]] == [("changed", "port")]
    rolled = (await genconf("version", "rollback", "web", "1", "--reason", "undo")).json()
    assert rolled["versions"] == {"web": 4}
    bumped = (await genconf("version", "bump", "web", "minor")).json()
    assert bumped["label"] == "1.0.0"
    tagged = (await genconf("version", "tag", "web", "2.0.0", "--version", "2")).json()
    assert tagged["version"] == "2"
    latest = (await genconf("version", "latest", "web")).json()
    assert (latest["label"], latest["label_version"]) == ("2.0.0", "2")
    history = (await genconf("key-history", "web", "port")).json()
    assert [e["version"] for e in history] == ["4", "3", "2", "1"]
    generations = (await genconf("generations", "--application", "web")).json()
    assert len(generations) == 3
    newest = int(generations[0]["id"])
    generation = (await genconf("generation", "show", str(newest))).json()
    assert generation["kind"] == "rollback"
    reverted = (await genconf("generation", "revert", str(newest))).json()
    assert reverted["versions"] == {"web": 5}
    assert (await client.get_version("web", 5)).settings["port"] == 9090

    # A commit that requires applied reports names the units that have not.
    await client.add_units("web", count=1)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"port": 1})
    await client.track_branch("canary", units=["web/0"])
    run = await genconf("branch", "commit", "canary", "--require-applied")
    assert run.rc == 1 and "web/0" in run.err and "not applied" in run.err

    # Errors: the server's message and exit 1; usage errors exit 2.
    run = await genconf("version", "rollback", "web", "99")
    assert run.rc == 1 and "no version 99" in run.err
    run = await genconf("version", "bump", "web", "huge")
    assert run.rc == 2 and "invalid choice" in run.err


async def test_token_commands(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    async with running_server(mongo_uri, db_name, admin_token=ADMIN) as srv:
        genconf = JsonGenconf(srv, tmp_path)
        created = (
            await genconf(
                "token", "create", "--role", "agent", "--unit", "web/0", "--expires", "1h",
                token=ADMIN,
            )
        ).json()  # fmt: skip
        assert created["role"] == "agent" and created["unit"] == "web/0"
        assert created["token"].startswith("gct_") and "expires_at" in created
        listed = (await genconf("token", "list", token=ADMIN)).json()
        assert [t["id"] for t in listed] == [created["id"]]
        assert created["token"] not in json.dumps(listed)  # secrets are never listed
        # The agent token may not list tokens; without a token nothing works.
        run = await genconf("token", "list", token=created["token"])
        assert run.rc == 1 and "may not call TokenService/ListTokens" in run.err
        run = await genconf("token", "list")
        assert run.rc == 1 and "bearer token" in run.err
        revoked = (await genconf("token", "revoke", created["id"], token=ADMIN)).json()
        assert revoked == {"revoked": created["id"]}
        listed = (await genconf("token", "list", token=ADMIN)).json()
        assert listed[0]["revoked"] is True
