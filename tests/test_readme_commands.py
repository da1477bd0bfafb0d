"""Every command README.md shows runs, for real, in README order (issue 20).

The rule, for whoever edits the README:

- Every fenced block names its language. ```sh, ```bash and ```console blocks hold
  commands and are run; ```python blocks are scripts and are run; every other kind
  (```text for diagrams and usage synopses with placeholders such as APP or N,
  ```yaml, ...) is not. An untagged fence fails this test, so commands cannot slip
  in unrun.
- In a sh/bash block each line is one command (a line ending in a backslash goes on
  on the next); blank lines are skipped, and a line holding only a comment
  continues the comment of the command above it. In a console block the commands
  are the lines starting with ``$ ``.
- The commands run one after another in ONE bash (like one terminal, with
  ``set -o pipefail``), in a temp dir that is also HOME, against a ``genconf serve
  --demo`` (what `make run` runs) on the test's own ports and database, with
  GENCONF_SERVER set to it. Each must exit 0, or N when its comment says ``exits N``.
  A ``~/.curlrc`` with ``fail-with-body`` makes curl fail on an HTTP error.
- `substitutions` rewrites the default addresses to the test's servers, ``OTHER:50051``
  to a second, empty server, and ``/tmp/`` to the temp dir.
- A command that runs until stopped is listed in LONG_RUNNING: it is started in the
  background, must still be running (and have printed what the table says) after the
  last block, and is then stopped by its PID with SIGINT, as Ctrl-C would. A
  command that cannot run in a test is listed in NOT_RUN with the reason. Every
  entry of both tables must still be a README command.
- A python block is saved as example.py and run as ``python example.py``.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pymongo import MongoClient
from support.cli_runner import clean_env
from support.procs import lines_of, tail
from support.servers import free_port

from genconf.cli.serve import READY_LINE

ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = ROOT / "README.md"
COMMAND_FENCES: Final = frozenset({"sh", "bash", "console"})
SCRIPT_FENCES: Final = frozenset({"python"})
FENCE_RE: Final = re.compile(r"^```(\S*)\s*$")
EXITS_RE: Final = re.compile(r"\bexits (\d+)\b")
COMMAND_TIMEOUT: Final = 60.0  # seconds for one command; a longer one belongs in LONG_RUNNING
START_TIMEOUT: Final = 60.0
OUTPUT_TIMEOUT: Final = 15.0  # for a background command to print what LONG_RUNNING expects
MARK: Final = "\x1egenconf-readme-test"  # ends each command's output: MARK RC


@dataclass(frozen=True)
class LongRunning:
    """A README command that runs until stopped."""

    command: str  # as the README shows it (its comment aside)
    why: str
    expect: str | None  # what its output holds before it is stopped (None: maybe nothing)
    exit_code: int = 0  # after SIGINT: genconf stops cleanly; curl dies of it (130)


# Commands the README shows that run until Ctrl-C: started in the background with the
# test's own ports, stopped by PID after the last block.
LONG_RUNNING: Final = (
    LongRunning(
        "genconf agent --unit web/1 --write /tmp/web-1.json "
        """--exec 'echo "web/1 now at $GENCONF_HASH"'""",
        "the reference agent follows web/1 until stopped",
        "web/1 now at ",
    ),
    LongRunning(
        "genconf watch",
        "follows the admin feed until stopped; the README's later writes show in it",
        "llm",
    ),
    LongRunning("curl -N $API/watch", "server-sent events until stopped", None, 130),
    LongRunning("curl -N $API/units/web/0/watch", "one unit's config as SSE", "event: config", 130),
    LongRunning(
        'curl -N -H "Last-Event-ID: $REV" $API/watch',
        "a resumed feed: SSE until stopped",
        None,
        130,
    ),
)

# Commands the README shows that this test does not run, and why.
NOT_RUN: Final = {
    "make run": "runs `genconf serve --demo` on the default ports with an embedded mongod: "
    "this test runs that same serve --demo (checked against the Makefile) on its own "
    "ports and database, and every other command against it",
    "make test": "runs the whole suite, this test included",
}

# Programs the README's commands use besides genconf and the base system: installed from
# Debian's packages when missing (as root, else with sudo, as the Makefile does chromium).
TOOLS: Final = {"curl": "curl", "jq": "jq", "diff": "diffutils"}  # program -> package


def substitutions(grpc: str, http: str, other: str, work: Path) -> dict[str, str]:
    """README text -> what it becomes in this test."""
    return {
        "127.0.0.1:50051": grpc,  # the default --listen and --server
        "127.0.0.1:8080": http,  # make run's --http-listen
        "OTHER:50051": other,  # `genconf import model.yaml --server OTHER:50051`
        "/tmp/": f"{work}/",
    }


@dataclass(frozen=True)
class Block:
    fence: str
    line: int  # README line of the opening fence
    text: str


@dataclass(frozen=True)
class Command:
    text: str  # continuation lines joined as the README has them
    line: int
    comment: str  # its comments, with the comment-only lines that follow it

    @property
    def words(self) -> list[str]:
        return words(self.text)

    @property
    def exit_code(self) -> int:
        match = EXITS_RE.search(self.comment)
        return int(match[1]) if match else 0


def words(command: str) -> list[str]:
    """A command as shell words, comments dropped: what the tables are compared by."""
    return shlex.split(command.replace("\\\n", " "), comments=True)


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    opening: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE_RE.match(line)
        if match is None:
            if opening is not None:
                body.append(line)
            continue
        if opening is None:
            assert match[1], f"README.md:{number}: a fence without a language (```text?)"
            opening, body = (match[1], number), []
        else:
            found.append(Block(opening[0], opening[1], "\n".join(body) + "\n"))
            opening = None
    assert opening is None, f"README.md:{opening[1]}: the block never closes"
    return found


def _comment(line: str) -> str:
    """The comment of a shell line: from a ``#`` that starts a word outside quotes."""
    quote = ""
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                escaped = True
        elif char == "\\":
            escaped = True
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i:]
    return ""


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        number, line = block.line + 1 + i, lines[i]
        i += 1
        if block.fence == "console":
            if line.startswith("$ "):
                found.append(Command(line[2:], number, _comment(line[2:])))
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if found:  # a comment going on below its command
                last = found[-1]
                found[-1] = Command(last.text, last.line, f"{last.comment} {stripped}")
            continue
        parts = [line]
        while parts[-1].endswith("\\") and i < len(lines):
            parts.append(lines[i])
            i += 1
        text = "\n".join(parts)
        found.append(Command(text, number, " ".join(_comment(p) for p in parts)))
    return found


