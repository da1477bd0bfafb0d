"""The `genconf` command, run as a subprocess against a real server (the `srv`
fixture runs on this test's event loop, so commands run as asyncio subprocesses
while the loop keeps serving).

Independent commands (reads, error cases) run concurrently to keep this fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2
from support.cli_runner import Genconf, clean_env
from support.procs import ready_serve
from support.servers import free_port, running_server
from support.tls_certs import CertificateAuthority

from genconf.api.errors import abort_with
from genconf.api.server import RunningServer
from genconf.cli import main as cli
from genconf.cli.output import CELL_WIDTH_ON_TTY, ColorMode, Format, Output, visible_len
from genconf.client import Client
from genconf.errors import OutOfRange, RevisionTooOld
from genconf.store.store import Store

SCHEMA_YAML = """\
# A charm-style config.yaml.
options:
  port: {type: int, default: 8080, description: port to listen on}
  ratio: {type: float, default: 0.5, description: share of traffic}
  debug: {type: boolean, default: false, description: verbose logging}
  name: {type: string, default: web, description: display name}
  tags: {type: list, default: [], description: labels}
  features: {type: object, default: {}, description: feature flags}
"""
DEFAULTS: dict[str, Any] = {
    "port": 8080,
    "ratio": 0.5,
    "debug": False,
    "name": "web",
    "tags": [],
    "features": {},
}


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(SCHEMA_YAML)
    return path


async def test_every_command_succeeds_with_stable_json(
    genconf: Genconf, schema_file: Path, client: Client
) -> None:
    j = "-o", "json"
    web, db = await genconf.all(
        ["app", "create", "web", "--schema", str(schema_file), "--units", "2", *j],
        ["app", "create", "db", "--charm", "postgres", "--units", "1", *j],
    )
    created = web.json()
    assert created["units"] == ["web/0", "web/1"] and created["versions"] == {"web": 1}
    assert set(created) == {"revision", "generation", "versions", "units"}
    assert db.json()["units"] == ["db/0"]

    shown, again, listed, config = await genconf.all(
        ["app", "show", "web", *j], ["app", "show", "web", *j], ["app", "list", *j],
        ["config", "get", "web/1", *j],
    )  # fmt: skip
    assert shown.out == again.out, "the same state prints the same bytes"
    assert shown.json() == {
        "name": "web",
        "charm": "web",
        "version": 1,
        "units": ["web/0", "web/1"],
        "schema": {
            "debug": {"type": "boolean", "default": False, "description": "verbose logging",
                      "secret": False},
            "features": {"type": "object", "default": {}, "description": "feature flags",
                         "secret": False},
            "name": {"type": "string", "default": "web", "description": "display name",
                     "secret": False},
            "port": {"type": "int", "default": 8080, "description": "port to listen on",
                     "secret": False},
            "ratio": {"type": "float", "default": 0.5, "description": "share of traffic",
                      "secret": False},
            "tags": {"type": "list", "default": [], "description": "labels", "secret": False},
        },
        "settings": {},
        "effective": DEFAULTS,
    }  # fmt: skip
    assert [(a["name"], a["charm"]) for a in listed.json()] == [("db", "postgres"), ("web", "web")]
    unit_config = config.json()
    assert unit_config["config"] == DEFAULTS and unit_config["branch"] is None
    assert set(unit_config) == {
        "unit", "application", "branch", "config", "hash", "app_version", "revision"
    }  # fmt: skip

    # Values typed by the schema, on master.
    written = (
        await genconf(
            "config", "set", "web", "port=9090", "ratio=2", "debug=yes", "tags=[\"a\"]",
            'features={"x": 1}', "--reason", "tune", *j,
        )
    ).json()  # fmt: skip
    assert written["versions"] == {"web": 2} and written["generation"] == 1
    master = {**DEFAULTS, "port": 9090, "ratio": 2.0, "debug": True, "tags": ["a"]}
    master["features"] = {"x": 1}
    app_config, unit_config = (
        r.json()
        for r in await genconf.all(["config", "get", "web", *j], ["config", "get", "web/0", *j])
    )
    assert app_config == {
        "application": "web",
        "version": 2,
        "settings": {k: master[k] for k in ("port", "ratio", "debug", "tags", "features")},
        "effective": master,
    }
    assert unit_config["config"] == master and unit_config["app_version"] == 2
    assert type(unit_config["config"]["port"]) is int
    assert type(unit_config["config"]["ratio"]) is float
    # Writes to different objects, side by side.
    unset, charm, branch_added = await genconf.all(
        ["config", "unset", "web", "tags", "--expected-version", "2", *j],
        ["app", "set-charm", "db", "postgres-14", *j],
        ["branch", "add", "canary", *j],
    )
    assert unset.json()["versions"] == {"web": 3}
    assert charm.json()["revision"] > written["revision"]
    assert branch_added.json()["generation"] is None

    # Units.
    added = (await genconf("unit", "add", "web", *j)).json()
    assert added["units"] == ["web/2"]
    named = (await genconf("unit", "add", "web", "--name", "web/7", *j)).json()
    assert named["units"] == ["web/7"]
    removed = (await genconf("unit", "remove", "web/2", *j)).json()
    assert removed["units"] == ["web/2"]
    units, web_units, db_app = await genconf.all(
        ["unit", "list", *j], ["unit", "list", "web", *j], ["app", "show", "db", *j]
    )
    assert [u["name"] for u in units.json()] == ["db/0", "web/0", "web/1", "web/7"]
    assert web_units.json()[0] == {
        "name": "web/0", "application": "web", "branch": None, "applied": None, "labels": {}
    }  # fmt: skip
    assert db_app.json()["charm"] == "postgres-14"

    # A branch's whole life.
    tracked = (await genconf("branch", "track", "canary", "web/0", *j)).json()
    assert tracked["units"] == ["web/0"]
    (await genconf("branch", "track", "canary", "--count", "1", "--of", "db", *j)).ok()
    staged = await genconf("config", "set", "web", "port=7070", "name=canary", "--branch", "canary")
    assert staged.ok().out.strip() == "branch canary: web port=7070 name=canary"
    (await genconf("config", "unset", "web", "debug", "--branch", "canary", *j)).ok()
    diff, show, branches, on_branch = await genconf.all(
        ["branch", "diff", "canary", *j], ["branch", "show", "canary", *j],
        ["branch", "list", *j], ["config", "get", "web/0", *j],
    )  # fmt: skip
    entries = {
        e["path"]: (e["kind"], e["old"], e["new"])
        for e in diff.json()["applications"][0]["entries"]
    }
    assert entries == {
        "port": ("changed", 9090, 7070),
        "name": ("changed", "web", "canary"),
        "debug": ("changed", True, False),
    }  # fmt: skip
    assert diff.json()["applications"][0]["conflicts"] == []
    branch = show.json()
    assert branch["changes"] == {
        "web": {
            "debug": {"op": "unset", "value": None, "from": True},
            "name": {"op": "set", "value": "canary", "from": None},
            "port": {"op": "set", "value": 7070, "from": 9090},
        }
    }
    assert branch["units"] == ["db/0", "web/0"]
    assert [b["name"] for b in branches.json()] == ["canary"]
    assert on_branch.json()["branch"] == "canary"
    assert on_branch.json()["config"]["port"] == 7070
    untracked = (await genconf("branch", "untrack", "canary", "db/0", *j)).json()
    assert untracked["units"] == ["db/0"]
    committed = (await genconf("branch", "commit", "canary", "--reason", "ship", *j)).json()
    assert committed["versions"] == {"web": 4}
    after = (await genconf("config", "get", "web/1", *j)).json()
    assert after["config"]["port"] == 7070 and after["config"]["debug"] is False

    (await genconf("branch", "add", "scratch", *j)).ok()
    (await genconf("branch", "track", "scratch", "--app", "db", *j)).ok()
    aborted = (await genconf("branch", "abort", "scratch", "--force", *j)).json()
    assert set(aborted) == {"revision", "generation", "versions", "units"}
    assert (await genconf("branch", "list", *j)).json() == []
    kept = await genconf("app", "remove", "db", *j)
    assert kept.rc == 1 and "application 'db' has 1 unit(s) (db/0)" in kept.err
    assert (await genconf("app", "remove", "db", "--force", *j)).json()["revision"] > 0
    assert [a.name for a in await client.list_applications()] == ["web"]

    # YAML is the same data.
    as_yaml, as_json = await genconf.all(
        ["app", "show", "web", "-o", "yaml"], ["app", "show", "web", *j]
    )
    assert yaml.safe_load(as_yaml.ok().out) == as_json.json()


async def test_table_output_is_plain_when_piped_and_coloured_when_asked(
    genconf: Genconf, schema_file: Path
) -> None:
    (await genconf("app", "create", "web", "--schema", str(schema_file), "--units", "1")).ok()
    (await genconf("config", "set", "web", "port=9090")).ok()
    plain, coloured, config, created = await genconf.all(
        ["unit", "list"], ["unit", "list", "--color", "always"], ["config", "get", "web/0"],
        ["app", "create", "api"],
    )  # fmt: skip
    assert "\x1b" not in plain.ok().out
    assert plain.out.splitlines() == [
        "UNIT   BRANCH  STATE       APPLIED       MESSAGE",
        "web/0  -       unreported  not reported",
    ]
    assert "\x1b[1mUNIT" in coloured.ok().out
    lines = config.ok().out.splitlines()
    assert ["port", "9090", "master"] in [line.split() for line in lines]
    assert ["ratio", "0.5", "default"] in [line.split() for line in lines]
    assert created.ok().out == "created application api, no units\n"


async def test_errors_exit_1_with_the_servers_message(
    genconf: Genconf, schema_file: Path, tmp_path: Path
) -> None:
    (await genconf("app", "create", "web", "--schema", str(schema_file), "--units", "1")).ok()
    (await genconf("branch", "add", "busy")).ok()
    (await genconf("branch", "track", "busy", "web/0")).ok()
    cases: list[tuple[list[str], str]] = [
        (["app", "create", "web"], "already exists"),
        (["app", "create", "x", "--schema", str(tmp_path / "missing.yaml")], "cannot read"),
        (["app", "show", "nope"], "not found"),
        (["app", "list", "--server", "127.0.0.1:1"], "failed to connect"),
        (["app", "remove", "nope"], "not found"),
        (["app", "set-charm", "nope", "c"], "not found"),
        (["unit", "add", "nope"], "not found"),
        (["unit", "remove", "web/99"], "not found"),
        (["unit", "list", "nope"], "not found"),
        (["config", "get", "web/99"], "not found"),
        (["config", "get", "nope"], "not found"),
        (["config", "set", "web", "port=abc"], "type int"),
        (["config", "set", "web", "nope=1"], "unknown config key"),
        (["config", "set", "web", "port=1", "--expected-version", "7"], "expected version 7"),
        (["config", "set", "web", "port=1", "--branch", "nope"], "not found"),
        (["config", "unset", "web", "nope"], "nope"),
        (["branch", "add", "Bad Name"], "invalid branch name"),
        (["branch", "track", "nope", "web/0"], "not found"),
        (["branch", "untrack", "nope", "web/0"], "not found"),
        (["branch", "diff", "nope"], "not found"),
        (["branch", "commit", "nope"], "not found"),
        (["branch", "abort", "busy"], "track"),
        (["branch", "list", "--tls-ca", str(tmp_path / "no-ca.pem")], "cannot read the TLS CA"),
        (["branch", "show", "nope"], "not found"),
        (["watch", "--since", "1"], "older than the oldest retained revision"),
        (["agent", "--unit", "web/99", "--write", str(tmp_path / "a.json")], "not found"),
    ]
    runs = await genconf.all(*(argv for argv, _ in cases))
    for (argv, fragment), run in zip(cases, runs, strict=True):
        assert run.rc == 1, f"genconf {' '.join(argv)}: exit {run.rc}, stderr {run.err!r}"
        assert run.err.startswith("error: ") and fragment in run.err, (argv, run.err)
        assert run.out == "", (argv, run.out)
    assert "hint: is a genconf server running at 127.0.0.1:1?" in runs[3].err
    assert not (tmp_path / "a.json").exists()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (`cli.main` is what the process runs; no server involved)."""
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("colour: red\n")
    cases: list[tuple[list[str], str]] = [
        ([], "required"),
        (["app"], "required"),
        (["app", "list", "--frobnicate"], "unrecognized arguments"),
        (["config", "set", "web", "port"], "expected KEY=VALUE"),
        (["config", "set", "web", "port=1", "--branch", "b", "--reason", "r"], "apply to master"),
        (["branch", "track", "canary"], "name the units"),
        (["branch", "track", "canary", "--count", "2"], "--count and --of go together"),
        (["app", "list", "-o", "xml"], "invalid choice"),
        (["app", "list", "--config", str(bad_config)], "unknown key(s) ['colour']"),
        (["serve", "--feed-buffer", "0"], "--feed-buffer"),
        (["serve", "--ring-size", "-5"], "--ring-size"),
    ]
    for argv, fragment in cases:
        try:
            code = cli.main([*argv, "--server", "127.0.0.1:1"] if argv else argv)
        except SystemExit as exc:  # argparse
            code = exc.code  # type: ignore[assignment]
        err = capsys.readouterr().err
        assert code == 2, f"genconf {' '.join(argv)}: exit {code}, stderr {err!r}"
        assert fragment in err, (argv, err)


