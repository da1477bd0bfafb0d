"""Tables fit the terminal: the real `genconf` with its stdout on a real
pseudo-terminal of 80 and of 200 columns, against a real server, over an
application whose descriptions, values and reasons are long.

On a terminal every line fits (colour does not count), names are whole, and a
wider terminal shows more; piped, the same commands print every cell in full;
`-o wide` is never cut.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import anyio
import pytest
from support.cli_runner import Genconf, clean_env

from genconf.api.server import RunningServer
from genconf.cli.output import ANSI_RE
from genconf.client import Client

UNITS = 16
DESCRIPTION = ("The message of the day, shown on every page the service renders. " * 3).strip()
MOTD = ("Welcome! Planned maintenance on Saturday from 02:00 to 04:00 UTC; " * 4).strip()
BANNER = "Be kind: a banner of sixty-some characters, whole at 200 columns"
REASON = ("Move the port and say hello, as agreed in the weekly operations review " * 2).strip()
SCHEMA = {
    "port": {"type": "int", "default": 8080, "description": "port to listen on"},
    "motd": {"type": "string", "description": DESCRIPTION},
    "banner": {"type": "string", "description": DESCRIPTION},
}
COMMANDS = {
    "app show": ("app", "show", "web"),
    "versions": ("versions", "web"),
    "branch list": ("branch", "list"),
    "branch show": ("branch", "show", "canary"),
}


def plain(text: str) -> str:
    return ANSI_RE.sub("", text)


def read_until_eof(master: int) -> str:
    """Everything the pseudo-terminal's master end gets until its slave end is closed
    by everyone (EIO), with the terminal's CR LF turned back into LF."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode().replace("\r\n", "\n")


async def on_terminal(
    genconf: Genconf, columns: int, *argv: str, environment_columns: str | None = None
) -> str:
    """``genconf ARGV`` with its stdout on a terminal ``columns`` wide, in colour; the
    size comes from the terminal unless ``environment_columns`` sets COLUMNS."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in genconf.env.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    if environment_columns is not None:
        env["COLUMNS"] = environment_columns
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", *argv, "--server", genconf.server or "",
            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
    finally:
        os.close(slave)  # the child holds its own copy: EOF once it exits
    text, (_, err) = await asyncio.gather(
        anyio.to_thread.run_sync(read_until_eof, master),
        asyncio.wait_for(proc.communicate(), 60),
    )
    assert proc.returncode == 0, err.decode()
    return text


@pytest.fixture
async def genconf(srv: RunningServer, client: Client, tmp_path: Path) -> Genconf:
    """A model with long texts: an application of many units with long descriptions
    and values, two versions with a long reason, a branch tracked by every unit."""
    await client.create_application("web", schema=SCHEMA, units=UNITS, reason="created")
    await client.set_config("web", {"motd": MOTD, "banner": BANNER, "port": 9090}, reason=REASON)
    await client.add_branch("canary")
    await client.track_branch("canary", units=[f"web/{i}" for i in range(UNITS)])
    w = await client.set_branch_config("canary", "web", {"motd": MOTD + "(canary)", "port": 7070})
    await client.list_branches(min_revision=w.revision)
    return Genconf(srv.address, clean_env(tmp_path))


async def test_tables_fit_80_columns_and_use_200(genconf: Genconf) -> None:
    names = list(COMMANDS)
    runs = [(name, cols) for name in names for cols in (80, 200)]
    texts = await asyncio.gather(*(on_terminal(genconf, c, *COMMANDS[n]) for n, c in runs))
    shown = {run: plain(text) for run, text in zip(runs, texts, strict=True)}
    for (name, columns), text in shown.items():
        assert "\x1b[1m" in texts[runs.index((name, columns))], "a terminal gets colour"
        too_long = [line for line in text.splitlines() if len(line) > columns]
        assert not too_long, (name, columns, too_long)
    for name in names:
        narrow, wide = shown[(name, 80)], shown[(name, 200)]
        assert max(map(len, wide.splitlines())) > 100, (name, "200 columns are used")
        assert len(wide) > len(narrow), name
    app80, app200 = shown[("app show", 80)], shown[("app show", 200)]
    assert "…" in app80 and BANNER not in app80 and BANNER in app200, "cut later at 200"
    for key in ("port", "motd", "banner"):  # names are never cut
        assert any(line.split()[:2] == [key, "string" if key != "port" else "int"]
                   for line in app80.splitlines()), key  # fmt: skip
    # Every unit is listed (fields wrap, never cut), and the branch's values are cut.
    branch80 = shown[("branch show", 80)]
    assert all(f"web/{i}," in branch80 or f"web/{i}\n" in branch80 for i in range(UNITS))
    assert ["web", "port", "set", "7070", "9090"] in [
        line.split() for line in branch80.splitlines()
    ]
    versions80 = shown[("versions", 80)]
    assert [line.split()[0] for line in versions80.splitlines()] == ["VERSION", "2", "1"]
    assert "…" in versions80 and REASON not in versions80


async def test_piped_tables_are_complete_and_wide_on_a_terminal_is_not_cut(
    genconf: Genconf,
) -> None:
    piped = await genconf.all(*(list(argv) for argv in COMMANDS.values()))
    for run in piped:
        assert "\x1b" not in run.ok().out, run.argv
    app, versions, branches, branch = (run.out for run in piped)
    for text in (app, branches, branch):
        assert "…" not in text
    # CHANGES sums each value up in 24 characters, piped or not (-o wide: in full).
    assert "+motd=Welcome! Planned mainte… " in versions
    assert MOTD in app and DESCRIPTION in app and BANNER in app
    assert REASON in versions
    assert ", ".join(f"web/{i}" for i in range(UNITS)) in branches
    assert MOTD + "(canary)" in branch
    wide = plain(await on_terminal(genconf, 80, "app", "show", "web", "-o", "wide"))
    assert "…" not in wide and MOTD in wide and DESCRIPTION in wide
    assert wide.splitlines()[5].split() == [
        "KEY",
        "TYPE",
        "DEFAULT",
        "VALUE",
        "SOURCE",
        "SECRET",
        "DESCRIPTION",
    ]
    wide_versions = plain(await on_terminal(genconf, 80, "versions", "web", "-o", "wide"))
    assert REASON in wide_versions and "GENERATION" in wide_versions
    assert (await genconf("versions", "web", "-o", "wide")).ok().out == wide_versions


async def test_columns_from_the_environment_win_over_the_terminal(genconf: Genconf) -> None:
    """``COLUMNS`` as every terminal program reads it."""
    text = plain(await on_terminal(genconf, 200, "versions", "web", environment_columns="60"))
    assert max(map(len, text.splitlines())) <= 60 and "…" in text
