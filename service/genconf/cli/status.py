"""`genconf status [APP]`: is every unit on the config it should run?

Per application one line: its version and label, its units counted by state
(current, behind, failed, unreported: `genconf.domain.fleet`) and the branches in
flight for it. With one APP (or `-o wide`) each unit's state and latest report
follow. A status is a read: it exits 0 whatever the states are; scripts read the
counts from `-o json` (`shapes.status_view`).
"""

from __future__ import annotations

import argparse
import datetime as dt

from genconf import shapes
from genconf.cli.framework import Command, Commands, Ctx, arg
from genconf.cli.output import Output, Renderer, visible_len
from genconf.cli.render import unit_status_table
from genconf.client import Client
from genconf.domain.fleet import STATES
from genconf.shapes import Data

DESCRIPTION = (
    "Show, per application, its version (and label), how many of its units are "
    "current (they reported the config they should run, applied ok and not "
    "unhealthy), behind (they reported an older config), failed (they reported that "
    "config failed to apply, or their health command fails) or unreported (no "
    "report yet), and the branches in flight for it with the units tracking each. "
    "A unit's config is its branch's view when it tracks one. With APP, each unit "
    "follows: its branch, state, how long ago it reported, and what its agent said; "
    "-o wide shows that for every application, with times, hashes and health in "
    "full. Exit code 0 whatever the states (a status is a read): for scripts, -o json "
    "gives per application `counts` {current, behind, failed, unreported}, e.g. "
    "genconf status web -o json | jq '.applications[0].counts.failed'."
)


async def _status(ctx: Ctx, args: argparse.Namespace) -> None:
    status = shapes.status_view(await ctx.client.get_status(args.application or ""))
    ctx.out.emit(status, render_status(status, units=bool(args.application)))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def version_text(app: Data) -> str:
    """``v4 (1.2.0)``; ``v4`` when the current version has no label."""
    label = f" ({app['label']})" if app["label"] else ""
    return f"v{app['version']}{label}"


def units_text(out: Output, app: Data) -> str:
    """``units 3: 2 current, 1 behind``: the states that have units, in `STATES` order."""
    counts = app["counts"]
    total = sum(counts.values())
    colours = {
        "current": out.style.green,
        "behind": out.style.yellow,
        "failed": out.style.red,
        "unreported": out.style.dim,
    }
    parts = [colours[s](f"{counts[s]} {s}") for s in STATES if counts.get(s)]
    return f"units {total}" + (f": {', '.join(parts)}" if parts else "")


def branches_text(out: Output, app: Data) -> str:
    """``canary (1 unit), rollout (0 units)``; with `-o wide`, the keys each stages too."""
    parts = []
    for b in app["branches"]:
        keys = f", {_plural(b['keys'], 'key')}" if out.wide else ""
        parts.append(f"{b['name']} ({_plural(b['units'], 'unit')}{keys})")
    return ", ".join(parts)


def render_status(status: Data, *, units: bool, now: dt.datetime | None = None) -> Renderer:
    """One line per application (``web  v4 (1.2.0)  units 3: 2 current, 1 behind
    branches: canary (1 unit)``), each followed by its units' table when ``units``
    (one APP asked for) or in `-o wide`. ``now``: what report ages count from."""
    apps = status["applications"]

    def render(out: Output) -> list[str]:
        if not apps:
            return [out.style.dim("no applications")]
        detail = units or out.wide
        name_width = max(len(a["name"]) for a in apps)
        versions = [version_text(a) for a in apps]
        version_width = max(len(v) for v in versions)
        counts_width = max(visible_len(units_text(out, a)) for a in apps)
        lines: list[str] = []
        for app, version in zip(apps, versions, strict=True):
            name = out.style.cyan(app["name"]) + " " * (name_width - len(app["name"]))
            counts = units_text(out, app)
            line = f"{name}  {version.ljust(version_width)}  {counts}"
            branches = branches_text(out, app)
            if branches:
                line += " " * (counts_width - visible_len(counts)) + f"  branches: {branches}"
            if detail and lines:
                lines.append("")
            lines.append(line)
            if detail:
                lines.append("")
                lines += unit_status_table(out, app["units"], now=now)
        return lines

    return render


async def with_states(client: Client, units: list[Data], application: str = "") -> list[Data]:
    """``units`` (`shapes.unit_view`) each given its ``state`` from GetStatus (of
    ``application``, or every one), for `unit list`'s STATE column. A unit the status
    does not hold (added meanwhile) gets None."""
    status = shapes.status_view(await client.get_status(application))
    states = {u["name"]: u["state"] for a in status["applications"] for u in a["units"]}
    return [{**u, "state": states.get(u["name"])} for u in units]


def register(commands: Commands) -> None:
    commands.add_all(
        Command(
            "status",
            _status,
            "is every unit on the config it should run? (versions, branches, unit states)",
            ["", "web", "web -o wide", "-o json"],
            [
                arg(
                    "application",
                    nargs="?",
                    help="only this application, with each of its units' state",
                )
            ],
            description=DESCRIPTION,
        )
    )