def leaf_parsers(parser: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from leaf_parsers(child, (*path, name))


async def test_help_everywhere_has_examples(genconf: Genconf) -> None:
    leaves = dict(leaf_parsers(cli.build_parser()))
    expected = {
        ("serve",), ("app", "create"), ("app", "show"), ("app", "list"), ("app", "remove"),
        ("app", "set-charm"), ("unit", "add"), ("unit", "remove"), ("unit", "list"),
        ("config", "get"), ("config", "set"), ("config", "unset"), ("branch", "add"),
        ("branch", "track"), ("branch", "untrack"), ("branch", "diff"), ("branch", "commit"),
        ("branch", "abort"), ("branch", "list"), ("branch", "show"), ("watch",), ("agent",),
        ("bench",),
    }  # fmt: skip
    assert expected <= set(leaves)
    for path, parser in leaves.items():
        text = parser.format_help()
        assert f"genconf {' '.join(path)}" in text and "Examples:" in text, path
        if path == ("bench",):
            continue  # the workload's own options, not the common ones: see below
        assert "--server" in text and "-o {table,wide,json,yaml}" in text, path
    top, leaf, usage = await genconf.all(["--help"], ["branch", "commit", "--help"], ["app"])
    assert top.ok().out.startswith("usage: genconf") and "Exit codes" in top.out
    assert "genconf branch commit canary --force" in leaf.ok().out
    assert usage.rc == 2 and "usage: genconf app" in usage.err


def test_bench_help_lists_every_workload_and_its_examples_parse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`genconf bench --help` names every workload; each workload's own --help is
    reachable through the CLI, and every flag an example uses is one it takes."""
    from genconf.bench import WORKLOADS

    text = dict(leaf_parsers(cli.build_parser()))[("bench",)].format_help()
    listed = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    for workload in WORKLOADS:
        assert len(listed.get(workload, "").split()) > 3, f"{workload} has no summary in {text}"
    examples = [line.split()[2:] for line in text.splitlines() if line.startswith("  genconf ")]
    assert len(examples) >= 3
    own_help: dict[str, str] = {}
    for workload in WORKLOADS:
        with pytest.raises(SystemExit) as done:
            cli.main(["bench", workload, "--help"])
        assert done.value.code == 0
        own_help[workload] = capsys.readouterr().out
        assert own_help[workload].startswith(f"usage: genconf bench {workload}")
    for workload, *argv in examples:
        flags = [a for a in argv if a.startswith("-")]
        assert flags and all(f in own_help[workload] for f in flags), (workload, argv)


async def test_app_create_reads_a_json_schema_and_refuses_a_malformed_one(
    genconf: Genconf, tmp_path: Path
) -> None:
    charm_style = tmp_path / "config.json"
    charm_style.write_text(
        json.dumps(
            {"options": {"port": {"type": "int", "default": 8080, "description": "listen port"}}}
        )
    )
    bare = tmp_path / "bare.json"  # the mapping without the "options" wrapper
    bare.write_text(json.dumps({"debug": {"type": "boolean", "default": True}}))
    malformed = {
        "trailing-comma.json": ('{"options": {"port": {"type": "int",}}}', "is not valid JSON"),
        "bad-type.yaml": ("options:\n  port: {type: integer-ish}\n", "has type 'integer-ish'"),
        "bad-default.yaml": ("options:\n  port: {type: int, default: eighty}\n", "type int"),
        "a-list.yaml": ("- port\n- debug\n", "must be a mapping"),
        "not-yaml.yaml": ("options: {port: [\n", "is not valid YAML"),
    }
    for name, (text, _) in malformed.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00options")
    malformed["binary.yaml"] = ("", "is not UTF-8 text")
    names = list(malformed)
    web, api, *refused = await genconf.all(
        ["app", "create", "web", "--schema", str(charm_style), "-o", "json"],
        ["app", "create", "api", "--schema", str(bare), "-o", "json"],
        *(
            ["app", "create", f"bad-{i}", "--schema", str(tmp_path / n)]
            for i, n in enumerate(names)
        ),
    )
    web.ok(), api.ok()
    for name, run in zip(names, refused, strict=True):
        fragment = malformed[name][1]
        assert run.rc == 1, (name, run.rc, run.err)
        assert run.err.startswith(f"error: schema file {tmp_path / name}"), (name, run.err)
        assert fragment in run.err and "Traceback" not in run.err, (name, run.err)
        assert run.out == "", name
    shown, listed = await genconf.all(
        ["app", "show", "web", "-o", "json"], ["app", "list", "-o", "json"]
    )
    assert shown.json()["schema"]["port"] == {
        "type": "int", "default": 8080, "description": "listen port", "secret": False
    }  # fmt: skip
    assert shown.json()["effective"] == {"port": 8080}
    assert [a["name"] for a in listed.json()] == ["api", "web"], "a refused schema creates nothing"


# -- terminal or not: colour and cut cells (genconf.cli.output) -----------------------------


class Terminal:
    """A real pseudo-terminal: ``fd`` and ``stream`` are its slave end (what a program
    on a terminal writes to); ``read()`` closes them and returns what reached the
    master end, with the terminal's CR LF turned back into LF."""

    def __init__(self) -> None:
        self._master, self.fd = os.openpty()
        self.stream: TextIO = open(self.fd, "w", encoding="utf-8")

    def read(self) -> str:
        self.stream.close()
        chunks = []
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the slave end is closed and all of it was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._master)
        return b"".join(chunks).decode().replace("\r\n", "\n")


