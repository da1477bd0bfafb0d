"""deploy/smoke.sh, the container smoke test CI runs after `make test` (.ci/run): where
no container engine answers it says it was skipped and why, and exits 0 so CI stays
green. (Where one answers it builds and runs everything: that path needs an engine,
which the machines this suite runs on do not have; deploy/README.md says so.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy_kit import DEPLOY, ROOT

SMOKE = DEPLOY / "smoke.sh"
BASH = shutil.which("bash") or "/bin/bash"


def smoke(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [BASH, str(SMOKE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def tools_without_docker(tmp_path: Path) -> Path:
    """A PATH directory with what the script needs before it looks for docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    return bin_dir


def test_skipped_without_a_docker_command(tmp_path: Path) -> None:
    done = smoke(str(tools_without_docker(tmp_path)))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "deploy smoke test skipped: no docker command (no container engine on this machine)\n"
    )


def test_skipped_when_docker_info_does_not_answer(tmp_path: Path) -> None:
    """A docker client without an engine (as here): `docker info` fails."""
    bin_dir = tools_without_docker(tmp_path)
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    docker.chmod(0o755)
    done = smoke(str(bin_dir))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "deploy smoke test skipped: 'docker info' does not answer "
        "(a docker client without a running engine)\n"
    )
    assert calls.read_text() == "info\n"  # nothing built, nothing started


def test_ci_runs_it_after_the_test_suite() -> None:
    steps = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert steps == ["make test", "deploy/smoke.sh"]
    assert os.access(SMOKE, os.X_OK)
    text = SMOKE.read_text()
    for step in (
        "docker build -f deploy/Dockerfile -t genconf:0.1.0 .",
        "up --build -d --wait",
        "genconf:0.1.0 agent",
        "down -v",
    ):
        assert step in text, step
