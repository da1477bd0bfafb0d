"""The image's entrypoint in agent mode (`docker run IMAGE agent`): `genconf agent`
with the options it is not given taken from the environment, the unit from a pod or
node name, the token from a mounted file. In-process for the rules, and as the image
runs it (a child process) against a real TLS server with authentication on."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from deploy_kit import (
    ENTRYPOINT,
    SERVICE_NAME,
    admin_client,
    clean_environ,
    entrypoint_process,
    load_entrypoint,
    service_certificate,
    service_server,
)
from support.procs import tail
from support.servers import applied

from genconf.cli.main import build_parser

entrypoint = load_entrypoint()
ADMIN = "deploy-admin-token-0123456789abcdef"
# The agent's --exec: what it ran for, and whether the token reached its environment.
RECORD = 'echo "$GENCONF_UNIT $GENCONF_HASH ${GENCONF_TOKEN:-none}"'


def command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def launched(argv: list[str], env: dict[str, str]) -> list[str]:
    """What the image runs for ``argv``; it must parse with the real CLI parser."""
    chosen: list[str] = entrypoint.container_argv(argv, env)
    assert build_parser().parse_args(chosen).command == argv[0]
    return chosen


def refusal(argv: list[str], env: dict[str, str]) -> str:
    with pytest.raises(entrypoint.EntrypointError) as refused:
        entrypoint.container_argv(argv, env)
    return str(refused.value)


# -- options from the environment ----------------------------------------------------------


def test_every_agent_option_has_an_environment_variable() -> None:
    options = entrypoint.agent_options()
    assert {"--unit", "--write", "--exec", "--exec-timeout", "--format", "--max-backoff"} <= set(
        options
    )
    # The connection options are genconf's own (GENCONF_SERVER, ...): not repeated here.
    assert not {"--server", "--token", "--tls-ca", "--tls-server-name", "--output", "--help"} & set(
        options
    )
    assert entrypoint.env_name("--exec-timeout") == "GENCONF_EXEC_TIMEOUT"
    assert entrypoint.env_name("--write") == "GENCONF_WRITE"


def test_options_come_from_the_environment_and_flags_win() -> None:
    env = {
        "GENCONF_UNIT": "web/0",
        "GENCONF_WRITE": "/config/web.json",
        "GENCONF_EXEC": "kill -HUP 1",
        "GENCONF_EXEC_TIMEOUT": "5",
        "GENCONF_FORMAT": "",  # empty: not given
    }
    argv = launched(["agent"], env)
    assert argv[0] == "agent"
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert pairs == {
        "--unit": "web/0",
        "--write": "/config/web.json",
        "--exec": "kill -HUP 1",
        "--exec-timeout": "5",
    }
    given = launched(["agent", "--unit", "web/7", "--exec-timeout=9"], env)
    assert given.count("--unit") == 1 and given[given.index("--unit") + 1] == "web/7"
    assert "--exec-timeout=9" in given and "--exec-timeout" not in given
    # Other commands and `serve` are left as they were.
    assert launched(["app", "list"], env) == ["app", "list"]


def test_a_switch_is_on_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store_true agent option (none today) is given for true and left out for false."""
    options = dict(entrypoint.agent_options())
    options["--dry-run"] = argparse.Action(["--dry-run"], dest="dry_run", nargs=0)
    monkeypatch.setattr(entrypoint, "agent_options", lambda: options)
    env = {"GENCONF_UNIT": "web/0", "GENCONF_WRITE": "/c/x.json"}
    assert "--dry-run" in entrypoint.agent_argv(["agent"], {**env, "GENCONF_DRY_RUN": "yes"})
    assert "--dry-run" not in entrypoint.agent_argv(["agent"], {**env, "GENCONF_DRY_RUN": "off"})
    with pytest.raises(entrypoint.EntrypointError, match="GENCONF_DRY_RUN must be true or false"):
        entrypoint.agent_argv(["agent"], {**env, "GENCONF_DRY_RUN": "maybe"})


