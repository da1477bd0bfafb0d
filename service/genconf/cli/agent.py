"""`genconf agent`: the reference unit agent (`genconf.agent.runner`), which keeps a
file in sync with a unit's config; loaded only when the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genconf.backoff import Backoff
from genconf.cli.framework import Command, Commands, Ctx, arg
from genconf.client import Client
from genconf.errors import GenconfError


async def _agent(ctx: Ctx, args: argparse.Namespace) -> int:
    from genconf.agent.files import FileFormat
    from genconf.agent.runner import AgentOptions, run_agent
    from genconf.agent.status import wants_live_status

    path = Path(args.write)
    if not path.parent.is_dir():
        raise GenconfError(f"cannot write {path}: directory {path.parent} does not exist")
    options = AgentOptions(
        unit=args.unit,
        path=path,
        format=FileFormat(args.format) if args.format else FileFormat.for_path(path),
        command=args.exec,
        exec_timeout=args.exec_timeout,
    )
    live = wants_live_status(sys.stderr)
    s = ctx.settings
    backoff = Backoff(initial=min(0.1, args.max_backoff), maximum=args.max_backoff)
    async with Client(
        s.server,
        token=s.token,
        tls_ca=s.tls_ca,
        insecure_plaintext=s.insecure_plaintext,
        backoff=backoff,
    ) as client:
        return await run_agent(client, options, live=live)


def register(commands: Commands) -> None:
    commands.add_all(
        Command(
            "agent",
            _agent,
            "a reference unit agent: keep a file in sync with a unit's config",
            [
                "--unit web/0 --write /etc/web/config.json",
                "--unit web/0 --write web.env --format env --exec 'systemctl reload web'",
            ],
            [
                arg("--unit", required=True, help="the unit, APP/N"),
                arg("--write", required=True, metavar="PATH", help="the file to keep current"),
                arg(
                    "--format",
                    choices=["json", "yaml", "env"],
                    help="file format (default: from PATH's suffix, else json)",
                ),
                arg("--exec", metavar="CMD", help="shell command to run after each write"),
                arg(
                    "--exec-timeout", type=float, default=300.0, help="seconds before CMD is killed"
                ),
                arg(
                    "--max-backoff",
                    type=float,
                    default=5.0,
                    help="longest wait in seconds between reconnects (jittered, doubling from 0.1)",
                ),
            ],
            description="Watch a unit's effective config and write it to PATH on every "
            "change (atomically: temp file + rename, mode 0600), run CMD after each "
            "write (with GENCONF_UNIT, GENCONF_FILE, GENCONF_HASH, GENCONF_BRANCH and "
            "GENCONF_APP_VERSION set) and report applied ok or failed (exit code and "
            "stderr tail) to the server. Survives server restarts; a restarted agent "
            "resumes from the config the file holds. Stops on Ctrl-C or SIGTERM.",
        )
    )
