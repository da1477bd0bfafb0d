"""`genconf app create --open/--values/--set`, `config set --values [--replace]`,
`--expect`/`--expect-absent` and `config patch`, run as the real CLI against a real
server; every refusal exits non-zero with the server's words and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import MongoClient
from support.cli_runner import Genconf, Run, clean_env
from support.servers import admin_session, digest

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.domain.patch import unified_diff

SCHEMA = {
    "port": {"type": "int", "default": 8080},
    "log-level": {"type": "string", "default": "info"},
    "motd": {"type": "string"},
}
MOTD = ["".join(f"{w}\n" for w in words) for words in (["a", "b", "c", "d"], ["a", "B", "c", "d"])]


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


@pytest.fixture
def files(tmp_path: Path) -> Any:
    def write(name: str, content: Any) -> str:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".json"):
            path.write_text(json.dumps(content))
        else:
            path.write_text(yaml.safe_dump(content))
        return str(path)

    return write


class Refusals:
    def __init__(self, genconf: Genconf, mongo_client: MongoClient[Any], db_name: str) -> None:
        self.genconf, self.mongo_client, self.db_name = genconf, mongo_client, db_name

    async def __call__(self, *argv: str) -> Run:
        before = digest(self.mongo_client, self.db_name)
        run = await self.genconf(*argv)
        assert run.rc != 0, f"{argv} should fail: {run.out}"
        assert digest(self.mongo_client, self.db_name) == before, f"{argv} wrote"
        return run


@pytest.fixture
def refused(genconf: Genconf, mongo_client: MongoClient[Any], db_name: str) -> Refusals:
    return Refusals(genconf, mongo_client, db_name)


async def test_app_create_with_values_set_reason_and_meta(
    genconf: Genconf, files: Any, client: Client
) -> None:
    schema = files("config.yaml", {"options": SCHEMA})
    values = files("web.yaml", {"web": {"port": 9000, "motd": "hi"}})  # juju --file shape
    created = await genconf(
        "app", "create", "web", "--schema", schema, "--values", values, "--set", "log-level=debug",
        "--reason", "first release", "--meta", "ticket=OPS-1", "--meta", "n=3", "-o", "json",
    )  # fmt: skip
    assert created.json()["versions"] == {"web": 1}
    v1 = (await genconf("version", "get", "web", "1", "-o", "json")).json()
    assert v1["settings"] == {"port": 9000, "motd": "hi", "log-level": "debug"}
    assert v1["reason"] == "first release"
    assert v1["metadata"] == {"ticket": "OPS-1", "n": 3}


async def test_open_app_from_the_cli(genconf: Genconf, files: Any, refused: Refusals) -> None:
    run = await genconf(
        "app", "create", "llm", "--open", "--set", "model=gpt-4o", "--set",
        'params={"temperature": 0.2}', "--set", "retries=3", "--set", "on=true",
    )  # fmt: skip
    assert "created open application llm" in run.ok().out
    shown = (await genconf("config", "get", "llm", "-o", "json")).json()
    assert shown["effective"] == {
        "model": "gpt-4o", "params": {"temperature": 0.2}, "retries": 3, "on": True,
    }  # fmt: skip
    (await genconf("config", "set", "llm", "extra=[1,2]", "name=plain text")).ok()
    (await genconf("config", "unset", "llm", "model")).ok()
    shown = (await genconf("config", "get", "llm", "-o", "json")).json()
    assert shown["effective"]["extra"] == [1, 2] and shown["effective"]["name"] == "plain text"
    assert "model" not in shown["effective"]
    bad = await refused("config", "set", "llm", "bad.key=1")
    assert "invalid config key 'bad.key'" in bad.err


async def test_config_set_values_merge_and_replace(
    genconf: Genconf, files: Any, refused: Refusals
) -> None:
    (await genconf("app", "create", "web", "--schema", files("s.json", SCHEMA))).ok()
    (await genconf("config", "set", "web", "motd=hello", "port=1")).ok()
    merged = files("m.yaml", {"log-level": "warn"})
    (await genconf("config", "set", "web", "--values", merged)).ok()
    got = (await genconf("config", "get", "web", "-o", "json")).json()
    assert got["settings"] == {"motd": "hello", "port": 1, "log-level": "warn"}

    whole = files("whole.yaml", {"options": {"port": {"value": 7000}}})  # charm shape
    run = await genconf(
        "config", "set", "web", "--values", whole, "--replace", "--expected-version", "3"
    )
    assert "replaced the whole config" in run.ok().out
    got = (await genconf("config", "get", "web", "-o", "json")).json()
    assert got["settings"] == {"port": 7000} and got["version"] == 4
    assert got["effective"] == {"port": 7000, "log-level": "info"}

    stale = await refused("config", "set", "web", "--values", whole, "--replace",
                          "--expected-version", "3")  # fmt: skip
    assert "not the expected version 3" in stale.err
    wrong = await refused("config", "set", "web", "--values", files("w.yaml", {"port": "x"}))
    assert "'port' is of type int" in wrong.err
    garbage = await refused("config", "set", "web", "--values", files("g.yaml", "- 1\n- 2\n"))
    assert "must be a mapping" in garbage.err
    nothing = await refused("config", "set", "web")
    assert "--values FILE" in nothing.err
    branch = await refused("config", "set", "web", "--values", whole, "--replace",
                           "--branch", "b")  # fmt: skip
    assert "--replace applies to master" in branch.err


async def test_config_set_expect(genconf: Genconf, files: Any, refused: Refusals) -> None:
    (await genconf("app", "create", "web", "--schema", files("s.json", SCHEMA))).ok()
    (await genconf("config", "set", "web", "port=9090")).ok()
    stale = await refused("config", "set", "web", "port=9091", "--expect", "port=8080")
    assert "web.port (expected 8080, is 9090)" in stale.err
    (await genconf("config", "set", "web", "motd=x", "--expect-absent", "motd")).ok()
    (await genconf("config", "set", "web", "log-level=warn", "--expect", "log-level=info")).ok()
    (await genconf("config", "unset", "web", "motd", "--expect", "motd=x")).ok()
    (await genconf("branch", "add", "b")).ok()
    (await genconf("config", "set", "web", "port=1", "--branch", "b", "--expect", "port=9090")).ok()
    on_branch = await refused(
        "config", "set", "web", "port=2", "--branch", "b", "--expect", "port=9090"
    )
    assert "on branch b" in on_branch.err


async def test_config_patch(genconf: Genconf, files: Any, refused: Refusals) -> None:
    (await genconf("app", "create", "web", "--schema", files("s.json", SCHEMA))).ok()
    (await genconf("config", "set", "web", "--values", files("v.json", {"motd": MOTD[0]}))).ok()
    diff = files("motd.patch", unified_diff(MOTD[0], MOTD[1], "motd"))
    run = await genconf("config", "patch", "web", "motd", "--diff", diff, "--reason", "fix")
    assert "web: patched motd (web is at version 3" in run.ok().out
    got = (await genconf("config", "get", "web", "-o", "json")).json()
    assert got["settings"]["motd"] == MOTD[1]
    stale = await refused("config", "patch", "web", "motd", "--diff", diff)
    assert "hunk 1" in stale.err and "does not apply" in stale.err
    (await genconf("branch", "add", "b")).ok()
    back = files("back.patch", unified_diff(MOTD[1], MOTD[0], "motd"))
    (await genconf("config", "patch", "web", "motd", "--diff", back, "--branch", "b")).ok()
    missing = await refused("config", "patch", "web", "motd", "--diff", str(files("x", "")) + "no")
    assert "cannot read diff file" in missing.err


async def test_config_get_one_value_and_a_branch_view(
    genconf: Genconf, files: Any, client: Client
) -> None:
    (
        await genconf("app", "create", "web", "--schema", files("s.json", SCHEMA), "--units", "2")
    ).ok()
    (await genconf("config", "set", "web", "port=9090", "motd=" + MOTD[0])).ok()
    assert (await genconf("config", "get", "web/0", "port")).ok().out == "9090\n"
    assert (await genconf("config", "get", "web/0", "motd")).ok().out == MOTD[0]
    assert (await genconf("config", "get", "web", "log-level")).ok().out == "info\n"
    assert (await genconf("config", "get", "web/0", "port", "-o", "json")).json() == 9090
    missing = await genconf("config", "get", "web/0", "nope")
    assert missing.rc == 1 and "web/0 has no value for 'nope'" in missing.err

    (await genconf("branch", "add", "canary")).ok()
    (await genconf("config", "set", "web", "port=7000", "--branch", "canary")).ok()
    (await genconf("config", "unset", "web", "motd", "--branch", "canary")).ok()
    view = (await genconf("config", "get", "web", "--branch", "canary", "-o", "json")).json()
    assert view["effective"] == {"port": 7000, "log-level": "info"}
    assert view["branch"] == "canary"
    table = (await genconf("config", "get", "web", "--branch", "canary")).ok().out
    assert "branch canary" in table and "7000" in table
    assert (
        await genconf("config", "get", "web", "port", "--branch", "canary")
    ).ok().out == "7000\n"
    unit = await genconf("config", "get", "web/0", "--branch", "canary")
    assert unit.rc == 2 and "is a unit" in unit.err


async def test_an_agent_token_reads_its_own_unit_in_table_mode(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        await admin.create_application("web", schema=SCHEMA, units=1, settings={"port": 1})
        token = (await admin.create_token("agent", unit="web/0")).token
        run = await Genconf(srv.address, clean_env(tmp_path))(
            "config", "get", "web/0", "--token", token
        )
        lines = run.ok().out.splitlines()
        assert any(line.split()[:3] == ["port", "1", "-"] for line in lines), lines


async def test_sharp_edges_of_set_and_history_flags(genconf: Genconf, files: Any) -> None:
    (await genconf("app", "create", "web", "--schema", files("s.json", SCHEMA))).ok()
    blank = await genconf("config", "set", "web", "motd=")
    assert blank.rc == 2 and "pass --empty if you mean that" in blank.err
    (await genconf("config", "set", "web", "motd=", "--empty")).ok()
    assert (await genconf("config", "get", "web", "motd")).ok().out == "\n"
    for argv in (["versions", "web", "--limit", "0"], ["versions", "web", "--limit", "1001"]):
        refused = await genconf(*argv)
        assert refused.rc == 2 and "--limit" in refused.err, refused.err
    assert len((await genconf("versions", "web", "--limit", "1", "-o", "json")).json()) == 1