# -- the unit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "app", "unit"),
    [
        ("web-0", "", "web/0"),
        ("web-12", "", "web/12"),
        ("web-v2-3", "", "web-v2/3"),
        ("web-2", "api", "api/2"),
    ],
)
def test_unit_from_a_statefulset_pod_name(pod: str, app: str, unit: str) -> None:
    env = {"GENCONF_UNIT_FROM": pod, "GENCONF_APP": app}
    assert entrypoint.unit_of(env) == unit
    assert entrypoint.unit_of({**env, "GENCONF_UNIT": "db/4"}) == "db/4"  # explicit wins


def test_unit_from_a_directory_of_names(tmp_path: Path) -> None:
    (tmp_path / "node-a").write_text("nodecfg/0\n")
    (tmp_path / "node-b").write_text("not a unit")
    env = {"GENCONF_UNIT_DIR": str(tmp_path)}
    assert entrypoint.unit_of({**env, "GENCONF_UNIT_FROM": "node-a"}) == "nodecfg/0"
    with pytest.raises(entrypoint.EntrypointError) as bad:
        entrypoint.unit_of({**env, "GENCONF_UNIT_FROM": "node-b"})
    assert str(bad.value) == (
        "invalid unit name 'not a unit': use <application>/<number>, e.g. 'web/0' "
        f"(from {tmp_path}/node-b (for GENCONF_UNIT_FROM=node-b))"
    )
    with pytest.raises(entrypoint.EntrypointError) as missing:
        entrypoint.unit_of({**env, "GENCONF_UNIT_FROM": "node-c"})
    assert str(missing.value) == (
        f"no unit for 'node-c' in GENCONF_UNIT_DIR={tmp_path}: cannot read {tmp_path}/node-c "
        "(No such file or directory); add a key node-c holding APP/N to what is mounted there"
    )


def test_a_unit_that_cannot_be_found_is_refused_with_what_to_set() -> None:
    write = {"GENCONF_WRITE": "/c/x.json"}
    assert refusal(["agent"], write) == (
        "genconf agent needs a unit: set GENCONF_UNIT=APP/N, or GENCONF_UNIT_FROM "
        "(a StatefulSet pod name: web-0 is web/0), or pass --unit"
    )
    deployment_pod = refusal(["agent"], {**write, "GENCONF_UNIT_FROM": "web-5d8f7c9b4-x2k9q"})
    assert deployment_pod == (
        "cannot take a unit from GENCONF_UNIT_FROM=web-5d8f7c9b4-x2k9q: a StatefulSet pod "
        "name ends in -N (web-0 is unit web/0); otherwise set GENCONF_UNIT=APP/N, or "
        "GENCONF_UNIT_DIR to a directory of files NAME holding APP/N"
    )
    assert "invalid unit name 'web'" in refusal(["agent"], {**write, "GENCONF_UNIT": "web"})
    assert refusal(["agent"], {"GENCONF_UNIT": "web/0"}) == (
        "genconf agent needs a file: set GENCONF_WRITE=PATH or pass --write"
    )


# -- the token ---------------------------------------------------------------------------------


def test_the_token_comes_from_a_file_or_a_directory_of_units(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "web-2").write_text("token-of-web-2\n")
    (tokens / "web-3").write_text("")
    base = {"GENCONF_WRITE": "/c/x.json", "GENCONF_TOKEN_DIR": str(tokens)}
    argv = launched(["agent"], {**base, "GENCONF_UNIT_FROM": "web-2"})
    assert argv[-2:] == ["--token", "token-of-web-2"]
    given = launched(["agent", "--unit", "web/2"], base)
    assert given[-2:] == ["--token", "token-of-web-2"]
    single = tmp_path / "token"
    single.write_text("the-token")
    from_file = launched(
        ["agent"], {**base, "GENCONF_UNIT": "web/9", "GENCONF_TOKEN_FILE": str(single)}
    )
    assert from_file[-2:] == ["--token", "the-token"]
    # A token given otherwise is left alone: genconf reads GENCONF_TOKEN itself.
    assert "--token" not in launched(["agent", "--unit", "web/2"], {**base, "GENCONF_TOKEN": "t"})
    flagged = launched(["agent", "--unit", "web/2", "--token", "x"], base)
    assert flagged.count("--token") == 1 and flagged[flagged.index("--token") + 1] == "x"
    assert refusal(["agent"], {**base, "GENCONF_UNIT": "web/4"}) == (
        f"cannot read the token of web/4 from GENCONF_TOKEN_DIR={tokens} (key web-4): "
        "No such file or directory"
    )
    assert refusal(["agent"], {**base, "GENCONF_UNIT": "web/3"}) == (
        f"the token file {tokens}/web-3 for web/3 is empty (GENCONF_TOKEN_DIR={tokens} (key web-3))"
    )


