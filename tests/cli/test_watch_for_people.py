"""`genconf watch` for people: lines that say what changed, with a time, a first line
saying where the watch follows from, one line while the server is away, and a watch
without --since that follows from now after a restart (issue 20, item 5).

The first half draws lines from deltas built here (no server); the second runs the
real CLI against a real server, stopped and restarted, and checks that `-o json` and
`-o yaml` print exactly what they printed before.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.cli_runner import Genconf, clean_env
from support.servers import background_server, free_port, running_server

from genconf import shapes, wire
from genconf.api.server import RunningServer
from genconf.cli import watch_lines as say
from genconf.cli.output import to_yaml
from genconf.cli.watch_lines import WatchLines
from genconf.client import Client
from genconf.client.requests import schema_to_proto
from genconf.store.store import Store
from genconf.v1 import admin_pb2, rollout_pb2, types_pb2

# -- deltas as the server sends them ------------------------------------------------

SCHEMA = {"port": {"type": "int", "default": 8080}, "motd": {"type": "string"}}
NOW = dt.datetime(2026, 3, 4, 11, 9, 24, tzinfo=dt.UTC)


def app_delta(
    name: str = "web",
    settings: Mapping[str, Any] | None = None,
    *,
    version: int = 1,
    charm: str = "web",
    schema: Mapping[str, Mapping[str, Any]] = SCHEMA,
) -> admin_pb2.Delta:
    settings = dict(settings or {})
    defaults = {k: o["default"] for k, o in schema.items() if "default" in o}
    app = types_pb2.Application(
        name=name,
        charm=charm,
        schema=schema_to_proto(schema),
        settings=wire.to_struct(settings),
        effective=wire.to_struct({**defaults, **settings}),
        version=version,
    )
    return admin_pb2.Delta(kind="application", key=name, application=app)


def unit_delta(
    name: str, *, branch: str = "", report: tuple[str, bool, str] | None = None
) -> admin_pb2.Delta:
    unit = types_pb2.Unit(name=name, application=name.split("/")[0], branch=branch)
    if report is not None:
        hash_, ok, message = report
        unit.applied.CopyFrom(types_pb2.AppliedReport(hash=hash_, ok=ok, message=message))
        unit.applied.at.FromDatetime(NOW - dt.timedelta(minutes=5))
    return admin_pb2.Delta(kind="unit", key=name, unit=unit)


def branch_delta(
    name: str,
    *,
    staged: Mapping[str, Mapping[str, Any]] | None = None,
    apps: tuple[str, ...] = (),
    by: str = "",
) -> admin_pb2.Delta:
    branch = types_pb2.Branch(name=name, created_by=by, track_applications=list(apps))
    for app, keys in (staged or {}).items():
        group = branch.changes.add(application=app)
        for key, value in keys.items():
            change = group.changes.add(key=key, op="set" if value is not None else "unset")
            if value is not None:
                change.value.CopyFrom(wire.to_value(value))
    return admin_pb2.Delta(kind="branch", key=name, branch=branch)


def generation_delta(
    id: int,
    kind: str,
    versions: Mapping[str, int],
    *,
    changes: Mapping[str, Mapping[str, tuple[Any, Any]]] | None = None,
    branch: str = "",
    by: str = "",
    reason: str = "",
) -> admin_pb2.Delta:
    gen = types_pb2.Generation(
        id=id, kind=kind, branch=branch, created_by=by, reason=reason, versions=dict(versions)
    )
    gen.created_at.FromDatetime(NOW)
    for app, keys in (changes or {}).items():
        group = gen.changes.add(application=app)
        for key, (old, new) in keys.items():
            change = group.changes.add(key=key, has_from=old is not None, has_to=new is not None)
            if old is not None:
                getattr(change, "from").CopyFrom(wire.to_value(old))
            if new is not None:
                change.to.CopyFrom(wire.to_value(new))
    return admin_pb2.Delta(kind="generation", key=str(id), generation=gen)


def removed(kind: str, key: str) -> admin_pb2.Delta:
    return admin_pb2.Delta(kind=kind, key=key, removed=True)


def seeded(*deltas: admin_pb2.Delta) -> WatchLines:
    """Lines that start from a snapshot holding what ``deltas`` describe."""
    snapshot = admin_pb2.SnapshotResponse(revision=1)
    for d in deltas:
        getattr(snapshot, {"branch": "branches"}.get(d.kind, d.kind + "s")).append(
            getattr(d, d.kind)
        )
    lines = WatchLines()
    lines.seed(snapshot)
    return lines


def texts(lines: WatchLines, *deltas: admin_pb2.Delta, revision: int = 7) -> list[str]:
    return lines.texts([shapes.delta_view(revision, d) for d in deltas])


# -- lines: what changed, once ----------------------------------------------------


def test_a_new_application_and_its_units_and_each_key_with_its_old_and_new_value() -> None:
    lines = seeded()
    assert texts(lines, app_delta(), unit_delta("web/0"), unit_delta("web/1")) == [
        "web: application created (charm web, version 1)",
        "web: units web/0, web/1 added",
    ]
    assert texts(lines, app_delta(settings={"port": 9090}, version=2)) == [
        "web: port 8080 -> 9090 (version 2)"
    ]
    # Units added: the application's own delta shows nothing new, so no line.
    assert texts(lines, unit_delta("web/2"), app_delta(settings={"port": 9090}, version=2)) == [
        "web: units web/2 added"
    ]
    two_keys = app_delta(settings={"port": 9090, "motd": "hello\nworld"}, version=3)
    assert texts(lines, two_keys) == ["web: motd absent -> hello⏎world (version 3)"]
    assert texts(lines, app_delta(settings={"motd": "hello\nworld"}, version=4)) == [
        "web: port 9090 -> default 8080 (version 4)"
    ]
    assert texts(lines, app_delta(settings={"port": 8080, "motd": "hello\nworld"}, version=5)) == [
        "web: port default 8080 -> 8080 (version 5)"
    ]
    assert texts(lines, removed("unit", "web/0"), removed("unit", "web/1")) == [
        "web: units web/0, web/1 removed"
    ]
    assert texts(lines, removed("application", "web")) == ["web: application removed"]


def test_charm_and_schema_changes_are_named() -> None:
    lines = seeded(app_delta())
    schema = {**SCHEMA, "tls": {"type": "boolean", "default": False}}
    assert texts(lines, app_delta(charm="web2", schema=schema, version=2)) == [
        "web: charm web -> web2, options added: tls, tls absent -> false (version 2)"
    ]


def test_long_values_are_cut_on_a_terminal_only() -> None:
    long = "x" * 60
    on_terminal, piped = seeded(app_delta()), WatchLines(width=None)
    piped.seed(admin_pb2.SnapshotResponse(applications=[app_delta().application]))
    change = app_delta(settings={"motd": long}, version=2)
    assert texts(on_terminal, change) == [f"web: motd absent -> {'x' * 39}… (version 2)"]
    assert texts(piped, change) == [f"web: motd absent -> {long} (version 2)"]


def test_a_branch_tracked_staged_and_committed() -> None:
    lines = seeded(app_delta(), unit_delta("web/0"), unit_delta("web/1"))
    assert texts(lines, branch_delta("canary", by="alice")) == ["branch canary added by alice"]
    assert texts(
        lines, unit_delta("web/0", branch="canary"), unit_delta("web/1", branch="canary")
    ) == ["branch canary: tracked by web/0, web/1"]
    assert texts(lines, branch_delta("canary", staged={"web": {"motd": "hi"}})) == [
        "branch canary: web motd absent -> hi"
    ]
    assert texts(lines, branch_delta("canary", staged={"web": {"motd": "hello"}})) == [
        "branch canary: web motd hi -> hello"
    ]
    assert texts(lines, unit_delta("web/1")) == ["branch canary: no longer tracked by web/1"]
    commit = generation_delta(
        4, "commit", {"web": 2}, branch="canary", by="alice", reason="commit branch canary"
    )
    # The commit releases the units and removes the branch: its own line says so.
    assert texts(
        lines,
        app_delta(settings={"motd": "hello"}, version=2),
        commit,
        unit_delta("web/0"),
        removed("branch", "canary"),
    ) == [
        "web: motd absent -> hello (version 2)",
        "branch canary committed as generation 4 by alice: web v2",
    ]


def test_an_aborted_branch_and_one_that_tracks_a_whole_application() -> None:
    lines = seeded(app_delta(), unit_delta("web/0"), branch_delta("b2"))
    # Tracking web/* moves its units too: the branch's line covers them.
    assert texts(lines, branch_delta("b2", apps=("web",)), unit_delta("web/0", branch="b2")) == [
        "branch b2: tracked by web/*"
    ]
    assert texts(lines, unit_delta("web/0"), removed("branch", "b2")) == ["branch b2 aborted"]


def test_unit_reports_say_applied_or_failed_once() -> None:
    lines = seeded(unit_delta("web/0"))
    failed = unit_delta("web/0", report=("a" * 64, False, "exit 3"))
    assert texts(lines, failed) == ["web/0: failed to apply aaaaaaaaaaaa: exit 3"]
    assert texts(lines, failed) == [], "the same report again says nothing new"
    assert texts(lines, unit_delta("web/0", report=("b" * 64, True, ""))) == [
        "web/0: applied bbbbbbbbbbbb ok"
    ]


def test_generations_show_their_keys_only_when_no_application_line_does() -> None:
    lines = seeded(app_delta())
    gen = generation_delta(
        3, "set", {"web": 2}, changes={"web": {"port": (None, 9090)}}, by="bob", reason="move"
    )
    assert texts(lines, app_delta(settings={"port": 9090}, version=2), gen) == [
        "web: port 8080 -> 9090 (version 2)",
        'generation 3 (set) by bob: web v2, reason "move"',
    ]
    # --kind generation: the generation's own record says what changed.
    assert texts(WatchLines(), gen) == [
        'generation 3 (set) by bob: web v2 (port absent -> 9090), reason "move"'
    ]
    only = WatchLines()
    assert texts(only, gen) and texts(only, gen) == [], "the same line is not repeated"


def test_a_replay_shows_an_entity_first_seen_as_it_is_then_what_changes() -> None:
    """Following a replay (--since) there is no snapshot: an entity's first delta has
    nothing to compare with, and a unit first seen may not be new."""
    lines = WatchLines()
    assert texts(lines, app_delta(settings={"port": 9090}, version=3), unit_delta("web/4")) == [
        "web: at version 3 (charm web): port=9090",
        "web/4: on master, not reported",
    ]
    assert texts(lines, app_delta(settings={"port": 9091}, version=4)) == [
        "web: port 9090 -> 9091 (version 4)"
    ]
    assert texts(lines, branch_delta("canary")) == ["branch canary: nothing staged"]
    # Seen removed, then back: now it is known to be new.
    texts(lines, removed("unit", "web/4"))
    assert texts(lines, unit_delta("web/4")) == ["web: units web/4 added"]


def test_each_line_has_the_time_the_delta_carries_or_the_time_it_came() -> None:
    lines = seeded(unit_delta("web/0"), app_delta())
    received = NOW + dt.timedelta(hours=1)
    on = NOW.astimezone().strftime("%H:%M:%S")

    def batch(*deltas: admin_pb2.Delta, at: dt.datetime = received) -> list[str]:
        return lines.batch([shapes.delta_view(9, d) for d in deltas], at)

    gen = generation_delta(2, "set", {"web": 2})
    assert batch(app_delta(settings={"port": 1}, version=2), gen)[0] == (
        f"{on}  web: port 8080 -> 1 (version 2)"
    )
    report = batch(unit_delta("web/0", report=("c" * 64, True, "")))
    five_before = (NOW - dt.timedelta(minutes=5)).astimezone().strftime("%H:%M:%S")
    assert report == [f"{five_before}  web/0: applied cccccccccccc ok"]
    assert batch(unit_delta("web/1")) == [
        f"{received.astimezone():%H:%M:%S}  web: units web/1 added"
    ]
    # A replayed change from another day carries its date.
    assert batch(generation_delta(3, "set", {"web": 3}), at=NOW + dt.timedelta(days=2)) == [
        f"{NOW.astimezone():%Y-%m-%d %H:%M:%S}  generation 3 (set): web v3"
    ]


def test_the_words_of_the_first_line_and_of_the_server_going_away() -> None:
    assert say.header(42, replay=False) == "following every change from now (revision 42)"
    assert say.header(42, replay=True, kinds=["unit"], applications=["web", "db"]) == (
        "replaying changes after revision 42, then following; kinds: unit; applications: web, db"
    )
    refused = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Failed to connect to remote host: Connection refused"
    )
    assert say.away(refused) == "server away (connection refused); reconnecting…"
    assert say.away("the server is shutting down; resume elsewhere") == (
        "server away (the server is shutting down); reconnecting…"
    )
    assert say.value_text("x" * 100) == "x" * 39 + "…"
    assert say.value_text(None) == "absent" and say.value_text({"a": 1}) == '{"a":1}'


# -- the real CLI against a real server ----------------------------------------------

TIMED = re.compile(r"^\d\d:\d\d:\d\d  ")
HEADER = re.compile(r"following every change from now \(revision (\d+)\)")


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


async def watch_process(
    address: str, *args: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genconf.cli.main", "watch", "--server", address, *args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


async def next_line(stream: asyncio.StreamReader | None) -> str:
    """The next line the child prints (an event), within a generous bound."""
    assert stream is not None
    with anyio.fail_after(60):
        line = (await stream.readline()).decode()
    assert line, "EOF before the line expected"
    return line.rstrip("\n")


async def changes(stream: asyncio.StreamReader | None, n: int = 2) -> list[str]:
    """The next ``n`` lines, each checked for its time and given without it."""
    lines = [await next_line(stream) for _ in range(n)]
    assert all(TIMED.match(line) for line in lines), lines
    return [line[10:] for line in lines]


async def line_with(stream: asyncio.StreamReader | None, text: str, seen: list[str]) -> str:
    """Lines up to the first that holds ``text`` (all of them kept in ``seen``)."""
    while True:
        line = await next_line(stream)
        seen.append(line)
        if text in line:
            return line


async def stop(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    """Ctrl-C, as a person stops it: exit 0, and the rest of what it printed."""
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    return out.decode(), err.decode()


@contextmanager
def reaped(procs: list[asyncio.subprocess.Process]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()


async def test_a_person_sees_where_it_follows_from_and_what_changed(
    srv: RunningServer, client: Client, tmp_path: Path
) -> None:
    await client.create_application("db", schema={"size": {"type": "int", "default": 1}})
    proc = await watch_process(srv.address, env=clean_env(tmp_path))
    with reaped([proc]):
        header = await next_line(proc.stderr)
        start = HEADER.fullmatch(header)
        assert start, header
        await client.create_application("web", schema=SCHEMA, units=2)
        await client.set_config("web", {"port": 9090}, reason="move port")
        await client.add_units("web", count=1)
        last = await client.set_config("db", {"size": 3})
        lines = [await next_line(proc.stdout) for _ in range(7)]
        out, err = await stop(proc)
    assert all(TIMED.match(line) for line in lines), lines
    assert [line[10:] for line in lines] == [
        "web: application created (charm web, version 1)",
        "web: units web/0, web/1 added",
        "web: port 8080 -> 9090 (version 2)",
        'generation 1 (set): web v2, reason "move port"',
        # add_units: the application's delta shows nothing new and prints nothing.
        "web: units web/2 added",
        # db existed before the watch: the snapshot it started from gives the old value.
        "db: size 1 -> 3 (version 2)",
        "generation 2 (set): db v2",
    ]
    assert out == ""
    assert f"stopped after revision {last.revision}" in err, err
    assert int(start.group(1)) < last.revision


async def test_the_first_line_names_the_replay_and_the_filters(
    genconf: Genconf, client: Client
) -> None:
    before = await client.create_application("web", schema=SCHEMA, units=1)
    await client.add_units("web", count=1)
    await client.set_config("web", {"port": 1})
    done = await genconf(
        "watch", "--since", str(before.revision), "--kind", "unit", "--app", "web", "--count", "1"
    )
    assert done.ok().err == (
        f"replaying changes after revision {before.revision}, then following; "
        "kinds: unit; applications: web\n"
    )
    # A replay has no snapshot to compare with: a unit first seen is shown as it is.
    assert TIMED.match(done.out) and done.out[10:] == "web/1: on master, not reported\n"


async def test_json_and_yaml_print_each_delta_as_before(genconf: Genconf, client: Client) -> None:
    """Machines rely on these bytes: one sorted JSON object (or YAML document) per
    delta, as `shapes.delta_view` gives it, and nothing on stderr."""
    before = await client.create_application("web", schema=SCHEMA, units=2)
    await client.set_config("web", {"motd": "héllo\nworld"})
    await client.add_branch("canary")
    await client.track_branch("canary", units=["web/0"])
    await client.set_branch_config("canary", "web", {"port": 1})
    last = await client.commit_branch("canary", force=True)
    views = []
    async for batch in client.watch_deltas(since_revision=before.revision):
        views += [shapes.delta_view(batch.revision, d) for d in batch.deltas]
        if batch.revision >= last.revision:
            break
    n = str(len(views))
    as_json, as_yaml = await genconf.all(
        ["watch", "--since", str(before.revision), "--count", n, "-o", "json"],
        ["watch", "--since", str(before.revision), "--count", n, "-o", "yaml"],
    )
    assert as_json.ok().out == "".join(
        json.dumps(v, sort_keys=True, ensure_ascii=False) + "\n" for v in views
    )
    assert as_yaml.ok().out == "".join("---\n" + to_yaml(v) for v in views)
    assert as_json.err == "" and as_yaml.err == ""


async def test_a_replica_going_away_is_said_once_and_so_is_its_return(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """Two replicas: the one serving the watch stops; the other holds the revision
    the watch printed last, so it resumes there and says it is back."""
    async with AsyncExitStack() as first, AsyncExitStack() as second:
        replicas = [
            await first.enter_async_context(background_server(mongo_uri, db_name)),
            await second.enter_async_context(background_server(mongo_uri, db_name)),
        ]
        target = ",".join(r.address for r in replicas)
        async with Client(replicas[0].address, timeout=10) as c:
            await c.create_application("web", schema=SCHEMA)
            proc = await watch_process(target, env=clean_env(tmp_path))
            err: list[str] = []
            with reaped([proc]):
                await line_with(proc.stderr, "following every change from now", err)
                written = await c.set_config("web", {"port": 1})
                assert await changes(proc.stdout) == [
                    "web: port 8080 -> 1 (version 2)",
                    "generation 1 (set): web v2",
                ]
                feeding = [r.read.cache.statistics().feeds for r in replicas]
                assert sorted(feeding) == [0, 1], feeding
                serving = feeding.index(1)
                await (first, second)[serving].aclose()
                other = replicas[1 - serving]
                away = await line_with(proc.stderr, "server away (", err)
                back = await line_with(proc.stderr, "back at revision", err)
                async with Client(other.address, timeout=10) as o:
                    await o.set_config("web", {"port": 2})
                assert await changes(proc.stdout) == [
                    "web: port 1 -> 2 (version 3)",
                    "generation 2 (set): web v3",
                ]
                out, rest = await stop(proc)
    assert TIMED.match(away) and away.endswith("); reconnecting…"), away
    assert back[10:] == f"back at revision {written.revision}"
    assert out == "" and sum("server away" in line for line in err) == 1, err
    assert "stopped after revision" in rest


async def test_after_a_restart_a_watch_from_now_says_so_and_one_since_a_revision_fails(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """A change lands while the server is down, and the restarted server cannot
    replay it. A person's watch (no --since) says the server is away once, however
    often it retries, then that changes were lost, and follows from now; a script's
    (--since) exits 1 with the hint, as before."""
    listen = f"127.0.0.1:{free_port()}"
    env = clean_env(tmp_path)
    person_err: list[str] = []
    script_err: list[str] = []
    procs: list[asyncio.subprocess.Process] = []
    with reaped(procs):
        async with running_server(mongo_uri, db_name, listen=listen):
            async with Client(listen, timeout=10) as c:
                created = await c.create_application("web", schema=SCHEMA)
                person = await watch_process(listen, env=env)
                script = await watch_process(listen, "--since", str(created.revision), env=env)
                procs += [person, script]
                await line_with(person.stderr, "following every change from now", person_err)
                await line_with(script.stderr, "replaying changes after revision", script_err)
                seen = await c.set_config("web", {"port": 1})
            generation = "generation 1 (set): web v2"
            assert await changes(person.stdout) == ["web: port 8080 -> 1 (version 2)", generation]
            # A replay has no snapshot: the application's first delta shows its state.
            assert await changes(script.stdout) == [
                "web: at version 2 (charm web): port=1",
                generation,
            ]

        await line_with(person.stderr, "server away (", person_err)
        await line_with(script.stderr, "server away (", script_err)
        store = Store.connect(mongo_uri, db_name)
        try:
            lost = await store.set_config("web", set={"port": 3})  # while no server is up
        finally:
            await store.aclose()
        async with running_server(mongo_uri, db_name, listen=listen):
            restarted = await line_with(person.stderr, "the server restarted", person_err)
            out, err = await asyncio.wait_for(script.communicate(), 60)
            async with Client(listen, timeout=10) as c:
                after = await c.set_config("web", {"port": 4})
            # From the restarted server's present: the lost change is the old value.
            assert await changes(person.stdout) == [
                "web: port 3 -> 4 (version 4)",
                "generation 3 (set): web v4",
            ]
            person_out, person_rest = await stop(person)
    script_rest = err.decode()
    assert script.returncode == 1, script_rest
    assert out == b"", "nothing printed after the gap"
    assert f"revision {seen.revision} is older than the oldest retained" in script_rest
    assert "`genconf watch` without --since follows from now" in script_rest
    assert TIMED.match(restarted), restarted
    match = re.search(
        r"the server restarted and lost the changes after revision (\d+) \(or they outran "
        r"its --ring-size\); following from now \(revision (\d+)\)$",
        restarted,
    )
    assert match, restarted
    assert int(match.group(1)) == seen.revision and int(match.group(2)) >= lost.revision
    assert person_out == "" and f"stopped after revision {after.revision}" in person_rest
    for err_lines in (person_err, script_err + script_rest.splitlines()):
        assert sum("server away" in line for line in err_lines) == 1, err_lines


def test_a_rollout_says_its_state_step_and_why() -> None:
    def rollout_delta(state: str, step: int, phase: str, why: str) -> admin_pb2.Delta:
        r = rollout_pb2.Rollout(branch="gradual", application="web", state=state, step=step)
        r.phase = phase
        for size in ({"units": 1}, {"percent": 50.0}, {"percent": 100.0}):
            r.steps.add(**size)
        r.transitions.add(to=state, step=step, why=why)
        return admin_pb2.Delta(kind="rollout", key="gradual", rollout=r)

    lines = WatchLines()
    waiting = rollout_delta("running", 1, "waiting", "tracked 5 unit(s)")
    assert texts(lines, waiting) == [
        "rollout gradual: running, step 2/3 (50%), waiting: tracked 5 unit(s)"
    ]
    assert texts(lines, waiting) == [], "the same state again says nothing new"
    paused = rollout_delta("paused", 1, "waiting", "1 unit(s) failed: web/3")
    assert texts(lines, paused) == [
        "rollout gradual: paused at step 2/3 (50%): 1 unit(s) failed: web/3"
    ]
    assert texts(lines, removed("rollout", "gradual")) == ["rollout gradual removed"]
