"""`genconf app`: create, show, list and remove applications, change their charm."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from genconf.cli import render, shapes
from genconf.cli.framework import Command, Commands, Ctx, arg, user, written
from genconf.defaults import non_negative
from genconf.domain.schema import parse_schema, schema_to_doc
from genconf.errors import GenconfError, InvalidArgument


def load_schema_file(path: str) -> dict[str, dict[str, Any]]:
    """A charm-style ``config.yaml`` (``options: {key: {type, default, description}}``)
    or the bare mapping, in YAML or JSON, validated and normalised."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GenconfError(f"cannot read schema file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GenconfError(f"schema file {path} is not UTF-8 text") from None
    is_json = path.endswith(".json")
    try:
        raw = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML (or JSON)"
        raise GenconfError(f"schema file {path} is not valid {kind}: {exc}") from None
    raw = raw or {}
    options = raw.get("options") if isinstance(raw, dict) else None
    if isinstance(options, dict) and set(raw) == {"options"}:
        if all(isinstance(v, dict) for v in options.values()):
            raw = options
    try:
        return schema_to_doc(parse_schema(raw))
    except InvalidArgument as exc:
        raise InvalidArgument(f"schema file {path}: {exc.message}") from None


async def _app_create(ctx: Ctx, args: argparse.Namespace) -> None:
    schema = load_schema_file(args.schema) if args.schema else None
    w = await ctx.settled(
        await ctx.client.create_application(
            args.name, charm=args.charm, schema=schema, units=args.units, created_by=user()
        )
    )
    units = f", units {', '.join(w.units)}" if w.units else ", no units"
    written(ctx, w, f"created application {args.name}{units}")


async def _app_show(ctx: Ctx, args: argparse.Namespace) -> None:
    app = shapes.application_view(await ctx.client.get_application(args.name))
    ctx.out.emit(app, render.render_application(app))


async def _app_list(ctx: Ctx, args: argparse.Namespace) -> None:
    apps = [shapes.application_view(a) for a in await ctx.client.list_applications()]
    ctx.out.emit(apps, render.render_applications(apps))


async def _app_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_application(args.name))
    written(ctx, w, f"removed application {args.name}")


async def _app_set_charm(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.update_application(args.name, charm=args.charm))
    written(ctx, w, f"application {args.name} now uses charm {args.charm}")


def register(commands: Commands) -> None:
    app = commands.group(
        "app", help="applications: create, show, list, remove, set-charm", examples=["list"]
    )
    app.add_all(
        Command(
            "create",
            _app_create,
            "create an application, with a config schema and units",
            ["web --schema config.yaml --units 3", "db --charm postgres --units 2"],
            [
                arg("name", help="application name (lowercase letters, digits, '-')"),
                arg("--charm", default="", help="charm name (default: the application's name)"),
                arg("--schema", help="schema file: a charm-style config.yaml, or JSON"),
                arg("--units", type=non_negative, default=0, help="number of units to add"),
            ],
            description="Create an application. --schema reads a charm-style config.yaml "
            "(options: {key: {type, default, description}}), in YAML or JSON; types are "
            "string, int, float, boolean, object, list.",
        ),
        Command("show", _app_show, "an application's schema and values", ["web"], ["name"]),
        Command("list", _app_list, "every application", ["", "-o json"]),
        Command("remove", _app_remove, "remove an application and its units", ["web"], ["name"]),
        Command(
            "set-charm",
            _app_set_charm,
            "change an application's charm",
            ["web web-v2"],
            ["name", "charm"],
        ),
    )
