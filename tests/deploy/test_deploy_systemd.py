"""deploy/agent/genconf-agent.service: `systemd-analyze verify` accepts it, and its
command line, filled from deploy/agent/agent.env as systemd fills it, runs an agent
against a real TLS server with authentication on (127.0.0.1, --tls-server-name)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio
from deploy_kit import (
    DEPLOY,
    SERVICE_NAME,
    admin_client,
    child_process,
    clean_environ,
    service_certificate,
    service_server,
)
from support.procs import tail
from support.servers import applied

UNIT = DEPLOY / "agent" / "genconf-agent.service"
ENV_FILE = DEPLOY / "agent" / "agent.env"
INSTALLED = "/opt/genconf/bin/genconf"  # where deploy/README.md installs genconf
GENCONF = str(Path(sys.executable).with_name("genconf"))  # this checkout's, for the test
ADMIN = "systemd-admin-token-0123456789abcdef"


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's settings: section -> key -> values (a key may repeat)."""
    found: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = found.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a setting before any section: {line}"
        name, _, value = line.partition("=")
        current.setdefault(name.strip(), []).append(value.strip())
    return found


def environment_file(text: str) -> dict[str, str]:
    """An EnvironmentFile's variables (KEY=VALUE lines; # comments)."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def exec_start(env: dict[str, str]) -> list[str]:
    """ExecStart as systemd runs it: ``${NAME}`` is NAME's value as one word (empty
    when unset); every other word is literal."""
    (line,) = sections(UNIT.read_text())["Service"]["ExecStart"]
    words = []
    for word in shlex.split(line):
        if "$" in word:
            match = re.fullmatch(r"\$\{(\w+)\}", word)
            assert match, f"{word}: only whole-word ${{NAME}} substitutions are used"
            word = env.get(match[1], "")
        words.append(word)
    return words


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """verify checks the unit's syntax, every directive, and that ExecStart's program
    exists and is executable: the copy points it at this checkout's genconf."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED} agent " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED, GENCONF))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert UNIT.name not in done.stderr, done.stderr  # no warning about this unit
    broken = tmp_path / "broken.service"
    broken.write_text(copy.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    refused = subprocess.run(
        ["systemd-analyze", "verify", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify reads every value: a bad one is reported against the file (a warning, exit 0,
    # hence the check above that nothing is said about the real unit).
    assert re.search(rf"{broken}:\d+: Failed to parse service restart specifier", refused.stderr)


def test_the_unit_runs_the_agent_with_its_environment_file() -> None:
    unit = sections(UNIT.read_text())
    service = unit["Service"]
    assert service["EnvironmentFile"] == ["/etc/genconf/agent.env"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # a bad setting is not retried
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]
    env = environment_file(ENV_FILE.read_text())
    used = re.findall(r"\$\{(\w+)\}", service["ExecStart"][0])
    assert set(used) <= set(env), f"agent.env does not set {set(used) - set(env)}"
    # genconf reads the connection settings itself; the example sets them.
    assert {"GENCONF_SERVER", "GENCONF_TLS_CA", "GENCONF_TOKEN"} <= set(env)
    assert "#GENCONF_TLS_SERVER_NAME=" in ENV_FILE.read_text()
    argv = exec_start(env)
    assert argv[:2] == [INSTALLED, "agent"]
    assert argv[argv.index("--unit") + 1] == env["GENCONF_UNIT"] == "web/0"
    assert argv[argv.index("--exec") + 1] == "systemctl reload web"  # one word, spaces kept


async def test_the_units_command_runs_an_agent_against_a_real_server(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    ca, issued = service_certificate(tmp_path)
    async with (
        service_server(
            mongo_uri,
            db_name,
            cert=issued.cert_path,
            key=issued.key_path,
            ca=ca.cert,
            admin_token=ADMIN,
        ) as address,
        admin_client(address, ca.cert_path, ADMIN) as admin,
    ):
        example = environment_file(ENV_FILE.read_text())
        unit = example["GENCONF_UNIT"]
        app = unit.split("/")[0]
        created = await admin.create_application(app, open=True, settings={"port": 8080}, units=1)
        minted = await admin.create_token("agent", unit=unit)
        await admin.list_tokens(min_revision=minted.revision)
        config = await admin.get_config(unit, min_revision=created.revision)
        runs = tmp_path / "reloads.log"
        settings = {
            **example,  # GENCONF_UNIT as the example has it
            "GENCONF_SERVER": address,
            "GENCONF_TLS_CA": str(ca.cert_path),
            "GENCONF_TLS_SERVER_NAME": SERVICE_NAME,
            "GENCONF_TOKEN": minted.token,
            "GENCONF_WRITE": str(tmp_path / "config.json"),
            "GENCONF_EXEC": f'echo "$GENCONF_UNIT $GENCONF_HASH" >> {runs}',
        }
        argv = exec_start(settings)
        assert argv[0] == INSTALLED and shutil.which(GENCONF)
        log = tmp_path / "agent.log"
        async with child_process([GENCONF, *argv[1:]], clean_environ(**settings), log) as proc:
            try:
                await applied(admin, unit, config.hash)
            except TimeoutError:
                raise AssertionError(f"no report from the agent:\n{tail(log)}") from None
            proc.send_signal(signal.SIGTERM)  # what `systemctl stop` sends
            with anyio.fail_after(10):
                assert await proc.wait() == 0, tail(log)
    assert json.loads((tmp_path / "config.json").read_text()) == {"port": 8080}
    assert runs.read_text().splitlines() == [f"{unit} {config.hash}"]