def pipe_stream() -> tuple[TextIO, Callable[[], str]]:
    """A pipe's write end as a text stream, and a reader of what it got once closed."""
    r, w = os.pipe()
    stream = open(w, "w", encoding="utf-8")

    def read() -> str:
        stream.close()
        with open(r, encoding="utf-8") as f:
            return f.read()

    return stream, read


LONG = "x" * 100
CUT = "x" * (CELL_WIDTH_ON_TTY - 1) + "…"


def render_table(out: Output) -> list[str]:
    return out.table(["KEY", "VALUE"], [["port", "9090"], ["motd", LONG]])


@pytest.fixture
def person_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment that lets a terminal have colour (no NO_COLOR, a capable TERM)."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return monkeypatch


def test_on_a_terminal_tables_are_coloured_and_long_cells_cut(
    person_env: pytest.MonkeyPatch,
) -> None:
    tty = Terminal()
    out = Output.for_stream(Format.TABLE, ColorMode.AUTO, tty.stream)
    assert out.color and out.terminal
    out.emit({"motd": LONG}, render_table)
    assert tty.read().splitlines() == [
        "\x1b[1mKEY   VALUE\x1b[0m",
        "port  9090",
        f"motd  {CUT}",
    ]
    assert visible_len(CUT) == CELL_WIDTH_ON_TTY


