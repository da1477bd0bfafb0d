"""`genconf app`: create, show, list and remove applications, change their charm."""

from __future__ import annotations

import argparse

from genconf import shapes
from genconf.cli import render
from genconf.cli.config import typed_values
from genconf.cli.files import load_schema_file, load_values_file
from genconf.cli.framework import (
    Command,
    Commands,
    Ctx,
    arg,
    assignment,
    force,
    meta,
    metadata_of,
    reason,
    user,
    written,
)
from genconf.defaults import non_negative
from genconf.domain.schema import OPEN_SCHEMA, WILDCARD, parse_schema
from genconf.errors import UsageError


async def _app_create(ctx: Ctx, args: argparse.Namespace) -> None:
    schema = load_schema_file(args.schema) if args.schema else {}
    settings = load_values_file(args.values_file, args.name) if args.values_file else {}
    if args.set:
        local = parse_schema({**OPEN_SCHEMA, **schema} if args.open else schema)
        settings.update(typed_values(local, args.set))
    w = await ctx.settled(
        await ctx.client.create_application(
            args.name,
            charm=args.charm,
            schema=schema or None,
            open=args.open,
            settings=settings,
            units=args.units,
            reason=args.reason or "",
            metadata=metadata_of(args.meta),
            created_by=user(),
        )
    )
    units = f", units {', '.join(w.units)}" if w.units else ", no units"
    held = f", version 1 holds {len(settings)} key(s)" if settings else ""
    written(ctx, w, f"created {'open ' if args.open else ''}application {args.name}{units}{held}")


async def _app_show(ctx: Ctx, args: argparse.Namespace) -> None:
    app = shapes.application_view(await ctx.client.get_application(args.name))
    ctx.out.emit(app, render.render_application(app))


async def _app_list(ctx: Ctx, args: argparse.Namespace) -> None:
    apps = [shapes.application_view(a) for a in await ctx.client.list_applications()]
    ctx.out.emit(apps, render.render_applications(apps))


async def _app_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_application(args.name, force=args.force))
    written(ctx, w, f"removed application {args.name}")


async def _app_set_charm(ctx: Ctx, args: argparse.Namespace) -> None:
    schema = None
    if args.schema:
        schema = load_schema_file(args.schema)
        if args.open:
            schema = {**OPEN_SCHEMA, **schema}
    elif args.open:
        raise UsageError("--open goes with --schema: it keeps the new schema open")
    w = await ctx.settled(
        await ctx.client.update_application(args.name, charm=args.charm, schema=schema)
    )
    text = f"application {args.name} now uses charm {args.charm}"
    if schema is not None:
        declared = sum(1 for key in schema if key != WILDCARD)
        text += f" and a schema of {declared} option(s){', open' if args.open else ''}"
    written(ctx, w, text)


def register(commands: Commands) -> None:
    app = commands.group(
        "app", help="applications: create, show, list, remove, set-charm", examples=["list"]
    )
    app.add_all(
        Command(
            "create",
            _app_create,
            "create an application, with a config schema, its first config and units",
            [
                "web --schema config.yaml --units 3",
                "web --schema config.yaml --values web.yaml --reason 'first release'",
                "llm --open --set model=gpt-4o --set 'params={\"temperature\": 0.2}'",
                "db --charm postgres --units 2",
            ],
            [
                arg("name", help="application name (lowercase letters, digits, '-')"),
                arg("--charm", default="", help="charm name (default: the application's name)"),
                arg("--schema", help="schema file: a charm-style config.yaml, or JSON"),
                arg(
                    "--open",
                    action="store_true",
                    help="allow any key the schema does not declare, of any JSON value",
                ),
                arg(
                    "--values",
                    dest="values_file",
                    metavar="FILE",
                    help="version 1's config from a YAML/JSON file (as config set --values)",
                ),
                arg(
                    "--set",
                    action="append",
                    type=assignment,
                    default=[],
                    metavar="KEY=VALUE",
                    help="a key of version 1's config (repeatable; over --values)",
                ),
                reason("why: recorded in version 1 (default: created)"),
                meta(),
                arg("--units", type=non_negative, default=0, help="number of units to add"),
            ],
            description="Create an application. --schema reads a charm-style config.yaml "
            "(options: {key: {type, default, description}}), in YAML or JSON; types are "
            "string, int, float, boolean, object, list, any. --open makes an open "
            "application: any other key, any JSON value, no default (a schema entry "
            "'*' of type any says the same). Version 1 holds --values and --set.",
        ),
        Command("show", _app_show, "an application's schema and values", ["web"], ["name"]),
        Command("list", _app_list, "every application", ["", "-o json"]),
        Command(
            "remove",
            _app_remove,
            "remove an application (with --force, also when it has units)",
            ["web", "web --force"],
            ["name", force("remove its units too (their agents' tokens stop working)")],
        ),
        Command(
            "set-charm",
            _app_set_charm,
            "change an application's charm, and with --schema its config schema",
            ["web web-v2", "web web-v3 --schema config.yaml", "llm llm-v2 --schema s.yaml --open"],
            [
                arg("name", help="the application"),
                arg("charm", help="the new charm name, e.g. postgresql, web-v2, ch:redis"),
                arg(
                    "--schema",
                    metavar="FILE",
                    help="the new schema (as app create --schema); the values in use must fit",
                ),
                arg(
                    "--open",
                    action="store_true",
                    help="with --schema: keep allowing keys the schema does not declare",
                ),
            ],
            description="Change an application's charm. With --schema FILE, also replace "
            "its config schema, checked as at creation: master's values and every "
            "branch's staged values must fit it, or nothing changes and the error names "
            "the values that do not. The schema replaces the old one whole; an open "
            "application stays open only with --open.",
        ),
    )