def readme_commands() -> list[Command]:
    return [c for b in blocks(README.read_text()) if b.fence in COMMAND_FENCES for c in commands(b)]


def long_running(command: Command) -> LongRunning | None:
    for entry in LONG_RUNNING:
        if words(entry.command) == command.words:
            return entry
    return None


def not_run(command: Command) -> str | None:
    for text, why in NOT_RUN.items():
        if words(text) == command.words:
            return why
    return None


# -- the README's own checks, no server needed --------------------------------------------


def test_every_fence_names_its_language_and_the_tables_match_the_readme() -> None:
    found = blocks(README.read_text())
    fences = {b.fence for b in found}
    assert COMMAND_FENCES & fences and SCRIPT_FENCES & fences, fences
    shown = [c.words for c in readme_commands()]
    for entry in LONG_RUNNING:
        assert words(entry.command) in shown, f"README.md no longer shows {entry.command!r}"
    for text in NOT_RUN:
        assert words(text) in shown, f"README.md no longer shows {text!r}"
    # `make run` is not run: it must still be the serve --demo this test runs instead.
    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "genconf serve --demo" in recipe, recipe


def test_readme_parsing_rules() -> None:
    text = (
        "```sh\n"
        "a one   # first\n"
        "        # still first: exits 1\n"
        "\n"
        "b 'two # not a comment' \\\n"
        "  --three\n"
        "```\n"
        "```console\n"
        "$ c four\n"
        "output\n"
        "```\n"
        "```text\n"
        "genconf APP N\n"
        "```\n"
    )
    parsed = blocks(text)
    assert [b.fence for b in parsed] == ["sh", "console", "text"]
    sh, console = commands(parsed[0]), commands(parsed[1])
    assert [c.words for c in sh] == [["a", "one"], ["b", "two # not a comment", "--three"]]
    assert [c.exit_code for c in sh] == [1, 0]
    assert [c.line for c in sh] == [2, 5]
    assert [c.words for c in console] == [["c", "four"]]


# -- running them -------------------------------------------------------------------------