def test_piped_tables_are_plain_and_complete(person_env: pytest.MonkeyPatch) -> None:
    stream, read = pipe_stream()
    out = Output.for_stream(Format.TABLE, ColorMode.AUTO, stream)
    assert not out.color and not out.terminal
    out.emit({"motd": LONG}, render_table)
    assert read().splitlines() == ["KEY   VALUE", "port  9090", f"motd  {LONG}"]


@pytest.mark.parametrize(
    ("variable", "value", "coloured"),
    [("NO_COLOR", "1", False), ("NO_COLOR", "", True), ("TERM", "dumb", False)],
)
def test_no_color_and_a_dumb_terminal_turn_colour_off_but_cells_are_still_cut(
    person_env: pytest.MonkeyPatch, variable: str, value: str, coloured: bool
) -> None:
    """NO_COLOR as no-color.org says: present and not empty."""
    person_env.setenv(variable, value)
    tty = Terminal()
    out = Output.for_stream(Format.TABLE, ColorMode.AUTO, tty.stream)
    out.emit({"motd": LONG}, render_table)
    lines = tty.read().splitlines()
    assert ("\x1b[" in lines[0]) is coloured, lines
    assert lines[-1] == f"motd  {CUT}", "a terminal is still a terminal without colour"


def test_color_flag_overrides_the_terminal_and_machine_output_is_never_cut(
    person_env: pytest.MonkeyPatch,
) -> None:
    stream, read = pipe_stream()
    Output.for_stream(Format.TABLE, ColorMode.ALWAYS, stream).emit(None, render_table)
    assert read().startswith("\x1b[1mKEY")
    tty = Terminal()
    Output.for_stream(Format.TABLE, ColorMode.NEVER, tty.stream).emit(None, render_table)
    Output.for_stream(Format.JSON, ColorMode.AUTO, tty.stream).emit({"motd": LONG})
    text = tty.read()
    assert "\x1b[" not in text
    assert text.splitlines()[:3] == ["KEY   VALUE", "port  9090", f"motd  {CUT}"]
    assert json.loads("\n".join(text.splitlines()[3:])) == {"motd": LONG}


