"""`genconf branch`: stage changes for some units on a branch, then commit it to
master or abort it; rebase it on master, drop a key, let it expire."""

from __future__ import annotations

import argparse
import math

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import (
    Command,
    Commands,
    Ctx,
    apps,
    arg,
    duration,
    force,
    reason,
    user,
    versions_text,
    written,
)
from genconf.cli.output import show
from genconf.defaults import non_negative
from genconf.domain.cohorts import Selector
from genconf.domain.results import WriteResult
from genconf.errors import InvalidArgument, UsageError


def span_text(seconds: int) -> str:
    """``7200`` -> ``2h``: a duration in the largest unit `duration` reads that divides it."""
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def _branch_add(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.add_branch(
            args.name, created_by=user(), expires_in_seconds=args.expires or 0
        )
    )
    expiry = (
        f" (it expires in {span_text(args.expires)}: then it is aborted and its units go "
        "back to master)"
        if args.expires
        else ""
    )
    written(ctx, w, f"added branch {args.name}{expiry}")


def _tracking_args(args: argparse.Namespace) -> str:
    parts = [*args.units, *(f"{a}/* (every unit, now and later)" for a in args.app or ())]
    if getattr(args, "count", None):
        parts.append(f"{args.count} unit(s) of {args.of}")
    return ", ".join(parts)


def percent(text: str) -> float:
    """``--percent``: a share of units, more than 0 and at most 100 (``12.5`` too)."""
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage such as 10, got {text!r}"
        ) from None
    if not (math.isfinite(value) and 0 < value <= 100):
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most 100, got {text}: e.g. --percent 10 for about a "
            "tenth of the units"
        )
    return value


def _check_track(args: argparse.Namespace) -> None:
    """Flags that do not go together, refused before anything is sent."""
    cohort = args.percent is not None or args.selector is not None
    if args.count and cohort:
        raise UsageError(
            "--count and --percent/--selector do not go together: --count N takes the "
            "lowest-numbered free units, --percent P a stable cohort"
        )
    if args.count and not args.of:
        raise UsageError("--count and --of go together: --count N --of APP")
    if cohort and not args.of:
        flag = "--percent" if args.percent is not None else "--selector"
        raise UsageError(f"{flag} needs --of APP: the application to take units from")
    if args.of and not (args.count or cohort):
        raise UsageError("--of APP goes with --count N, --percent P or --selector S")
    if args.selector is not None:
        try:
            Selector.parse(args.selector)
        except InvalidArgument as exc:
            raise UsageError(f"--selector: {exc.message}") from None
    if not (args.units or args.app or args.count or cohort):
        raise UsageError(
            "name the units to track: UNIT..., --app APP, --count N --of APP or "
            "--percent P --of APP [--selector S]"
        )


def _cohort_text(args: argparse.Namespace, w: WriteResult) -> str:
    """``branch canary tracks 10% of web (3 unit(s) joined: ...)``, and who was skipped."""
    share = f"{args.percent:g}%" if args.percent is not None else "every unit"
    scope = f"{share} of {args.of}" + (f" matching {args.selector}" if args.selector else "")
    joined = f"{len(w.units)} unit(s) joined: {', '.join(w.units)}" if w.units else "no unit joined"
    text = f"branch {args.name} tracks {scope} ({joined})"
    if w.skipped:
        shown = [f"{unit} ({why})" for unit, why in sorted(w.skipped.items())]
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        text += f"; left on their branch: {', '.join(shown[:10])}{more}"
    return text


