"""`genconf unit`: add, remove, list and label an application's units."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from genconf import shapes
from genconf.cli import render, status
from genconf.cli.framework import Command, Commands, Ctx, arg, assignment, written
from genconf.defaults import non_negative
from genconf.errors import UsageError


async def _unit_add(ctx: Ctx, args: argparse.Namespace) -> None:
    count = args.count if args.count is not None else (0 if args.name else 1)
    w = await ctx.settled(
        await ctx.client.add_units(
            args.application, count=count, names=args.name or (), labels=dict(args.label)
        )
    )
    written(ctx, w, f"added {', '.join(w.units) or 'no units'}")


def label_changes(changes: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``zone=a tier-`` (as ``kubectl label``) -> ({"zone": "a"}, ["tier"])."""
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for change in changes:
        key, sep, value = change.partition("=")
        if sep and key:
            to_set[key] = value
        elif change.endswith("-") and len(change) > 1 and "=" not in change:
            to_remove.append(change[:-1])
        else:
            raise UsageError(
                f"unit label: {change!r} is neither KEY=VALUE (put the label on) nor KEY- "
                "(take it off), e.g. 'genconf unit label web/0 zone=a tier-'"
            )
    return to_set, to_remove


async def _unit_label(ctx: Ctx, args: argparse.Namespace) -> None:
    to_set, to_remove = label_changes(args.changes)
    w = await ctx.settled(await ctx.client.label_unit(args.unit, to_set, remove=to_remove))
    parts = [f"{k}={v}" for k, v in to_set.items()] + [f"{k} removed" for k in to_remove]
    written(ctx, w, f"labelled {args.unit}: {', '.join(parts)}")


async def _unit_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_unit(args.unit))
    written(ctx, w, f"removed unit {args.unit}")


async def _unit_list(ctx: Ctx, args: argparse.Namespace) -> None:
    units = [shapes.unit_view(u) for u in await ctx.client.list_units(args.application or "")]
    if not ctx.out.machine:  # the JSON shape stays the unit's; `status -o json` has states
        units = await status.with_states(ctx.client, units, args.application or "")
    ctx.out.emit(units, render.render_units(units))


def register(commands: Commands) -> None:
    unit = commands.group("unit", help="units: add, remove, list", examples=["list web"])
    unit.add_all(
        Command(
            "add",
            _unit_add,
            "add units to an application (one unless --count or --name)",
            ["web", "web --count 3", "web --name web/7"],
            [
                "application",
                arg("--count", type=non_negative, help="how many units to add"),
                arg("--name", action="append", help="a unit name to add (repeatable)"),
                arg(
                    "--label",
                    action="append",
                    type=assignment,
                    default=[],
                    metavar="KEY=VALUE",
                    help="a label every new unit starts with (repeatable); a new unit in a "
                    "cohort a branch tracks joins that branch",
                ),
            ],
        ),
        Command("remove", _unit_remove, "remove a unit", ["web/2"], [arg("unit", help="APP/N")]),
        Command(
            "list",
            _unit_list,
            "units with their branch and last applied report",
            ["", "web"],
            [arg("application", nargs="?", help="only this application's units")],
        ),
        Command(
            "label",
            _unit_label,
            "put labels on a unit (KEY=VALUE) and take others off (KEY-)",
            ["web/0 zone=a", "web/0 zone=b tier-"],
            [
                arg("unit", help="APP/N"),
                arg("changes", nargs="+", metavar="KEY=VALUE|KEY-"),
            ],
            description="Put labels on a unit and take others off, as kubectl label does: "
            "KEY=VALUE sets a label, KEY- removes one. Branch cohorts select units by "
            "label (genconf branch track NAME --of APP --selector zone=a); a label "
            "change moves no unit on or off a branch.",
        ),
    )
