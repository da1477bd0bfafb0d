"""`genconf rollout`: take a branch to an application's units in steps, the server
driving each step (track a stable cohort, wait until every tracking unit reports
the branch's config applied and healthy, bake, advance; commit at the end), and
follow, pause, resume or abort it. Its renderers are here too."""

from __future__ import annotations

import argparse
import re
from typing import Final

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import Command, Commands, Ctx, arg, reason, user, written
from genconf.cli.output import Output, Renderer
from genconf.cli.render import NONE, author_text, listed, time_cell
from genconf.domain.cohorts import Selector
from genconf.domain.rollouts import Budget, Step, check_bake, parse_steps
from genconf.errors import InvalidArgument
from genconf.shapes import Data

BAKE_RE: Final = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
BAKE_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}
STATE_COLOURS: Final = {
    "running": "green",
    "paused": "yellow",
    "completed": "cyan",
    "committed": "cyan",
    "rolled_back": "red",
    "aborted": "red",
}


# -- argument types ------------------------------------------------------------------


def steps(text: str) -> tuple[Step, ...]:
    """``--steps 1,10%,50%,100%``."""
    try:
        return parse_steps(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def bake(text: str) -> float:
    """``--bake 5m``: seconds, or a number with ms, s, m or h."""
    match = BAKE_RE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    try:
        return check_bake(float(match[1]) * BAKE_UNITS[match[2]])
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def budget(text: str) -> Budget:
    """``--max-failed 2`` or ``--max-failed 10%``."""
    try:
        return Budget.parse(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def selector(text: str) -> str:
    try:
        return str(Selector.parse(text))
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


# -- renderers -----------------------------------------------------------------------


def state_text(out: Output, r: Data) -> str:
    colour = getattr(out.style, STATE_COLOURS.get(r["state"], "bold"))
    text = colour(r["state"].replace("_", " "))
    if r["state"] in ("running", "paused"):
        text += f", {r['phase']}"
    return text


def step_text(r: Data) -> str:
    return f"{r['step']}/{len(r['steps'])} ({r['steps'][r['step'] - 1]})"


def seconds_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def plan_text(r: Data) -> str:
    parts = [
        f"steps {', '.join(r['steps'])}",
        f"bake {seconds_text(r['bake_seconds'])}",
        f"failure budget {r['max_failed']} (then {r['on_failure']})",
        "commit at the end" if r["commit"] else "no commit at the end",
    ]
    return "; ".join(parts)


def units_text(r: Data) -> str:
    text = f"{len(r['tracking'])} of {r['candidates']} on the branch (this step: {r['step_size']})"
    if r["behind"]:
        text += f"; not current yet: {listed(r['behind'])}"
    return text


def render_rollout(r: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        fields = [
            ("rollout", f"{out.style.cyan(r['branch'])} -> {r['application']}"),
            ("state", f"{state_text(out, r)} at step {step_text(r)}"),
            ("units", units_text(r)),
            ("plan", plan_text(r)),
        ]
        if r["selector"]:
            fields.append(("selector", r["selector"]))
        if r["bake_until"] and r["state"] == "running" and r["phase"] == "baking":
            fields.append(("bake until", r["bake_until"]))
        if r["reason"]:
            fields.append(("why", r["reason"]))
        if r["failed"]:
            fields.append(("failed", listed(r["failed"])))
        if r["skipped"]:
            skipped = [f"{u} ({why})" for u, why in r["skipped"].items()]
            fields.append(("skipped", listed(skipped)))
        fields.append(("started", f"{r['created_at'] or NONE} by {author_text(r)}"))
        if r["note"]:
            fields.append(("note", r["note"]))
        lines = out.fields(fields)
        headers = ["AT", "BY", "STEP", "FROM", "TO"]
        if out.wide:
            headers.append("EPOCH")
        headers.append("WHY")
        rows = []
        for t in r["transitions"]:
            row = [time_cell(out, t["at"]), t["by"] or NONE, str(t["step"]), t["from"] or NONE]
            row.append(t["to"])
            if out.wide:
                row.append(str(t["epoch"] or NONE))
            row.append(t["why"])
            rows.append(row)
        lines.append("")
        lines += out.table(headers, rows, empty="no transitions", cut=("BY", "WHY"))
        return lines

    return render


def render_rollouts(rollouts: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["BRANCH", "APPLICATION", "STATE", "STEP", "UNITS"]
        if out.wide:
            headers += ["STARTED BY", "UPDATED"]
        headers.append("WHY")
        rows = []
        for r in rollouts:
            row = [r["branch"], r["application"], state_text(out, r), step_text(r)]
            row.append(f"{len(r['tracking'])}/{r['candidates']}")
            if out.wide:
                row += [author_text(r), time_cell(out, r["updated_at"])]
            last = r["transitions"][-1]["why"] if r["transitions"] else ""
            row.append(r["reason"] or last or NONE)
            rows.append(row)
        return out.table(headers, rows, empty="no rollouts", cut=("WHY", "STARTED BY"))

    return render


# -- commands --------------------------------------------------------------------------


async def _start(ctx: Ctx, args: argparse.Namespace) -> None:
    client = ctx.client
    w = await ctx.settled(
        await client.start_rollout(
            args.branch,
            application=args.app,
            steps=args.steps,
            bake_seconds=args.bake,
            max_failed=args.max_failed,
            on_failure=args.on_failure,
            commit=args.commit,
            selector=args.selector or "",
            reason=args.reason or "",
            created_by=user(),
        )
    )
    r = shapes.rollout_view(await client.get_rollout(args.branch, min_revision=w.revision))
    text = (
        f"started the rollout of branch {args.branch} to {args.app}: {plan_text(r)}; "
        f"follow it with: genconf rollout status {args.branch}"
    )
    ctx.out.emit(r, render.render_text(text))


async def _status(ctx: Ctx, args: argparse.Namespace) -> None:
    if args.branch:
        r = shapes.rollout_view(await ctx.client.get_rollout(args.branch))
        ctx.out.emit(r, render_rollout(r))
        return
    listing = await ctx.client.list_rollouts(application=args.app or "")
    rollouts = [shapes.rollout_view(r) for r in listing]
    ctx.out.emit(rollouts, render_rollouts(rollouts))


async def _pause(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.pause_rollout(args.branch, reason=args.reason or "", created_by=user())
    )
    written(ctx, w, f"paused the rollout of branch {args.branch}; its units stay as they are")


async def _resume(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.resume_rollout(args.branch, reason=args.reason or "", created_by=user())
    )
    written(ctx, w, f"resumed the rollout of branch {args.branch}")


async def _abort(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.abort_rollout(args.branch, reason=args.reason or "", created_by=user())
    )
    units = f"{len(w.units)} unit(s) back on master" if w.units else "no unit was on the branch"
    written(ctx, w, f"aborted the rollout of branch {args.branch}: {units}; the branch is kept")


def register(commands: Commands) -> None:
    group = commands.group(
        "rollout",
        help="progressive rollouts: a branch taken to an application's units in steps",
        examples=["start canary --app web --steps 1,10%,50%,100% --bake 5m --commit", "status"],
    )
    branch = arg("branch", help="the branch being rolled out")
    why = reason("why: recorded in the rollout's history")
    group.add_all(
        Command(
            "start",
            _start,
            "start rolling a branch out to an application's units",
            [
                "canary --app web --steps 1,10%,50%,100%",
                "canary --app web --steps 1,25%,100% --bake 10m --max-failed 5% --commit",
                "canary --app web --steps 2,100% --on-failure rollback --selector zone=a",
            ],
            [
                branch,
                arg("--app", required=True, metavar="APP", help="the application to roll out to"),
                arg(
                    "--steps",
                    type=steps,
                    required=True,
                    metavar="N|P%,...",
                    help="the units each step holds: a count (1) or a share of the units "
                    "(10%%), each step more than the one before",
                ),
                arg(
                    "--bake",
                    type=bake,
                    default=0.0,
                    metavar="DURATION",
                    help="hold each step this long once every tracking unit is current "
                    "(30s, 5m, 1h)",
                ),
                arg(
                    "--max-failed",
                    type=budget,
                    default=None,
                    metavar="N|P%",
                    help="failed units tolerated (a count, or a share of the tracking "
                    "units) before --on-failure; default: none",
                ),
                arg(
                    "--on-failure",
                    choices=["pause", "rollback"],
                    default="pause",
                    help="past the budget: pause where it is, or put every unit back on master",
                ),
                arg(
                    "--commit",
                    action="store_true",
                    help="commit the branch after the last step (a conflict pauses the rollout)",
                ),
                arg(
                    "--selector",
                    type=selector,
                    metavar="S",
                    help="only units whose labels match S, e.g. zone=a,tier!=db",
                ),
                reason("why: kept with the rollout and in the commit's reason"),
            ],
            description="Start a rollout of BRANCH to APP's units. The server drives it: "
            "each step tracks a stable cohort (the first units of the branch's hash order "
            "of the units, so a step only adds units), waits until every tracking unit's "
            "agent reports the branch's config applied, ok and not unhealthy, holds for "
            "--bake, then goes on; after the last step it commits the branch with "
            "--commit, else leaves it for you to commit. More failed units than "
            "--max-failed pause the rollout (or roll it back with --on-failure rollback).",
        ),
        Command(
            "status",
            _status,
            "a rollout's state and history, or every rollout",
            ["", "canary", "canary -o wide", "--app web -o json"],
            [
                arg("branch", nargs="?", help="the branch (default: every rollout)"),
                arg("--app", metavar="APP", help="only rollouts to APP"),
            ],
        ),
        Command(
            "pause",
            _pause,
            "stop a running rollout where it is",
            ["canary --reason 'errors up in zone a'"],
            [branch, why],
        ),
        Command(
            "resume",
            _resume,
            "go on with a paused rollout from its step",
            ["canary"],
            [branch, why],
        ),
        Command(
            "abort",
            _abort,
            "end a rollout: every unit of its application back on master (the branch is kept)",
            ["canary --reason 'bad config'"],
            [branch, why],
        ),
    )
