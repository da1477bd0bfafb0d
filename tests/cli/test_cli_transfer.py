"""`genconf export` and `genconf import`, run as subprocesses against real servers.

A model goes out as YAML and as JSON Lines, into an empty database served by a
second server, and out again byte for byte (the header's exported_at aside); a
subset goes through standard input into a model that lacks it; every refusal
exits 1 with the server's message and leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

from pymongo import MongoClient
from support.cli_runner import Genconf, Run, clean_env
from support.servers import digest, running_server

from genconf.api.server import RunningServer
from genconf.client import Client

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "motd": {"type": "string"},
    "password": {"type": "string", "secret": True},
}
SUMMARY_KEYS = {
    "records", "applications", "branches", "units", "versions", "generations",
    "transactions", "renumbered", "revision",
}  # fmt: skip


async def build(c: Client) -> None:
    await c.create_application("web", schema=SCHEMA, units=2)
    await c.create_application("notes", schema={"*": {"type": "any"}}, units=1)
    for i in range(6):
        await c.set_config("web", {"port": 8000 + i, "motd": f"hello\n  line {i}\n"})
    await c.set_config("web", {"password": "s3cret: yes"})
    await c.set_config("notes", {"on": "yes", "when": "2024-05-01", "n": [1, 2.5, None]})
    await c.bump_version("web", "major")
    await c.add_branch("canary")
    await c.track_branch("canary", units=["web/1"])
    await c.set_branch_config("canary", "web", {"port": 7000})


def without_header_yaml(text: str) -> str:
    """A YAML export without its first document (the header)."""
    assert text.startswith("---\nrecord: genconf-export\n")
    return text[text.index("\n---\n", 4) :]


def without_header_lines(text: str) -> list[str]:
    lines = text.splitlines()
    assert json.loads(lines[0])["record"] == "genconf-export"
    return lines[1:]


async def genconf_stdin(server: str, env: dict[str, str], data: bytes, *argv: str) -> Run:
    """`genconf` with ``data`` on its standard input (`Genconf` gives it none)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genconf.cli.main", *argv, "--server", server,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(data), 60)
    assert proc.returncode is not None
    return Run(argv, proc.returncode, out.decode(), err.decode())


async def test_export_and_import_round_trip_byte_for_byte(
    srv: RunningServer,
    client: Client,
    tmp_path: Path,
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
) -> None:
    await build(client)
    genconf = Genconf(srv.address, clean_env(tmp_path))
    model = tmp_path / "model.yaml"
    (await genconf("export", "--file", str(model))).ok()
    lines = (await genconf("export", "--format", "jsonl")).ok().out
    yaml_text = model.read_text()
    assert "  line 0\n" in yaml_text  # multi-line text reads as text
    assert not (tmp_path / "model.yaml.partial").exists()
    assert (await genconf("export")).ok().out.startswith("---\nrecord: genconf-export\n")
    name = "t_" + uuid4().hex[:12]
    try:
        async with running_server(mongo_uri, name) as other:
            there = Genconf(other.address, clean_env(tmp_path))
            imported = (await there("import", str(model), "-o", "json")).json()
            assert set(imported) == SUMMARY_KEYS
            assert imported["applications"] == ["notes", "web"]
            assert (imported["units"], imported["branches"]) == (3, ["canary"])
            assert imported["records"] == len(lines.splitlines())
            again = tmp_path / "again.yaml"
            (await there("export", "--file", str(again))).ok()
            assert without_header_yaml(again.read_text()) == without_header_yaml(yaml_text)
            relines = (await there("export", "--format", "jsonl")).ok().out
            assert without_header_lines(relines) == without_header_lines(lines)
            # The import command returned once this server's cache held the import.
            shown = (await there("config", "get", "web/1", "-o", "json")).json()
            assert (shown["branch"], shown["config"]["port"]) == ("canary", 7000)
            # Importing it again collides with all of it, and writes nothing.
            before = digest(mongo_client, name)
            refused = await there("import", str(model))
            assert refused.rc == 1 and refused.out == ""
            assert refused.err.startswith("error: ")
            assert (
                "the import collides with what this model holds already: "
                "applications notes, web; units notes/0, web/0, web/1; branches canary; "
                "generation ids 1-8"
            ) in refused.err, refused.err
            assert digest(mongo_client, name) == before
    finally:
        mongo_client.drop_database(name)


