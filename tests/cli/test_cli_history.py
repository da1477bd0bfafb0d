"""The history and token commands of `genconf`, run as subprocesses against a real server.

Their `-o json` is the stable shape of `genconf.shapes`: the exact key sets, exact
number types (versions and ids are ints, an int option's value is an int and a
float option's a float) and the same bytes for the same state.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from support.cli_runner import Genconf, Run, clean_env
from support.servers import running_server

from genconf.api.server import RunningServer
from genconf.client import Client

ADMIN = "test-admin-token-0123456789abcdef"
SCHEMA = {"port": {"type": "int", "default": 80}, "ratio": {"type": "float", "default": 0.5}}

VERSION_KEYS = {
    "application", "version", "settings", "metadata", "timestamp", "reason", "created_by",
    "on_behalf_of", "authenticated", "previous_version", "generation", "tags",
}  # fmt: skip
DIFF_KEYS = {
    "application", "from_version", "to_version", "from_label", "to_label", "added", "removed",
    "changed", "summary", "entries",
}  # fmt: skip
KEY_DIFF_KEYS = {
    "application", "key", "from_version", "to_version", "from_label", "to_label", "diff"
}  # fmt: skip
ENTRY_KEYS = {"path", "kind", "old", "new", "text_diff"}
WRITE_KEYS = {"revision", "generation", "versions", "units"}
LABEL_KEYS = {"application", "version", "label", "revision"}
LATEST_KEYS = {"application", "version", "label", "label_version"}
KEY_HISTORY_KEYS = {
    "version", "value", "is_default", "created_by", "timestamp", "reason", "generation"
}  # fmt: skip
GENERATION_KEYS = {
    "id", "kind", "branch", "changes", "created_by", "on_behalf_of", "authenticated",
    "created_at", "reason", "versions", "application_uids",
}  # fmt: skip
TOKEN_KEYS = {
    "id", "name", "role", "unit", "unit_uid", "created_by", "created_at", "expires_at",
    "revoked", "description",
}  # fmt: skip


class JsonGenconf:
    """`cli_runner.Genconf` for ``srv`` with ``-o json`` (and ``--token`` when given)."""

    def __init__(self, srv: RunningServer, tmp_path: Path) -> None:
        self.run = Genconf(srv.address, clean_env(tmp_path))

    async def __call__(self, *argv: str, token: str | None = None) -> Run:
        return await self.run(*argv, "-o", "json", *(("--token", token) if token else ()))

    async def twice(self, *argv: str, token: str | None = None) -> Run:
        """Run ``argv`` twice: the same state must print the same bytes."""
        first, second = [await self(*argv, token=token) for _ in range(2)]
        assert first.ok().out == second.ok().out, argv
        return first


def assert_errors(runs: list[Run], cases: list[tuple[list[str], int, str]]) -> None:
    """Each run exited with its case's code, ``fragment`` on stderr and nothing on stdout."""
    for (argv, code, fragment), run in zip(cases, runs, strict=True):
        assert run.rc == code, f"genconf {' '.join(argv)}: exit {run.rc}, stderr {run.err!r}"
        assert fragment in run.err, (argv, run.err)
        assert run.out == "", (argv, run.out)
        if code == 1:
            assert run.err.startswith("error: "), (argv, run.err)