async def test_the_cli_on_a_terminal_colours_and_cuts_and_no_color_turns_colour_off(
    genconf: Genconf, client: Client, tmp_path: Path
) -> None:
    """`genconf config get` with its stdout on a real pseudo-terminal."""
    created = await client.create_application("web", schema={"motd": {"type": "string"}}, units=1)
    written = await client.set_config("web", {"motd": LONG})
    await client.get_config("web/0", min_revision=max(created.revision, written.revision))

    async def on_terminal(**env: str) -> str:
        tty = Terminal()
        argv = ["config", "get", "web/0", "--server", genconf.server or ""]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", *argv,
            stdin=subprocess.DEVNULL, stdout=tty.fd, stderr=subprocess.PIPE,
            env={**genconf.env, "TERM": "xterm-256color", **env},
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err
        return await anyio.to_thread.run_sync(tty.read)

    coloured, uncoloured = await asyncio.gather(on_terminal(), on_terminal(NO_COLOR="1"))
    piped = (await genconf("config", "get", "web/0")).ok().out
    assert "\x1b[1m" in coloured and "\x1b[" not in uncoloured
    for text in (coloured, uncoloured):
        assert CUT in text and LONG not in text
    assert LONG in piped and "\x1b" not in piped


async def test_watch_prints_one_line_per_delta_and_resumes_with_since(
    genconf: Genconf, client: Client
) -> None:
    before = await client.create_application("web", schema={"k": {"type": "int"}}, units=1)
    await client.set_config("web", {"k": 1})
    await client.set_config("web", {"k": 2})
    table, lines = await genconf.all(
        ["watch", "--since", str(before.revision), "--count", "4"],
        ["watch", "--since", str(before.revision), "--count", "4", "-o", "json"],
    )
    deltas = [json.loads(line) for line in lines.ok().out.splitlines()]
    assert [(d["kind"], d["key"]) for d in deltas] == [
        ("application", "web"), ("generation", "1"), ("application", "web"), ("generation", "2")
    ]  # fmt: skip
    assert deltas[0]["value"]["settings"] == {"k": 1} and deltas[1]["value"]["kind"] == "set"
    text = table.ok().out.splitlines()
    assert len(text) == 4
    assert text[0][10:] == "web: at version 2 (charm web): k=1"
    assert text[2][10:] == "web: k 1 -> 2 (version 3)"

    # Resume after the first batch: the next line is the second write's.
    resumed = await genconf(
        "watch", "--since", str(deltas[1]["revision"]), "--count", "1", "-o", "json"
    )
    assert json.loads(resumed.ok().out)["value"]["settings"] == {"k": 2}
    only_units = await genconf(
        "watch",
        "--since",
        str(before.revision),
        "--kind",
        "generation",
        "--count",
        "1",
        "-o",
        "json",
    )
    assert json.loads(only_units.ok().out)["value"]["changes"] == {
        "web": {"k": {"from": None, "to": 1}}
    }


