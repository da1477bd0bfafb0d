"""`genconf config`: read a unit's or an application's config, and set or unset keys
on master or on a branch, typed by the application's schema."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from genconf.cli import render, shapes
from genconf.cli.framework import (
    Command,
    Commands,
    Ctx,
    arg,
    assignment,
    expected_version,
    reason,
    user,
    versions_text,
    written,
)
from genconf.cli.output import show
from genconf.client import Client
from genconf.domain.schema import OptionSpec, parse_schema, parse_text_value, require_key
from genconf.errors import UsageError
from genconf.wire import schema_from_proto


async def _schema_of(client: Client, application: str) -> dict[str, OptionSpec]:
    app = await client.get_application(application)
    return parse_schema(schema_from_proto(app.schema))


def typed_values(
    schema: Mapping[str, OptionSpec], pairs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """``k=v`` strings as the values the schema types them (``port=9090`` -> 9090)."""
    return {key: parse_text_value(key, require_key(schema, key), text) for key, text in pairs}


async def _config_get(ctx: Ctx, args: argparse.Namespace) -> None:
    client = ctx.client
    if "/" not in args.target:
        app = await client.get_application(args.target)
        data = shapes.app_config_view(app)
        header = [("application", args.target), ("version", str(data["version"]))]
        rows = [
            (k, v, "master" if k in data["settings"] else "default")
            for k, v in sorted(data["effective"].items())
        ]
        ctx.out.emit(data, render.render_config(rows, header))
        return
    config = await client.get_config(args.target)
    data = shapes.config_view(config)
    if ctx.out.machine:
        ctx.out.emit(data)
        return
    app = await client.get_application(config.application)
    changed: dict[str, Any] = {}
    if config.branch:
        changes = shapes.branch_changes_view(await client.get_branch(config.branch))
        changed = changes.get(config.application, {})

    def source(key: str) -> str:
        if key in changed:
            return f"branch {config.branch}"
        return "master" if key in app.settings.fields else "default"

    header = [
        ("unit", args.target),
        ("branch", config.branch or "- (master)"),
        ("app version", str(config.app_version)),
        ("hash", config.hash),
    ]
    rows = [(k, v, source(k)) for k, v in sorted(config.config.items())]
    ctx.out.emit(data, render.render_config(rows, header))


def _check_branch_flags(args: argparse.Namespace) -> None:
    if args.branch and (args.expected_version is not None or args.reason):
        raise UsageError(
            "--expected-version and --reason apply to master; a branch records them "
            "when it is committed (genconf branch commit --reason)"
        )


async def _write_config(
    ctx: Ctx,
    args: argparse.Namespace,
    what: str,
    values: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
) -> None:
    """Set ``values`` and unset ``unset`` on master or on ``--branch``; ``what``
    describes the change in the sentence printed."""
    if args.branch:
        w = await ctx.settled(
            await ctx.client.set_branch_config(args.branch, args.application, values, unset=unset)
        )
        written(ctx, w, f"branch {args.branch}: {args.application} {what}")
        return
    w = await ctx.settled(
        await ctx.client.set_config(
            args.application,
            values,
            unset=unset,
            expected_version=args.expected_version,
            reason=args.reason or "",
            created_by=user(),
        )
    )
    written(ctx, w, f"{args.application}: {what}{versions_text(w)}")


async def _config_set(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    values = typed_values(await _schema_of(ctx.client, args.application), args.values)
    what = " ".join(f"{k}={show(v)}" for k, v in values.items())
    await _write_config(ctx, args, what, values=values)


async def _config_unset(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    await _write_config(ctx, args, f"unset {' '.join(args.keys)}", unset=args.keys)


# Where a write goes and what guards it, for set and unset.
WRITE_FLAGS = (
    arg("--branch", help="stage the change on this branch instead of master"),
    expected_version("fail (writing nothing) unless the application is at this version"),
    reason("why: recorded in the new version"),
)


def register(commands: Commands) -> None:
    config = commands.group("config", help="read and write configuration", examples=["get web/0"])
    config.add_all(
        Command(
            "get",
            _config_get,
            "an application's config (APP) or a unit's effective config (APP/N)",
            ["web", "web/0", "web/0 -o json"],
            [arg("target", help="APP or APP/N")],
        ),
        Command(
            "set",
            _config_set,
            "set keys on master (or on a branch); values are typed by the schema",
            [
                "web port=9090 log-level=debug --reason 'move port'",
                "web workers=8 --expected-version 3",
                "web log-level=debug --branch canary",
                """web features='{"search": true}'""",
            ],
            [
                "application",
                arg("values", nargs="+", type=assignment, metavar="KEY=VALUE"),
                *WRITE_FLAGS,
            ],
            description="Set config keys. Each VALUE is read as the key's schema type: "
            "port=9090 is the int 9090 when the schema says int; object and list values "
            "are JSON. Without --branch this writes master: a new version.",
        ),
        Command(
            "unset",
            _config_unset,
            "unset keys (back to the charm default) on master or a branch",
            ["web port", "web log-level --branch canary"],
            ["application", arg("keys", nargs="+", metavar="KEY"), *WRITE_FLAGS],
        ),
    )