async def test_history_commands(srv: RunningServer, client: Client, tmp_path: Path) -> None:
    genconf = JsonGenconf(srv, tmp_path)
    await client.create_application("web", schema=SCHEMA)
    await client.set_config("web", {"port": 8080, "ratio": 2.0}, reason="tune")
    await client.set_config("web", {"port": 9090})

    versions = (await genconf.twice("versions", "web", "--limit", "2")).json()
    assert [v["version"] for v in versions] == [3, 2]
    assert all(set(v) == VERSION_KEYS and type(v["version"]) is int for v in versions)
    shown = (await genconf.twice("version", "show", "web", "2")).json()
    assert shown == versions[1]
    assert shown["settings"] == {"port": 8080, "ratio": 2.0}
    assert type(shown["settings"]["port"]) is int and type(shown["settings"]["ratio"]) is float
    assert (shown["reason"], shown["previous_version"], shown["tags"]) == ("tune", 1, [])
    assert type(shown["generation"]) is int and shown["timestamp"].endswith("Z")
    first = (await genconf("version", "show", "web", "1")).json()
    assert set(first) == VERSION_KEYS and first["settings"] == {}
    assert (first["previous_version"], first["generation"]) == (None, None)

    diff = (await genconf.twice("version", "diff", "web", "1", "2")).json()
    assert set(diff) == DIFF_KEYS and (diff["from_version"], diff["to_version"]) == (1, 2)
    assert (diff["from_label"], diff["to_label"]) == (None, None)
    assert (diff["changed"], diff["added"], diff["removed"]) == (2, 0, 0)
    assert diff["summary"] == "web version 1 -> version 2: 2 changed, 0 added, 0 removed"
    assert all(set(e) == ENTRY_KEYS for e in diff["entries"])
    changed = {e["path"]: (e["kind"], e["old"], e["new"]) for e in diff["entries"]}
    assert changed == {"port": ("changed", 80, 8080), "ratio": ("changed", 0.5, 2.0)}
    ports, ratios = (
        [type(v) for v in changed[k][1:]] for k in ("port", "ratio")
    )  # fmt: skip
    assert ports == [int, int] and ratios == [float, float]

    rolled = (await genconf("version", "rollback", "web", "1", "--reason", "undo")).json()
    assert set(rolled) == WRITE_KEYS and rolled["versions"] == {"web": 4}
    assert type(rolled["generation"]) is int
    bumped = (await genconf("version", "bump", "web", "minor")).json()
    assert set(bumped) == LABEL_KEYS and (bumped["version"], bumped["label"]) == (4, "1.0.0")
    tagged = (await genconf("version", "tag", "web", "0.9.0", "--version", "2")).json()
    assert set(tagged) == LABEL_KEYS and (tagged["version"], tagged["label"]) == (2, "0.9.0")
    assert type(tagged["revision"]) is int
    latest = (await genconf.twice("version", "latest", "web")).json()
    assert latest == {"application": "web", "version": 4, "label": "1.0.0", "label_version": 4}
    await client.create_application("db")
    unlabelled = (await genconf("version", "latest", "db")).json()
    assert unlabelled == {"application": "db", "version": 1, "label": None, "label_version": None}

    history = (await genconf.twice("key-history", "web", "port")).json()
    assert all(set(e) == KEY_HISTORY_KEYS for e in history)
    assert [(e["version"], e["value"], e["is_default"]) for e in history] == [
        (4, 80, True), (3, 9090, False), (2, 8080, False), (1, 80, True)
    ]  # fmt: skip
    assert all(type(e["version"]) is int and type(e["value"]) is int for e in history)
    assert history[1]["reason"] == "" and history[2]["reason"] == "tune"
    ratio = (await genconf("key-history", "web", "ratio")).json()
    assert [(e["version"], e["value"]) for e in ratio] == [(4, 0.5), (2, 2.0), (1, 0.5)]
    assert all(type(e["value"]) is float for e in ratio)

    generations = (await genconf.twice("generations", "--application", "web")).json()
    assert [g["kind"] for g in generations] == ["rollback", "set", "set"]
    assert all(set(g) == GENERATION_KEYS and type(g["id"]) is int for g in generations)
    newest, tune = generations[0], generations[2]
    assert tune["versions"] == {"web": 2} and tune["reason"] == "tune" and tune["branch"] is None
    assert tune["changes"] == {
        "web": {"port": {"from": None, "to": 8080}, "ratio": {"from": None, "to": 2.0}}
    }
    to = tune["changes"]["web"]
    assert type(to["port"]["to"]) is int and type(to["ratio"]["to"]) is float
    assert newest["changes"]["web"]["port"] == {"from": 9090, "to": None}
    generation = (await genconf.twice("generation", "show", str(newest["id"]))).json()
    assert generation == newest
    reverted = (await genconf("generation", "revert", str(newest["id"]))).json()
    assert set(reverted) == WRITE_KEYS and reverted["versions"] == {"web": 5}
    assert (await client.get_version("web", 5)).settings["port"] == 9090

    # YAML is the same data.
    as_yaml = await genconf.run("version", "show", "web", "2", "-o", "yaml")
    assert yaml.safe_load(as_yaml.ok().out) == {**shown, "tags": ["0.9.0"]}

    # A commit that requires applied reports names the units that have not.
    await client.add_units("web", count=1)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"port": 1})
    await client.track_branch("canary", units=["web/0"])
    run = await genconf("branch", "commit", "canary", "--require-applied")
    assert run.rc == 1 and "web/0" in run.err and "not applied" in run.err


