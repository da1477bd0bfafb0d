"""`genconf branch`: stage changes for some units on a branch, then commit it to
master or abort it."""

from __future__ import annotations

import argparse

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import (
    Command,
    Commands,
    Ctx,
    apps,
    arg,
    force,
    reason,
    user,
    versions_text,
    written,
)
from genconf.defaults import non_negative
from genconf.errors import UsageError


async def _branch_add(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.add_branch(args.name, created_by=user()))
    written(ctx, w, f"added branch {args.name}")


def _tracking_args(args: argparse.Namespace) -> str:
    parts = [*args.units, *(f"{a}/* (every unit, now and later)" for a in args.app or ())]
    if getattr(args, "count", None):
        parts.append(f"{args.count} unit(s) of {args.of}")
    return ", ".join(parts)


async def _branch_track(ctx: Ctx, args: argparse.Namespace) -> None:
    if bool(args.count) != bool(args.of):
        raise UsageError("--count and --of go together: --count N --of APP")
    if not (args.units or args.app or args.count):
        raise UsageError("name the units to track: UNIT..., --app APP or --count N --of APP")
    w = await ctx.settled(
        await ctx.client.track_branch(
            args.name,
            units=args.units,
            applications=args.app or (),
            count=args.count or 0,
            application=args.of or "",
        )
    )
    tracking = ", ".join(w.units) or _tracking_args(args)
    verb = "tracks" if len(w.units) == 1 else "track"
    written(ctx, w, f"{tracking} now {verb} branch {args.name}")


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


async def _branch_list(ctx: Ctx, args: argparse.Namespace) -> None:
    branches = [shapes.branch_view(b) for b in await ctx.client.list_branches()]
    ctx.out.emit(branches, render.render_branches(branches))


async def _branch_show(ctx: Ctx, args: argparse.Namespace) -> None:
    branch = shapes.branch_view(await ctx.client.get_branch(args.name))
    ctx.out.emit(branch, render.render_branch(branch))


def register(commands: Commands) -> None:
    branch = commands.group(
        "branch",
        help="branches: stage changes for some units, then commit or abort",
        examples=["list", "diff canary"],
    )
    branch.add_all(
        Command("add", _branch_add, "start a branch", ["canary"], ["name"]),
        Command(
            "track",
            _branch_track,
            "make units see a branch's changes",
            ["canary web/0", "canary --app web", "canary --count 2 --of web"],
            [
                "name",
                arg("units", nargs="*", metavar="UNIT", help="units (APP/N)"),
                apps("every unit of APP, also later ones"),
                arg("--count", type=non_negative, help="with --of: this many units of APP"),
                arg("--of", metavar="APP", help="the application --count picks units from"),
            ],
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
            "under the branch (every conflicting key is listed) unless --force.",
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