async def test_settings_come_from_flags_then_environment_then_config_file(
    srv: RunningServer, tmp_path: Path, client: Client
) -> None:
    created = await client.create_application("web")
    # The commands read the server's cache: it must hold the write first.
    await client.list_applications(min_revision=created.revision)
    dead = "127.0.0.1:1"
    config_file = tmp_path / "genconf.yaml"
    config_file.write_text(f"server: {srv.address}\noutput: json\n")
    xdg_file = tmp_path / "xdg" / "genconf" / "config.yaml"
    xdg_file.parent.mkdir(parents=True)
    xdg_file.write_text(f"server: {dead}\n")
    run = Genconf(None, clean_env(tmp_path))
    from_env, from_file, env_over_file, flag_wins, default_file = await asyncio.gather(
        run("app", "list", "-o", "json", env=clean_env(tmp_path, GENCONF_SERVER=srv.address)),
        run("app", "list", env=clean_env(tmp_path, GENCONF_CONFIG=str(config_file))),
        run(
            "app", "list", "-o", "json",
            env=clean_env(tmp_path, GENCONF_CONFIG=str(config_file), GENCONF_SERVER=dead),
        ),
        run("--server", srv.address, "app", "list", "-o", "json"),
        run("app", "list"),
    )  # fmt: skip
    assert [a["name"] for a in from_env.json()] == ["web"]
    assert [a["name"] for a in from_file.json()] == ["web"], "output: json from the file"
    assert [a["name"] for a in flag_wins.json()] == ["web"], "--server beats the default file"
    assert default_file.rc == 1 and dead in default_file.err, "the default file is read"
    assert env_over_file.rc == 1 and dead in env_over_file.err


# -- token and TLS: a stand-in server that records what arrives ----------------------------


class Recorder(grpc.GenericRpcHandler):
    """Answers every call UNAUTHENTICATED after noting its method and metadata."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        metadata = {k: v for k, v in details.invocation_metadata if isinstance(v, str)}
        self.calls.append((details.method, metadata))

        async def refuse(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "recorded")

        return grpc.unary_unary_rpc_method_handler(refuse)


@asynccontextmanager
async def generic_server(handler: grpc.GenericRpcHandler) -> AsyncIterator[str]:
    """A plaintext loopback gRPC server that answers every call with ``handler``:
    yields its address."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, Recorder]]:
    handler = Recorder()
    async with generic_server(handler) as address:
        yield address, handler


async def test_token_is_sent_as_a_bearer_on_every_call(
    recorder: tuple[str, Recorder], tmp_path: Path
) -> None:
    address, handler = recorder
    run = Genconf(address, clean_env(tmp_path, GENCONF_TOKEN="from-env"))
    flag, env = await run.all(["app", "list", "--token", "s3cret"], ["app", "list"])
    assert flag.rc == 1 and env.rc == 1 and "recorded" in flag.err
    async with Client(address, token="streams-too") as c:
        with pytest.raises(Exception, match="recorded"):
            await anext(c.watch_config("web/0", reconnect=False))
    seen = [(method.rsplit("/", 1)[1], md.get("authorization")) for method, md in handler.calls]
    assert ("ListApplications", "Bearer s3cret") in seen
    assert ("ListApplications", "Bearer from-env") in seen
    assert ("WatchConfig", "Bearer streams-too") in seen