async def test_history_tables_are_plain_when_piped(
    srv: RunningServer, client: Client, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    await client.create_application("web", schema=SCHEMA)
    await client.set_config("web", {"port": 8080}, reason="tune")
    versions, key_history, generation = await genconf.all(
        ["versions", "web"], ["key-history", "web", "port"], ["generation", "show", "1"]
    )
    for run in (versions, key_history, generation):
        assert "\x1b" not in run.ok().out and not run.out.lstrip().startswith("{")
    rows = [line.split() for line in versions.out.splitlines()]
    assert rows[0] == ["VERSION", "TIME", "BY", "TAGS", "REASON", "CHANGES"]
    assert [(r[0], r[-2], r[-1]) for r in rows[1:]] == [
        ("2", "tune", "+port=8080"),
        ("1", "created", "(defaults)"),
    ]
    assert all(len(r[1]) == len("21:29:53") for r in rows[1:]), "today: the time only"
    assert key_history.out.splitlines()[0].split() == [
        "VERSION", "VALUE", "SOURCE", "TIME", "BY", "REASON"
    ]  # fmt: skip
    assert ["web", "port", "-", "8080"] in [line.split() for line in generation.out.splitlines()]


async def test_history_errors_exit_1_with_the_servers_message(
    srv: RunningServer, client: Client, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    await client.create_application("web", schema=SCHEMA)
    cases: list[tuple[list[str], int, str]] = [
        (["versions", "nope"], 1, "'nope' not found"),
        (["versions", "web", "--limit", "5000"], 2, "expected at most 1000, got 5000"),
        (["version", "show", "web", "99"], 1, "version 99 not found for application web"),
        (["version", "diff", "web", "1", "99"], 1, "version 99 not found for application web"),
        (["version", "diff", "web", "0"], 1, "from_version must be 1 or more"),
        (["version", "rollback", "web", "99"], 1, "version 99 not found for application web"),
        # A label is checked by the server: exit 1 with its message, not a usage error.
        (["version", "tag", "web", "one.two"], 1, "invalid version label 'one.two'"),
        (["version", "bump", "nope", "minor"], 1, "'nope' not found"),
        (["version", "bump", "web", "huge"], 2, "invalid choice"),
        (["version", "latest", "nope"], 1, "'nope' not found"),
        (["key-history", "web", "nope"], 1, "unknown config key 'nope'"),
        (["key-history", "nope", "port"], 1, "'nope' not found"),
        (["generations", "--limit=-1"], 2, "expected a number >= 0, got -1"),
        (["generations", "--before=-1"], 1, "must not be negative"),
        (["generation", "show", "99"], 1, "generation 99 not found"),
        (["generation", "revert", "99"], 1, "generation 99 not found"),
        (["generation", "show", "x"], 2, "invalid int value"),
    ]
    assert_errors(await genconf.all(*(argv for argv, _, _ in cases)), cases)


async def test_versions_and_generations_page_back_with_before(
    srv: RunningServer, client: Client, tmp_path: Path
) -> None:
    genconf = JsonGenconf(srv, tmp_path)
    await client.create_application("web", schema=SCHEMA)
    for port in (1, 2, 3):
        await client.set_config("web", {"port": port})

    async def page_back(*argv: str, number: str) -> list[int]:
        """Every entry, one page of one at a time, each before the last one seen."""
        seen: list[int] = []
        while True:
            before = ["--before", str(seen[-1])] if seen else []
            page = (await genconf(*argv, "--limit", "1", *before)).json()
            if not page:
                return seen
            assert len(page) == 1
            seen.append(page[0][number])

    assert await page_back("versions", "web", number="version") == [4, 3, 2, 1]
    assert await page_back("generations", number="id") == [3, 2, 1]
    older = (await genconf("versions", "web", "--before", "3")).json()
    assert [v["version"] for v in older] == [2, 1]
    port = (await genconf("key-history", "web", "port", "--before", "3")).json()
    assert [e["version"] for e in port] == [2, 1]


async def test_token_commands(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    async with running_server(mongo_uri, db_name, admin_token=ADMIN) as srv:
        genconf = JsonGenconf(srv, tmp_path)
        # An agent token is bound to a unit that exists (to this incarnation of it).
        run = await genconf("token", "create", "--role", "agent", "--unit", "web/0", token=ADMIN)
        assert run.rc == 1 and "unit 'web/0' not found" in run.err
        (await genconf("app", "create", "web", "--units", "1", token=ADMIN)).ok()
        created = (
            await genconf(
                "token", "create", "--role", "agent", "--unit", "web/0", "--expires", "1h",
                "--description", "web agent", "--name", "web-0 agent", token=ADMIN,
            )
        ).json()  # fmt: skip
        assert set(created) == {"token", *TOKEN_KEYS}
        assert (created["role"], created["unit"], created["revoked"]) == ("agent", "web/0", False)
        assert created["token"].startswith("gct_") and created["expires_at"].endswith("Z")
        assert (created["description"], created["name"]) == ("web agent", "web-0 agent")
        assert len(created["unit_uid"]) == 32
        observer = (await genconf("token", "create", "--role", "observer", token=ADMIN)).json()
        assert (observer["unit"], observer["expires_at"], observer["description"]) == (
            None, None, ""
        )  # fmt: skip
        assert (observer["name"], observer["unit_uid"]) == (None, None)

        listed = (await genconf.twice("token", "list", token=ADMIN)).json()
        assert [t["id"] for t in listed] == [created["id"], observer["id"]]
        assert all(set(t) == TOKEN_KEYS for t in listed)
        # The same token as creation printed, timestamps included (as stored).
        assert listed[0] == {k: v for k, v in created.items() if k != "token"}
        assert created["token"] not in json.dumps(listed)  # secrets are never listed
        table = await genconf.run("token", "list", "--token", ADMIN)
        assert table.ok().out.splitlines()[0].split() == [
            "ID", "NAME", "ROLE", "UNIT", "STATE", "CREATED", "EXPIRES", "DESCRIPTION"
        ]  # fmt: skip
        assert "web-0 agent" in table.out
        assert created["token"] not in table.out

        # The agent token may not list tokens; without a token nothing works.
        run = await genconf("token", "list", token=created["token"])
        assert run.rc == 1 and "may not call TokenService/ListTokens" in run.err
        run = await genconf("token", "list")
        assert run.rc == 1 and "bearer token" in run.err
        revoked = (await genconf("token", "revoke", created["id"], token=ADMIN)).json()
        assert revoked == {"revoked": created["id"]}
        listed = (await genconf("token", "list", token=ADMIN)).json()
        assert listed[0]["revoked"] is True and listed[1]["revoked"] is False

        cases: list[tuple[list[str], int, str]] = [
            (["token", "create", "--role", "agent"], 1, "an agent token needs --unit"),
            (["token", "create", "--role", "observer", "--unit", "web/0"], 1, "only agent"),
            # The role is one of a fixed set the parser knows: a usage error.
            (["token", "create", "--role", "root"], 2, "invalid choice: 'root'"),
            (["token", "create", "--role", "admin", "--expires", "soon"], 2, "a duration"),
            (["token", "revoke", "0123456789abcdef"], 1, "'0123456789abcdef' not found"),
            (["token", "revoke", "nope"], 1, "is not a token id"),
            (["token", "create", "--role", "admin", "--name", "x" * 65], 1, "at most 64"),
        ]
        runs = await genconf.run.all(*([*argv, "--token", ADMIN] for argv, _, _ in cases))
        assert_errors(runs, cases)
