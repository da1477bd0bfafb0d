"""Versions named by label on the command line: the dataset-versioning walk of
issue 17, run as `genconf` subprocesses against a real server and mongod.

Every VERSION a command takes is a number or a label; a comparison carries counts
and a one-line summary; a rollback carries its own metadata; a refused command
leaves every collection as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import MongoClient
from support.cli_runner import Genconf, clean_env
from support.servers import digest

from genconf.api.server import RunningServer
from genconf.domain.patch import apply_patch

SCHEMA_YAML = """\
options:
  port: {type: int, default: 80, description: port to listen on}
  workers: {type: int, default: 2, description: worker processes}
  mode: {type: string, default: a, description: serving mode}
  motd: {type: string, description: message of the day}
  banner: {type: string, description: shown on the front page}
"""
MOTD = "welcome\nto\nweb\n"
SUMMARY = "web 1.0.0 -> 2.0.0: 3 changed, 1 added, 1 removed"


async def test_dataset_versioning_walk_by_label(
    srv: RunningServer,
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    tmp_path: Path,
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    schema = tmp_path / "config.yaml"
    schema.write_text(SCHEMA_YAML)

    async def j(*argv: str) -> Any:
        return (await genconf(*argv, "-o", "json")).json()

    (await genconf("app", "create", "web", "--schema", str(schema))).ok()  # v1
    (await genconf("config", "set", "web", "port=8080", f"motd={MOTD}")).ok()  # v2
    tagged = await j("version", "tag", "web", "1.0.0")
    assert (tagged["version"], tagged["label"]) == (2, "1.0.0")
    (await genconf("config", "set", "web", "workers=4")).ok()  # v3
    patch = await j("version", "bump", "web", "patch")
    assert (patch["version"], patch["label"]) == (3, "1.0.1")
    (await genconf("config", "set", "web", "mode=b")).ok()  # v4
    minor = await j("version", "bump", "web", "minor")
    assert (minor["version"], minor["label"]) == (4, "1.1.0")
    (await genconf("config", "set", "web", "port=9090", "banner=hi")).ok()  # v5
    (await genconf("config", "unset", "web", "motd")).ok()  # v6
    major = await j("version", "bump", "web", "major")
    assert (major["version"], major["label"]) == (6, "2.0.0")

    # Compare by label: counts and the summary, in JSON and as the table's first line.
    diff = await j("version", "diff", "web", "1.0.0", "2.0.0")
    assert (diff["from_version"], diff["to_version"]) == (2, 6)
    assert (diff["from_label"], diff["to_label"]) == ("1.0.0", "2.0.0")
    assert (diff["changed"], diff["added"], diff["removed"]) == (3, 1, 1)
    assert diff["summary"] == SUMMARY
    kinds = {e["path"]: e["kind"] for e in diff["entries"]}
    assert kinds == {
        "port": "changed",
        "workers": "changed",
        "mode": "changed",
        "banner": "added",
        "motd": "removed",
    }
    table = (await genconf("version", "diff", "web", "v1.0.0", "2.0.0")).ok().out.splitlines()
    assert table[0] == SUMMARY
    assert "  ~ port: 8080 -> 9090" in table and "  + banner: hi" in table

    # Roll back to a label, with metadata of the caller's own.
    rolled = await j("version", "rollback", "web", "1.0.1", "--meta", "ticket=OPS-9")
    assert rolled["versions"] == {"web": 7}
    text = (await genconf("version", "rollback", "web", "v1.0.1", "--reason", "again")).ok()
    assert text.out.startswith("rolled web back to v1.0.1: web is now version 8")
    v7, v101 = await j("version", "get", "web", "7"), await j("version", "get", "web", "1.0.1")
    assert v7["settings"] == v101["settings"] == {"port": 8080, "motd": MOTD, "workers": 4}
    assert v7["metadata"] == {"ticket": "OPS-9", "rollback_from": 6, "rollback_to": 3}
    assert v7["reason"] == "rollback to version 3 (1.0.1)"
    shown = (await genconf("version", "get", "web", "7")).ok().out.splitlines()
    assert "metadata:     rollback_from=6 rollback_to=3 ticket=OPS-9" in shown

    # Latest: the newest version and the highest label, in JSON and in the table.
    latest = await j("version", "latest", "web")
    assert latest == {"application": "web", "version": 8, "label": "2.0.0", "label_version": 6}
    fields = (await genconf("version", "latest", "web")).ok().out.splitlines()
    assert [line.split(None, 1) for line in fields] == [
        ["application:", "web"],
        ["version:", "8"],
        ["label:", "2.0.0 (version 6)"],
    ]

    # Refused: a label nobody has, a malformed one, and labels that would go
    # backwards. Each says why, and writes nothing.
    before = digest(mongo_client, db_name)
    missing, malformed, rollback_missing, backwards, bumped_back = await genconf.all(
        ["version", "get", "web", "1.0.2"],
        ["version", "get", "web", "1.0"],
        ["version", "rollback", "web", "1.0.2"],
        ["version", "tag", "web", "1.5.0", "--version", "1.0.1"],
        ["version", "bump", "web", "major", "--version", "1.0.0"],
    )
    assert digest(mongo_client, db_name) == before
    for run in (missing, rollback_missing):
        assert run.rc == 1 and run.out == ""
        assert "NOT_FOUND: version 1.0.2 not found for application web" in run.err, run.err
    assert malformed.rc == 2 and malformed.out == ""
    assert "MAJOR.MINOR.PATCH" in malformed.err and "invalid int value" not in malformed.err
    assert backwards.rc == 1 and (
        "label 1.5.0 on version 3 would go backwards: version 4 already has 1.1.0" in backwards.err
    ), backwards.err
    # Bumped from the highest label at or below version 2 (1.0.0), major is 2.0.0,
    # which version 6 has: an old version cannot take a label above a newer one's.
    assert bumped_back.rc == 1 and "label 2.0.0 is already on version 6" in bumped_back.err


async def test_every_version_argument_takes_a_number_or_a_label(
    srv: RunningServer,
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    tmp_path: Path,
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    schema = tmp_path / "config.yaml"
    schema.write_text(SCHEMA_YAML)

    async def j(*argv: str) -> Any:
        return (await genconf(*argv, "-o", "json")).json()

    (await genconf("app", "create", "web", "--schema", str(schema))).ok()  # v1
    (await genconf("config", "set", "web", "motd=a\nb\nc\n", "port=1")).ok()  # v2
    (await genconf("version", "tag", "web", "1.0.0")).ok()
    (await genconf("config", "set", "web", "motd=a\nB\nc\nd\n")).ok()  # v3
    (await genconf("version", "tag", "web", "1.1.0")).ok()
    (await genconf("config", "set", "web", "port=2")).ok()  # v4

    # tag and bump --version, by label; key-history --before, by label.
    tagged = await j("version", "tag", "web", "1.0.1", "--version", "1.0.0")
    assert (tagged["version"], tagged["label"]) == (2, "1.0.1")
    bumped = await j("version", "bump", "web", "patch", "--version", "v1.1.0")
    assert (bumped["version"], bumped["label"]) == (3, "1.1.1")
    history = await j("key-history", "web", "motd", "--before", "1.1.0")
    assert [e["version"] for e in history] == [2, 1]
    assert [e["version"] for e in await j("key-history", "web", "port", "--before", "4")] == [
        2,
        1,
    ]

    # diff --key prints the text value's unified diff, which applies as a patch.
    patch = (await genconf("version", "diff", "web", "1.0.0", "1.1.0", "--key", "motd")).ok()
    assert patch.out.startswith("--- a/motd\n+++ b/motd\n@@ ")
    assert apply_patch("a\nb\nc\n", patch.out, "motd") == "a\nB\nc\nd\n"
    as_json = await j("version", "diff", "web", "1.0.0", "1.1.0", "--key", "motd")
    assert as_json == {
        "application": "web",
        "key": "motd",
        "from_version": 2,
        "to_version": 3,
        "from_label": "1.0.1",  # the highest label on version 2
        "to_label": "1.1.1",
        "diff": patch.out,
    }
    same = await genconf("version", "diff", "web", "1.1.0", "4", "--key", "motd")
    assert (same.ok().out, same.err) == ("", "")  # the same text: an empty diff

    # generation revert by an application's version (number or label).
    reverted = await j("generation", "revert", "--application", "web", "--version", "1.1.0")
    assert reverted["versions"] == {"web": 5}
    v5 = await j("version", "get", "web", "5")
    assert v5["settings"] == {"motd": "a\nb\nc\n", "port": 2}
    again = await j("generation", "revert", "--application", "web")  # the current version's
    assert again["versions"] == {"web": 6}

    before = digest(mongo_client, db_name)
    cases: list[tuple[list[str], int, str]] = [
        (["version", "diff", "web", "1", "2", "--key", "port"], 1, "key 'port' is not text"),
        (["version", "diff", "web", "1", "2", "--key", "banner"], 1, "key 'banner' has no value"),
        (["version", "diff", "web", "1", "2", "--key", "motd"], 1, "key 'motd' has no value"),
        (["version", "get", "web", "1.0.2"], 1, "version 1.0.2 not found for application web"),
        (["version", "get", "web", "99"], 1, "version 99 not found for application web"),
        (["version", "diff", "web", "1.0.0", "9.9.9"], 1, "version 9.9.9 not found"),
        (["version", "rollback", "web", "1", "--meta", "rollback_to=2"], 1, "rollback_to are"),
        (["generation", "revert", "--application", "web", "--version", "1"], 1, "created"),
        (["generation", "revert", "3", "--application", "web"], 2, "not both"),
        (["generation", "revert"], 2, "name the generation to revert"),
        (["generation", "revert", "--version", "1.0.0"], 2, "give both"),
    ]
    for argv in (
        ["version", "get", "web", "1.0"],
        ["version", "show", "web", "one"],
        ["version", "diff", "web", "1.0", "2"],
        ["version", "diff", "web", "1", "x.y.z"],
        ["version", "rollback", "web", "v1"],
        ["version", "tag", "web", "2.0.0", "--version", "1.0"],
        ["version", "bump", "web", "major", "--version", "latest"],
        ["key-history", "web", "port", "--before", "1.0"],
        ["generation", "revert", "--application", "web", "--version", "1.0"],
    ):
        cases.append((argv, 2, "use MAJOR.MINOR.PATCH"))
    runs = await genconf.all(*(argv for argv, _, _ in cases))
    assert digest(mongo_client, db_name) == before, "a refused command wrote something"
    for (argv, code, fragment), run in zip(cases, runs, strict=True):
        assert (run.rc, run.out) == (code, ""), (argv, run)
        assert fragment in run.err, (argv, run.err)
        assert "invalid int value" not in run.err, (argv, run.err)


async def test_version_help_names_versions_by_number_or_label(
    srv: RunningServer, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    pages = await genconf.all(
        ["version", "--help"],
        ["version", "get", "--help"],
        ["version", "diff", "--help"],
        ["version", "rollback", "--help"],
        ["generation", "revert", "--help"],
    )
    group, get, diff, rollback, revert = (" ".join(run.ok().out.split()) for run in pages)
    assert "get web 1.0.0" in group and "rollback web 1.0.1" in group
    for page in (get, diff, rollback, revert):
        assert "a version number (3) or label (1.0.0 or v1.0.0)" in page, page
    assert "--key KEY" in diff and "--meta KEY=VALUE" in rollback
    assert "--application APP" in revert
