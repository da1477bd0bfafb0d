"""`make run`: the embedded MongoDB, the server and the demo model; the commands it
prints work; Ctrl-C (SIGINT to its process group, as a terminal sends it) leaves
nothing running. It runs in a temporary data dir on a free port, never touching
the repository's .genconf-data."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from support.procs import lines_of, processes_mentioning

pytestmark = pytest.mark.mongo  # starts mongod processes of its own

REPO = Path(__file__).resolve().parents[2]
READY = "genconf is ready on "
START_LIMIT = 120.0  # seconds: a cold embedded mongod on a busy machine


def test_make_run_serves_the_demo_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    # -o: the venv is installed already; do not let a newer pyproject.toml reinstall it.
    argv = ["make", "--no-print-directory", "-o", ".venv/.installed", "run"]
    argv += [f"DATA_DIR={data_dir}", "LISTEN=127.0.0.1:0", "HTTP_LISTEN=127.0.0.1:0"]
    stderr_path = tmp_path / "make.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCONF_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user config file
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,  # its own process group, like a terminal job
        )
    try:
        assert proc.stdout is not None
        stdout = lines_of(proc.stdout)
        printed: list[str] = []
        deadline = time.monotonic() + START_LIMIT
        while not (printed and printed[-1].startswith(READY)):
            line = stdout.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"make run ended: {stderr_path.read_text()[-3000:]}"
            printed.append(line.rstrip("\n"))
        address = printed[-1].removeprefix(READY)
        assert printed[0] == (
            "loaded the demo model: applications db (2 units), web (3 units); "
            "branch 'canary' tracked by web/0"
        )
        console = next(line for line in printed if line.startswith("console: http://"))
        url = console.split()[1]
        with urllib.request.urlopen(url, timeout=10) as page:  # the console, served
            assert b"genconf" in page.read()
        with urllib.request.urlopen(url + "api/v1/units/web/0/config", timeout=10) as reply:
            assert json.loads(reply.read())["config"]["log-level"] == "debug"
        commands = [line.strip() for line in printed if line.startswith("  ")]
        assert len(commands) == 3, printed
        outputs = []
        for command in commands:
            assert f"--server {address}" in command, "not the default address: say which"
            done = subprocess.run(
                shlex.split(command), cwd=REPO, env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, f"{command}: {done.stderr}"
            outputs.append(done.stdout)
        assert "canary" in outputs[0] and "debug" in outputs[0]  # web/0 tracks canary
        assert "log-level: info -> debug" in outputs[1]
        assert "web/0  canary" in outputs[2]
        assert processes_mentioning(str(data_dir)), "mongod and the server are running"

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
        left = processes_mentioning(str(data_dir))
        assert not left, f"processes left behind: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # Only if the test failed: what our make started, found by this test's own
        # temporary data dir on its command line (the server and its mongod).
        for pid in processes_mentioning(str(data_dir)):
            os.kill(pid, signal.SIGKILL)
