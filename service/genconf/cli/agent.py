"""`genconf agent`: the reference unit agent (`genconf.agent.runner`), which keeps a
file in sync with a unit's config; loaded only when the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genconf.backoff import Backoff
from genconf.cli.framework import Commands, Ctx, arg, duration
from genconf.client import Client
from genconf.errors import GenconfError


async def _agent(ctx: Ctx, args: argparse.Namespace) -> int:
    from genconf.agent.files import FileFormat
    from genconf.agent.runner import AgentOptions, run_agent
    from genconf.agent.status import wants_live_status

    path = Path(args.write)
    if not path.parent.is_dir():
        raise GenconfError(f"cannot write {path}: directory {path.parent} does not exist")
    template = Path(args.template) if args.template else None
    if template is not None:
        try:
            template.read_bytes()  # read again at every apply; a typo is caught now
        except OSError as exc:
            raise GenconfError(f"cannot read template {template}: {exc.strerror or exc}") from None
        fmt = FileFormat.JSON  # not used: PATH holds what the template renders
    elif args.format:
        fmt = FileFormat(args.format)
    else:
        fmt = FileFormat.for_path(path)
    options = AgentOptions(
        unit=args.unit,
        path=path,
        format=fmt,
        command=args.exec,
        exec_timeout=args.exec_timeout,
        template=template,
        health_command=args.health_cmd,
        health_interval=args.health_interval,
        health_timeout=args.health_timeout,
    )
    live = wants_live_status(sys.stderr)
    s = ctx.settings
    backoff = Backoff(initial=min(0.1, args.max_backoff), maximum=args.max_backoff)
    async with Client(
        s.server,
        token=s.token,
        tls_ca=s.tls_ca,
        insecure_plaintext=s.insecure_plaintext,
        tls_server_name=s.tls_server_name,
        backoff=backoff,
    ) as client:
        return await run_agent(client, options, live=live)


def positive_duration(text: str) -> int:
    """`duration` (``10s``, ``15m``), and more than none."""
    seconds = duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration longer than 0s, got {text!r}")
    return seconds


def register(commands: Commands) -> None:
    parser = commands.add(
        "agent",
        _agent,
        help="a reference unit agent: keep a file in sync with a unit's config",
        examples=[
            "--unit web/0 --write /etc/web/config.json",
            "--unit web/0 --write web.env --format env --exec 'systemctl reload web'",
            "--unit web/0 --write /etc/nginx/nginx.conf --template nginx.conf.j2 "
            "--exec 'nginx -s reload' --health-cmd 'curl -fsS localhost/healthz'",
        ],
        arguments=[
            arg("--unit", required=True, help="the unit, APP/N"),
            arg("--write", required=True, metavar="PATH", help="the file to keep current"),
            arg("--exec", metavar="CMD", help="shell command to run after each write"),
            arg(
                "--exec-timeout",
                type=float,
                default=300.0,
                help="seconds before CMD is killed (default: %(default)g)",
            ),
            arg(
                "--health-cmd",
                metavar="CMD",
                help="shell command that checks the unit: exit 0 is healthy; run after each "
                "apply and every --health-interval, reported with its output's tail",
            ),
            arg(
                "--health-interval",
                type=positive_duration,
                default=10,
                metavar="DURATION",
                help="how often to run --health-cmd, e.g. 10s, 5m (default: 10s)",
            ),
            arg(
                "--health-timeout",
                type=positive_duration,
                default=30,
                metavar="DURATION",
                help="--health-cmd is killed and the unit unhealthy past this (default: 30s)",
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
        "stderr tail) to the server. PATH is json, yaml or env (KEY='value', "
        "shell-sourceable), or rendered through a Jinja2 template (--template: the "
        "values as top-level names and as `config`, plus `unit`, `hash`, `branch`; an "
        "undefined name is an error, reported as a failed apply, and PATH is left as "
        "it was; TPL is read at each apply). --health-cmd reports the unit healthy or "
        "unhealthy after each apply and whenever that changes. Survives server "
        "restarts; a restarted agent resumes from the config the file holds. SIGHUP "
        "renders the config again (and applies it if PATH differs); Ctrl-C or SIGTERM "
        "stops it.",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--format",
        choices=["json", "yaml", "env"],
        help="file format (default: from PATH's suffix, else json)",
    )
    shape.add_argument(
        "--template",
        metavar="TPL",
        help="render PATH through this Jinja2 template instead of a --format",
    )