async def _branch_track(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_track(args)
    w = await ctx.settled(
        await ctx.client.track_branch(
            args.name,
            units=args.units,
            applications=args.app or (),
            count=args.count or 0,
            application=args.of or "",
            percent=args.percent or 0,
            selector=args.selector or "",
        )
    )
    if args.percent is not None or args.selector is not None:
        text = _cohort_text(args, w)
    else:
        tracking = ", ".join(w.units) or _tracking_args(args)
        verb = "tracks" if len(w.units) == 1 else "track"
        text = f"{tracking} now {verb} branch {args.name}"
    ctx.out.emit(shapes.track_view(w), render.render_text(text))


async def _branch_untrack(ctx: Ctx, args: argparse.Namespace) -> None:
    if not (args.units or args.app):
        raise UsageError("name the units to untrack: UNIT... or --app APP")
    w = await ctx.settled(
        await ctx.client.untrack_branch(args.name, units=args.units, applications=args.app or ())
    )
    untracked = ", ".join(w.units) or _tracking_args(args)
    written(ctx, w, f"{untracked} left branch {args.name}, back on master")


async def _branch_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    d = shapes.diff_view(await ctx.client.diff_branch(args.name))
    ctx.out.emit(d, render.render_diff(d))


async def _branch_commit(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.commit_branch(
            args.name,
            force=args.force,
            require_applied=args.require_applied,
            reason=args.reason or "",
            created_by=user(),
        )
    )
    written(ctx, w, f"committed branch {args.name}{versions_text(w)}")


async def _branch_abort(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.abort_branch(args.name, force=args.force))
    written(ctx, w, f"aborted branch {args.name}")


async def _branch_rebase(ctx: Ctx, args: argparse.Namespace) -> None:
    keys, applications = args.key or (), args.app or ()
    w = await ctx.settled(
        await ctx.client.rebase_branch(args.name, keys=keys, applications=applications)
    )
    branch = shapes.branch_view(await ctx.client.get_branch(args.name, min_revision=w.revision))
    rebased = [
        f"{app}.{key} (from {'absent' if change['from'] is None else show(change['from'])})"
        for app, changes in sorted(branch["changes"].items())
        if not applications or app in applications
        for key, change in sorted(changes.items())
        if not keys or key in keys
    ]
    written(
        ctx,
        w,
        f"rebased branch {args.name} on master, each key keeping its target: " + ", ".join(rebased),
    )


async def _branch_drop(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.drop_branch_key(args.name, args.application, args.key))
    written(
        ctx,
        w,
        f"dropped {args.application}.{args.key} from branch {args.name}: its units see "
        "master's value again",
    )


async def _branch_list(ctx: Ctx, args: argparse.Namespace) -> None:
    branches = [shapes.branch_view(b) for b in await ctx.client.list_branches()]
    ctx.out.emit(branches, render.render_branches(branches))


async def _branch_show(ctx: Ctx, args: argparse.Namespace) -> None:
    """The branch, and each tracking unit's latest report with its state (``reports``:
    current when it runs the branch's config), from its application's status."""
    branch = shapes.branch_view(await ctx.client.get_branch(args.name))
    tracking = set(branch["units"])
    reports = []
    for app in sorted({unit.partition("/")[0] for unit in tracking}):
        for status in shapes.status_view(await ctx.client.get_status(app))["applications"]:
            reports += [u for u in status["units"] if u["name"] in tracking]
    branch["reports"] = reports
    ctx.out.emit(branch, render.render_branch(branch))


def register(commands: Commands) -> None:
    branch = commands.group(
        "branch",
        help="branches: stage changes for some units, then commit or abort",
        examples=["list", "diff canary"],
    )
    branch.add_all(
        Command(
            "add",
            _branch_add,
            "start a branch",
            ["canary", "canary --expires 2h"],
            [
                "name",
                arg(
                    "--expires",
                    type=duration,
                    default=None,
                    metavar="DURATION",
                    help="abort it this long after (forced: its units go back to master), "
                    "e.g. 90m, 2h, 7d (default never)",
                ),
            ],
        ),
        Command(
            "track",
            _branch_track,
            "make units see a branch's changes",
            [
                "canary web/0",
                "canary --app web",
                "canary --count 2 --of web",
                "canary --percent 10 --of web",
                "canary --percent 25 --of web --selector zone=a,tier!=db",
            ],
            [
                "name",
                arg("units", nargs="*", metavar="UNIT", help="units (APP/N)"),
                apps("every unit of APP, also later ones"),
                arg("--count", type=non_negative, help="with --of: this many units of APP"),
                arg(
                    "--percent",
                    type=percent,
                    help="with --of: a stable cohort of about P%% of APP's units (raise it "
                    "later to add units; the ones in stay in)",
                ),
                arg(
                    "--selector",
                    metavar="S",
                    help="with --of: only units whose labels match S, e.g. zone=a,tier!=db "
                    "(alone: every unit that matches)",
                ),
                arg(
                    "--of",
                    metavar="APP",
                    help="the application --count, --percent or --selector picks units from",
                ),
            ],
            description="Make units track a branch: named units, every unit of an "
            "application (--app, later units too), the lowest-numbered free units "
            "(--count N --of APP), or a stable cohort (--percent P --of APP, narrowed by "
            "--selector). A unit is in a cohort when the hash of (branch, unit) falls "
            "below P% of the hash space: about P% of the units, the same ones every "
            "time, so --percent 25 keeps the units of --percent 10 and adds to them, and "
            "units added later join by the same rule. Lowering P or changing the selector "
            "is refused: untrack --app APP first. Units of the cohort that track another "
            "branch stay there and are listed.",
        ),
        Command(
            "untrack",
            _branch_untrack,
            "put units back on master",
            ["canary web/0", "canary --app web"],
            [
                "name",
                arg("units", nargs="*", metavar="UNIT"),
                apps("stop tracking the whole application"),
            ],
        ),
        Command(
            "diff",
            _branch_diff,
            "what a branch changes, and what a commit would conflict on",
            ["canary"],
            ["name"],
        ),
        Command(
            "commit",
            _branch_commit,
            "apply a branch's changes to master for every unit",
            ["canary --reason 'debug logging everywhere'", "canary --force"],
            [
                "name",
                force("overwrite conflicts (last write wins)"),
                arg(
                    "--require-applied",
                    action="store_true",
                    help="refuse unless every tracking unit reported the branch's config applied "
                    "and ok",
                ),
                reason("why: recorded in the new versions"),
            ],
            description="Commit a branch: its changes become master in one transaction, "
            "each touched application gets a new version. Refused when master changed "
            "under the branch (every conflicting key is listed) unless --force; `branch "
            "rebase` takes master's current values as the branch's starting point, "
            "`branch drop` removes a key from it.",
        ),
        Command(
            "rebase",
            _branch_rebase,
            "take master's current values as the branch's starting point",
            ["canary", "canary --key port --app web"],
            [
                "name",
                arg(
                    "--key",
                    action="append",
                    metavar="KEY",
                    help="only this staged key (repeatable; default every one)",
                ),
                apps("only the keys staged for APP (repeatable; default every application)"),
            ],
            description="Rebase a branch on master: each staged key (or only --key KEY, "
            "of --app APP) records master's current value as where the branch started "
            "from, and keeps its target (its value, or unset). A commit refused for "
            "conflicts on those keys then goes through without --force, with the "
            "branch's values. A key whose value master already holds stays staged and "
            "commits as no change.",
        ),
        Command(
            "drop",
            _branch_drop,
            "remove one staged key from a branch",
            ["canary web port"],
            ["name", "application", "key"],
            description="Drop a staged key: the branch no longer changes it, so the "
            "units tracking the branch see master's value for it again.",
        ),
        Command(
            "abort",
            _branch_abort,
            "drop a branch (refused while units track it, unless --force)",
            ["canary", "canary --force"],
            ["name", force("abort; tracking units go back to master")],
        ),
        Command("list", _branch_list, "active branches", ["", "-o yaml"]),
        Command("show", _branch_show, "a branch's changes and units", ["canary"], ["name"]),
    )