async def test_a_subset_from_standard_input_into_a_model_that_lacks_it(
    srv: RunningServer,
    client: Client,
    tmp_path: Path,
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
) -> None:
    await build(client)
    env = clean_env(tmp_path)
    genconf = Genconf(srv.address, env)
    subset = (await genconf("export", "--application", "notes", "--format", "jsonl")).ok().out
    assert '"record":"application","name":"web"' not in subset
    name = "t_" + uuid4().hex[:12]
    try:
        async with running_server(mongo_uri, name) as other, Client(other.address) as c:
            await c.create_application("web", schema=SCHEMA, units=1)
            for port in range(8):  # generations 1-8: the subset's one is 8
                await c.set_config("web", {"port": port})
            before = digest(mongo_client, name)
            refused = await genconf_stdin(other.address, env, subset.encode(), "import", "-")
            assert refused.rc == 1
            assert "generation ids 8 (import with --renumber-generations" in refused.err
            assert digest(mongo_client, name) == before
            done = await genconf_stdin(
                other.address, env, subset.encode(), "import", "-", "--renumber-generations"
            )
            assert done.rc == 0, done.err
            assert done.out.startswith(
                "imported 7 records in 1 transaction(s): 1 application(s) (notes), 1 unit(s)"
            ), done.out
            assert done.out.rstrip().endswith("generations renumbered 9-9")
            there = Genconf(other.address, env)
            notes = (await there("config", "get", "notes/0", "-o", "json")).json()
            assert notes["config"] == {"on": "yes", "when": "2024-05-01", "n": [1, 2.5, None]}
            assert [a["name"] for a in (await there("app", "list", "-o", "json")).json()] == [
                "notes",
                "web",
            ]
    finally:
        mongo_client.drop_database(name)


async def test_bad_files_exit_1_naming_the_problem(
    srv: RunningServer, client: Client, tmp_path: Path, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    await build(client)
    genconf = Genconf(srv.address, clean_env(tmp_path))
    lines = (await genconf("export", "--format", "jsonl")).ok().out.splitlines()
    header = json.loads(lines[0])
    files = {
        "future.jsonl": json.dumps({**header, "format": 2}) + "\n",
        "truncated.jsonl": "\n".join(lines[:-2]) + "\n",
        "broken.yaml": "---\nrecord: genconf-export\n---\n  - [unclosed\n",
        "not-json.yaml": "---\nrecord: genconf-export\nat: !!binary aGk=\n",
    }
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    cases = [
        (["import", "future.jsonl"], 1, "record 1 (header): unknown format version 2"),
        (["import", "truncated.jsonl"], 1, f"ended after record {len(lines) - 2} without"),
        (["import", "broken.yaml"], 1, "broken.yaml is not valid YAML after document 1"),
        (["import", "not-json.yaml"], 1, "not-json.yaml: document 1: bytes"),
        (["import", "missing.yaml"], 1, "missing.yaml: No such file"),
        (["import", "future.jsonl", "--format", "xml"], 2, "invalid choice: 'xml'"),
        (["export", "--application", "nope", "--file", "out.yaml"], 1, "nope not found"),
    ]
    before = digest(mongo_client, srv.config.database)
    runs = [await genconf(*(a if "." not in a else str(tmp_path / a) for a in argv))
            for argv, _, _ in cases]  # fmt: skip
    for (argv, code, fragment), run in zip(cases, runs, strict=True):
        assert run.rc == code, (argv, run.rc, run.err)
        assert fragment in run.err, (argv, run.err)
        assert run.out == ""
    assert digest(mongo_client, srv.config.database) == before
    assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "out.yaml.partial").exists()
