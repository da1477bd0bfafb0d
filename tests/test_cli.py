"""The `genconf` command, run as a subprocess against a real server (the `srv`
fixture runs on this test's event loop, so commands run as asyncio subprocesses
while the loop keeps serving).

Independent commands (reads, error cases) run concurrently to keep this fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from cli_runner import Genconf, clean_env
from tls_certs import CertificateAuthority

from genconf import cli
from genconf.client import Client
from genconf.server import RunningServer

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
        "name": "web/0", "application": "web", "branch": None, "applied": None
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
    assert (await genconf("app", "remove", "db", *j)).json()["revision"] > 0
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
        "UNIT   BRANCH  APPLIED       MESSAGE",
        "web/0  -       not reported",
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
        if path == ("bench",):
            continue  # genconf.bench documents its own workloads
        text = parser.format_help()
        assert f"genconf {' '.join(path)}" in text and "Examples:" in text, path
        assert "--server" in text and "-o {table,json,yaml}" in text, path
    top, leaf, usage = await genconf.all(["--help"], ["branch", "commit", "--help"], ["app"])
    assert top.ok().out.startswith("usage: genconf") and "Exit codes" in top.out
    assert "genconf branch commit canary --force" in leaf.ok().out
    assert usage.rc == 2 and "usage: genconf app" in usage.err


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
    assert text[0].split()[:3] == [str(deltas[0]["revision"]), "application", "web"]
    assert "k=1" in text[0] and "k=2" in text[2]

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


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, Recorder]]:
    handler = Recorder()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", handler
    finally:
        await server.stop(None)


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
