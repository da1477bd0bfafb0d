"""`genconf unit`: add, remove and list an application's units."""

from __future__ import annotations

import argparse

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import Command, Commands, Ctx, arg, written
from genconf.defaults import non_negative


async def _unit_add(ctx: Ctx, args: argparse.Namespace) -> None:
    count = args.count if args.count is not None else (0 if args.name else 1)
    w = await ctx.settled(
        await ctx.client.add_units(args.application, count=count, names=args.name or ())
    )
    written(ctx, w, f"added {', '.join(w.units) or 'no units'}")


async def _unit_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_unit(args.unit))
    written(ctx, w, f"removed unit {args.unit}")


async def _unit_list(ctx: Ctx, args: argparse.Namespace) -> None:
    units = [shapes.unit_view(u) for u in await ctx.client.list_units(args.application or "")]
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
    )