class Shell:
    """One bash, as one terminal: commands go in on stdin; each one's output (stdout
    and stderr) and exit code come back, followed by ``MARK RC``."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines = lines_of(self.proc.stdout)
        self.jobs: set[int] = set()  # background jobs not stopped yet
        # Job control: a background job is its own process group and gets SIGINT as
        # from Ctrl-C (a non-interactive shell's jobs would otherwise ignore it).
        rc, out = self.run("set -m -o pipefail")
        assert rc == 0, out

    def _send(self, script: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(script)
        self.proc.stdin.flush()

    def _result(self, what: str, timeout: float) -> tuple[int, str]:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{what} did not finish in {timeout:.0f}s (a command that runs until "
                    f"stopped belongs in LONG_RUNNING); it printed:\n{''.join(out)}"
                ) from None
            if line is None:
                raise AssertionError(f"bash ended during {what}:\n{''.join(out)}")
            if line.startswith(MARK):
                return int(line.split()[1]), "".join(out)
            out.append(line)

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
        """Run ``command`` (its stdin: /dev/null); its exit code and output."""
        self._send(f"{{ {command}\n}} </dev/null\nprintf '\\n{MARK} %s\\n' \"$?\"\n")
        return self._result(command, timeout)

    def start(self, command: str, log: Path) -> int:
        """Start ``command`` in the background, its output to ``log``; its PID."""
        self._send(
            f"{{ {command}\n}} </dev/null >{shlex.quote(str(log))} 2>&1 &\n"
            f"printf '{MARK} %s\\n' \"$!\"\n"
        )
        pid = self._result(command, COMMAND_TIMEOUT)[0]
        self.jobs.add(pid)
        return pid

    def stop(self, pid: int, what: str, log: Path) -> int:
        """SIGINT (Ctrl-C) to the job ``pid`` leads; its exit code."""
        alive, _ = self.run(f"kill -0 {pid}")
        if alive != 0:
            rc = self.run(f"wait {pid}")[0]
            raise AssertionError(f"{what} ended with exit {rc} before it was stopped:\n{tail(log)}")
        rc = self.run(f"kill -INT -- -{pid}; wait {pid}")[0]
        self.jobs.discard(pid)
        return rc

    def close(self) -> None:
        """End bash, and any job a failed test left running (each leads its group)."""
        for pid in self.jobs:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def server(argv: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """``genconf <argv>`` (a serve) as a child process until the block ends: yields the
    address of its ready line; SIGINT must then stop it with exit 0."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genconf.cli.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=log.parent,
            env=env,
            text=True,
        )
    try:
        assert proc.stdout is not None
        lines = lines_of(proc.stdout)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"genconf {argv[0]} not ready: {tail(log)}") from None
            assert line is not None, f"genconf {' '.join(argv)} ended: {tail(log)}"
            if line.startswith(READY_LINE):
                break
        yield line.removeprefix(READY_LINE).strip()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def eventually_contains(path: Path, text: str, what: str) -> None:
    """Until ``path`` holds ``text`` (a background process writes it as it goes)."""
    deadline = time.monotonic() + OUTPUT_TIMEOUT
    while not (path.exists() and text in path.read_text()):
        if time.monotonic() > deadline:
            found = path.read_text() if path.exists() else "(no file)"
            raise AssertionError(f"{what}: no {text!r} in {path} after {OUTPUT_TIMEOUT}s:\n{found}")
        time.sleep(0.05)


def ensure_tools() -> None:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    install = [*sudo, "apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"]
    quiet: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 300}
    if subprocess.run([*install, *missing], **quiet).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, **quiet)
        subprocess.run([*install, *missing], check=True, **quiet)
    assert all(shutil.which(t) for t in TOOLS), f"could not install {missing}"


def substitute(text: str, subs: dict[str, str]) -> str:
    for old, new in subs.items():
        text = text.replace(old, new)
    return text


def test_every_readme_command_runs(
    tmp_path: Path, mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    ensure_tools()
    work = home = tmp_path / "work"
    work.mkdir()
    (home / ".curlrc").write_text("fail-with-body\n")
    http = f"127.0.0.1:{free_port()}"
    other_db = f"{db_name}_other"
    venv_bin = str(Path(sys.executable).parent)
    env = clean_env(tmp_path, HOME=str(home), PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}")
    mongo = ["--mongo-uri", mongo_uri, "--listen", "127.0.0.1:0"]
    started: list[tuple[LongRunning, int, Path]] = []
    try:
        with ExitStack() as stack:
            demo = stack.enter_context(
                server(
                    ["serve", "--demo", *mongo, "--database", db_name, "--http-listen", http],
                    env,
                    tmp_path / "serve-demo.log",
                )
            )
            other = stack.enter_context(
                server(["serve", *mongo, "--database", other_db], env, tmp_path / "serve-other.log")
            )
            subs = substitutions(demo, http, other, work)
            shell = Shell(work, {**env, "GENCONF_SERVER": demo})
            stack.callback(shell.close)
            ran = 0
            for block in blocks(README.read_text()):
                where = f"README.md:{block.line}"
                if block.fence in SCRIPT_FENCES:
                    (work / "example.py").write_text(substitute(block.text, subs))
                    rc, out = shell.run("python example.py")
                    assert rc == 0, f"{where}: the python example exited {rc}:\n{out}"
                    ran += 1
                    continue
                if block.fence not in COMMAND_FENCES:
                    continue
                for command in commands(block):
                    where = f"README.md:{command.line}"
                    if not_run(command):
                        continue
                    text = substitute(command.text, subs)
                    if entry := long_running(command):
                        log = tmp_path / f"background-{command.line}.log"
                        started.append((entry, shell.start(text, log), log))
                        ran += 1
                        continue
                    rc, out = shell.run(text)
                    assert rc == command.exit_code, (
                        f"{where}: `{text}` exited {rc}, not {command.exit_code}:\n{out}"
                    )
                    ran += 1
            assert ran >= 30, f"only {ran} README commands ran: is the parsing right?"

            # The agent kept its file in step with web/1 (the rollout's port 9090).
            eventually_contains(work / "web-1.json", '"port": 9090', "the agent")
            for entry, pid, log in reversed(started):
                if entry.expect is not None:
                    eventually_contains(log, entry.expect, entry.command)
                rc = shell.stop(pid, entry.command, log)
                assert rc == entry.exit_code, f"{entry.command} ended {rc}:\n{tail(log)}"
    finally:
        mongo_client.drop_database(other_db)