def test_a_refusal_exits_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert entrypoint.run(["agent"], {"GENCONF_UNIT": "web/0"}) == 2
    assert capsys.readouterr().err == (
        "genconf: error: genconf agent needs a file: set GENCONF_WRITE=PATH or pass --write\n"
    )


def test_the_image_process_refuses_a_deployment_pod_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ENTRYPOINT), "agent"],
        env=clean_environ(GENCONF_UNIT_FROM="web-7d4b9c-abcde", GENCONF_WRITE=str(tmp_path / "c")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "genconf: error: cannot take a unit from GENCONF_UNIT_FROM=web-7d4b9c-abcde"
    )


# -- as the image runs it, against a real server -----------------------------------------------


async def test_agent_mode_against_a_tls_server_with_authentication(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """A StatefulSet pod web-2: unit, file, command and token from the environment and
    mounted files; the server reached at 127.0.0.1 with --tls-server-name (env)."""
    ca, issued = service_certificate(tmp_path)
    async with service_server(
        mongo_uri,
        db_name,
        cert=issued.cert_path,
        key=issued.key_path,
        ca=ca.cert,
        admin_token=ADMIN,
    ) as address:
        async with admin_client(address, ca.cert_path, ADMIN) as admin:
            created = await admin.create_application(
                "web", open=True, settings={"greeting": "hello"}, units=3
            )
            minted = await admin.create_token("agent", unit="web/2")
            await admin.list_tokens(min_revision=minted.revision)
            config = await admin.get_config("web/2", min_revision=created.revision)

            tokens = tmp_path / "tokens"  # the Secret's volume: a file per unit
            tokens.mkdir()
            (tokens / "web-2").write_text(minted.token + "\n")
            volume = tmp_path / "config"  # the emptyDir
            volume.mkdir()
            runs = tmp_path / "runs.log"
            env = clean_environ(
                GENCONF_UNIT_FROM="web-2",
                GENCONF_WRITE=str(volume / "config.json"),
                GENCONF_EXEC=f"{RECORD} >> {runs}",
                GENCONF_MAX_BACKOFF="0.3",
                GENCONF_SERVER=address,
                GENCONF_TLS_CA=str(ca.cert_path),
                GENCONF_TLS_SERVER_NAME=SERVICE_NAME,
                GENCONF_TOKEN_DIR=str(tokens),
            )
            log = tmp_path / "agent.log"
            async with entrypoint_process(env, "agent", log=log) as proc:
                try:
                    await applied(admin, "web/2", config.hash)
                except (AssertionError, TimeoutError):
                    raise AssertionError(f"no report from the agent:\n{tail(log)}") from None
                cmdline = command_line(proc.pid)
                proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(10):
                    assert await proc.wait() == 0, tail(log)
    assert json.loads((volume / "config.json").read_text()) == {"greeting": "hello"}
    assert os.stat(volume / "config.json").st_mode & 0o777 == 0o600
    # The command ran once, without the token in its environment; nor is it on the
    # process's command line.
    assert runs.read_text().splitlines() == [f"web/2 {config.hash} none"]
    assert minted.token.encode() not in cmdline