async def test_tls_ca_connects_over_tls(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "genconf-test")
    issued = ca.server()
    cert = ca.cert_path
    handler = Recorder()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    credentials = grpc.ssl_server_credentials([(issued.key, issued.cert)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        run = Genconf(f"127.0.0.1:{port}", clean_env(tmp_path))
        secure, plain = await run.all(["app", "list", "--tls-ca", str(cert)], ["app", "list"])
    finally:
        await server.stop(None)
    assert secure.rc == 1 and "recorded" in secure.err, "the TLS call reached the server"
    assert plain.rc == 1 and "recorded" not in plain.err, "a plaintext call cannot"
    assert len(handler.calls) == 1


# -- serve: authentication on, or open on loopback and saying so -------------------------

TOKEN = "bootstrap-admin-token-0123456789"  # >= 16 characters, no spaces


@asynccontextmanager
async def serve_process(
    mongo_uri: str, db_name: str, log: Path, env: dict[str, str]
) -> AsyncIterator[str]:
    """`genconf serve` as a subprocess on a free loopback port, over the test's MongoDB:
    yields its address once it printed the ready line; afterwards SIGINT must stop it
    with exit 0. Its stderr (the log) goes to ``log``."""
    argv = ["serve", "--mongo-uri", mongo_uri, "--database", db_name]
    argv += ["--listen", "127.0.0.1:0", "--bookmark-interval", "0.2"]
    async with ready_serve(argv, env, log) as (address, _):
        yield address


async def test_serve_without_auth_is_open_on_loopback_and_logs_that(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    async with serve_process(mongo_uri, db_name, log, clean_env(tmp_path)) as address:
        listed = await Genconf(address, clean_env(tmp_path))("app", "list", "-o", "json")
        assert listed.json() == [], "no token needed"
    text = log.read_text()
    assert "without authentication: loopback only" in text, text


async def test_serve_takes_the_admin_token_from_the_environment(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    env = clean_env(tmp_path, GENCONF_ADMIN_TOKEN=f"  {TOKEN}\n")  # blanks around: dropped
    async with serve_process(mongo_uri, db_name, log, env) as address:
        run = Genconf(address, clean_env(tmp_path))
        created = await run("app", "create", "web", "--token", TOKEN, "-o", "json")
        assert created.json()["versions"] == {"web": 1}
        anonymous, wrong, from_env = await run.all(
            ["app", "list"],
            ["app", "list", "--token", TOKEN + "x"],
            ["app", "list", "-o", "json", "--token", TOKEN],
        )
    assert anonymous.rc == 1 and anonymous.err.startswith("error: "), anonymous
    assert "requires a bearer token" in anonymous.err and anonymous.out == ""
    assert wrong.rc == 1 and wrong.err.startswith("error: ") and wrong.out == ""
    assert [a["name"] for a in from_env.json()] == ["web"]
    text = log.read_text()
    assert "authentication on" in text and "without authentication" not in text, text
    assert TOKEN not in text, "the token is never logged"


async def test_serve_refuses_to_start_open_on_a_network_or_with_an_empty_token(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """Each refusal exits 1 (the operation failed) before anything starts, with a
    message saying how to configure authentication; nothing is listening after."""
    empty, blank, short = tmp_path / "empty", tmp_path / "blank", tmp_path / "short"
    empty.write_text("")
    blank.write_text("  \n\n")
    short.write_text("short\n")
    serve = ["serve", "--mongo-uri", mongo_uri, "--database", db_name]
    loopback = [*serve, "--listen", "127.0.0.1:0"]
    run = Genconf(None, clean_env(tmp_path))
    cases: list[tuple[list[str], dict[str, str], list[str]]] = [
        ([*serve, "--listen", "0.0.0.0:0"], {}, ["refusing to listen on 0.0.0.0:0 without "
          "authentication", "--admin-token-file FILE or GENCONF_ADMIN_TOKEN", "127.0.0.1"]),
        ([*loopback, "--admin-token-file", str(empty)], {}, [str(empty), "empty", "at least 16"]),
        ([*loopback, "--admin-token-file", str(blank)], {}, [str(blank), "empty", "urlsafe"]),
        ([*loopback, "--admin-token-file", str(tmp_path / "missing")], {}, ["cannot read"]),
        ([*loopback, "--admin-token-file", str(short)], {}, ["at least 16 characters"]),
        (loopback, {"GENCONF_ADMIN_TOKEN": " "}, ["GENCONF_ADMIN_TOKEN", "empty", "at least 16"]),
    ]  # fmt: skip
    runs = await asyncio.gather(
        *(run(*argv, env=clean_env(tmp_path, **env)) for argv, env, _ in cases)
    )
    for (argv, env, fragments), done in zip(cases, runs, strict=True):
        assert done.rc == 1, (argv, env, done.rc, done.err)
        assert done.err.startswith("error: ") and done.out == "", (argv, done.err)
        assert all(f in done.err for f in fragments), (argv, env, done.err)
        assert "Traceback" not in done.err and "listening on" not in done.err, done.err


# -- watch: across a server restart, and stopped with Ctrl-C -------------------------------


async def watch_process(
    address: str, *args: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genconf.cli.main", "watch", "--server", address, *args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


async def line_of(stream: asyncio.StreamReader | None, containing: str = "") -> str:
    """The next line of ``stream`` that contains ``containing`` (an event: the child
    printed it), within a generous bound."""
    assert stream is not None
    with anyio.fail_after(60):
        while True:
            line = (await stream.readline()).decode()
            assert line, f"EOF before a line with {containing!r}"
            if containing in line:
                return line


async def test_watch_survives_a_server_restart_and_says_what_it_cannot_replay(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """Three watches of one server: one gets Ctrl-C while following (exit 0), one
    while the server is down and it is reconnecting (exit 0), and one reconnects to
    the restarted server, which no longer holds its revision (a change landed while
    it was down): exit 1 with a message saying so, never a silent gap."""
    listen = f"127.0.0.1:{free_port()}"
    env = clean_env(tmp_path)
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with running_server(mongo_uri, db_name, listen=listen):
            async with Client(listen, timeout=10) as c:
                created = await c.create_application("web", schema={"k": {"type": "int"}})
                first = await c.set_config("web", {"k": 1})
            since = ["--since", str(created.revision), "--kind", "application", "-o", "json"]
            procs += [await watch_process(listen, *since, env=env) for _ in range(3)]
            resumes, interrupted_down, interrupted_live = procs
            for proc in procs:
                delta = json.loads(await line_of(proc.stdout))
                assert delta["revision"] == first.revision
                assert delta["value"]["settings"] == {"k": 1}
            interrupted_live.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(interrupted_live.communicate(), 30)
            assert interrupted_live.returncode == 0 and out == b"", err
            assert b"error" not in err and b"Traceback" not in err, err

        for proc in (resumes, interrupted_down):
            assert "reconnecting" in await line_of(proc.stderr, "genconf watch: ")
            assert proc.returncode is None, "a watch outlives its server"
        interrupted_down.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(interrupted_down.communicate(), 30)
        assert interrupted_down.returncode == 0, err
        assert b"Traceback" not in err

        store = Store.connect(mongo_uri, db_name)
        try:
            await store.set_config("web", set={"k": 2})  # while no server is up
        finally:
            await store.aclose()
        async with running_server(mongo_uri, db_name, listen=listen):
            out, err = await asyncio.wait_for(resumes.communicate(), 60)
        text = err.decode()
        assert resumes.returncode == 1, text
        assert out == b"", "nothing printed after the gap"
        error = text[text.index("error: ") :]
        assert f"revision {first.revision} is older than the oldest retained" in error, text
        assert "`genconf watch` without --since follows from now" in error, text
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


class RestartingServer(grpc.GenericRpcHandler):
    """Stands in for a server that goes away and comes back: its first watch ends
    UNAVAILABLE, then health says NOT_SERVING twice (its cache is syncing) before
    SERVING, and a watch while it is not serving is refused as a real one would be
    (OUT_OF_RANGE: the revision is ahead of its empty cache)."""

    def __init__(self) -> None:
        self.health = iter(["SERVING", "NOT_SERVING", "NOT_SERVING", "SERVING"])
        self.serving = False
        self.calls: list[str] = []

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method.rsplit("/", 1)[1]
        if method == "Check":

            async def check(request: Any, context: Any) -> health_pb2.HealthCheckResponse:
                status = next(self.health)
                self.serving = status == "SERVING"
                self.calls.append(status)
                return health_pb2.HealthCheckResponse(
                    status=health_pb2.HealthCheckResponse.ServingStatus.Value(status)
                )

            return grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        if method == "WatchDeltas":

            async def watch(request: Any, context: Any) -> AsyncIterator[bytes]:
                first = "WatchDeltas" not in self.calls
                self.calls.append("WatchDeltas")
                if first:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
                if not self.serving:
                    await abort_with(context, OutOfRange("7 is ahead of this server"))
                # As the server says it: the details name the error (`api.errors`).
                await abort_with(context, RevisionTooOld("7 is older than the oldest"))
                yield b""  # unreachable: makes this an async generator

            return grpc.unary_stream_rpc_method_handler(
                watch, request_deserializer=lambda b: b, response_serializer=lambda b: b
            )
        return None


async def test_a_reconnecting_watch_waits_until_the_server_is_serving(tmp_path: Path) -> None:
    handler = RestartingServer()
    async with generic_server(handler) as address:
        done = await Genconf(address, clean_env(tmp_path))("watch", "--since", "7")
    assert handler.calls == [
        "SERVING", "WatchDeltas", "NOT_SERVING", "NOT_SERVING", "SERVING", "WatchDeltas"
    ]  # fmt: skip
    assert done.rc == 1 and "is older than the oldest" in done.err, done.err
    assert "the server is NOT_SERVING; waiting" in done.err
    assert "`genconf watch` without --since follows from now" in done.err
