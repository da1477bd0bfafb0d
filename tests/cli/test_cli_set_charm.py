"""`genconf app set-charm NAME CHARM [--schema FILE [--open]]` as the real CLI against
a real server: a new schema is checked as at creation (the values in use must fit),
charm names are validated, and every refusal writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import MongoClient
from support.cli_runner import Genconf, clean_env
from support.servers import digest

from genconf.api.server import RunningServer
from genconf.domain.names import validate_charm_name
from genconf.errors import InvalidArgument

SCHEMA = {"port": {"type": "int", "default": 8080}, "motd": {"type": "string"}}


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


def schema_file(tmp_path: Path, name: str, options: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"options": options}))
    return str(path)


async def test_set_charm_with_a_schema_that_fits(genconf: Genconf, tmp_path: Path) -> None:
    (
        await genconf("app", "create", "web", "--schema", schema_file(tmp_path, "v1.yaml", SCHEMA))
    ).ok()
    await genconf("config", "set", "web", "port=9090")
    wider = {**SCHEMA, "workers": {"type": "int", "default": 4}}
    run = await genconf(
        "app", "set-charm", "web", "web-v2", "--schema", schema_file(tmp_path, "v2.yaml", wider)
    )
    assert "application web now uses charm web-v2 and a schema of 3 option(s)" in run.ok().out
    shown = (await genconf("app", "show", "web", "-o", "json")).json()
    assert shown["charm"] == "web-v2"
    assert sorted(shown["schema"]) == ["motd", "port", "workers"]
    assert shown["effective"]["workers"] == 4 and shown["effective"]["port"] == 9090


async def test_set_charm_refuses_a_schema_the_values_do_not_fit(
    genconf: Genconf, tmp_path: Path, mongo_client: MongoClient[Any], db_name: str
) -> None:
    (
        await genconf("app", "create", "web", "--schema", schema_file(tmp_path, "v1.yaml", SCHEMA))
    ).ok()
    await genconf("config", "set", "web", "motd=hello")
    await genconf("branch", "add", "canary")
    await genconf("config", "set", "web", "port=7000", "--branch", "canary")
    narrower = {"port": {"type": "string", "default": "x"}}
    before = digest(mongo_client, db_name)
    run = await genconf(
        "app", "set-charm", "web", "web-v2", "--schema", schema_file(tmp_path, "bad.yaml", narrower)
    )
    assert run.rc == 1
    assert "FAILED_PRECONDITION" in run.err and "does not fit values in use" in run.err
    assert "motd" in run.err and "branch 'canary'" in run.err
    assert digest(mongo_client, db_name) == before


async def test_set_charm_open_keeps_undeclared_keys(genconf: Genconf, tmp_path: Path) -> None:
    (await genconf("app", "create", "llm", "--open", "--set", "model=gpt-4o")).ok()
    typed = {"model": {"type": "string"}}
    run = await genconf(
        "app", "set-charm", "llm", "llm-v2", "--open", "--schema", schema_file(tmp_path, "s", typed)
    )
    assert "a schema of 1 option(s), open" in run.ok().out
    (await genconf("config", "set", "llm", "temperature=0.2")).ok()  # still open
    closed = await genconf(
        "app", "set-charm", "llm", "llm-v3", "--schema", schema_file(tmp_path, "t", typed)
    )
    assert closed.rc == 1 and "temperature" in closed.err  # in use, not declared


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["web", "Web_V2"], "invalid charm name 'Web_V2'"),
        (["web", "web--v2"], "invalid charm name"),
        (["web", "x" * 70], "invalid charm name"),
        (["web", "web-v2", "--open"], "--open goes with --schema"),
        (["web", "web-v2", "--schema", "/nonexistent.yaml"], "/nonexistent.yaml"),
    ],
)
async def test_set_charm_refusals_change_nothing(
    genconf: Genconf,
    tmp_path: Path,
    mongo_client: MongoClient[Any],
    db_name: str,
    argv: list[str],
    words: str,
) -> None:
    (await genconf("app", "create", "web")).ok()
    before = digest(mongo_client, db_name)
    run = await genconf("app", "set-charm", *argv)
    assert run.rc != 0 and words in run.err, run.err
    assert digest(mongo_client, db_name) == before


async def test_app_create_validates_the_charm_name(genconf: Genconf) -> None:
    run = await genconf("app", "create", "db", "--charm", "Postgres SQL")
    assert run.rc == 1 and "invalid charm name 'Postgres SQL'" in run.err
    assert "e.g. 'postgresql', 'web-v2'" in run.err


@pytest.mark.parametrize("name", ["postgresql", "web-v2", "postgres-14", "ch:redis", "local:a1"])
def test_charm_names_juju_would_accept(name: str) -> None:
    assert validate_charm_name(name) == name


@pytest.mark.parametrize("name", ["", "-web", "web-", "9web", "web_v2", "x:web", "ch:", "WEB"])
def test_charm_names_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid charm name"):
        validate_charm_name(name)
