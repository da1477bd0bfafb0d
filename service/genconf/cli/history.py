"""`genconf` commands for history: versions (one application's), generations
(model-wide change records) and key history.

Each prints the stable shape `genconf.cli.shapes` defines for its result (``-o json``
/ ``-o yaml``) or its table (``-o table``). Versions carry no schema, so commands
that print config values fetch the application's to type them.
"""

from __future__ import annotations

import argparse

from genconf.cli import render, shapes
from genconf.cli.framework import (
    Arg,
    Command,
    Commands,
    Ctx,
    arg,
    expected_version,
    force,
    reason,
    user,
    written,
)
from genconf.client import Client, WriteResult


async def _schema(client: Client, application: str) -> shapes.Schema:
    """The application's current schema, which types its versions' values. Called
    after the history read, so a missing application or version reports as such."""
    return (await client.get_application(application)).schema


async def _schemas(client: Client) -> dict[str, shapes.Schema]:
    """Every application's schema, for generations (which span applications)."""
    return {app.name: app.schema for app in await client.list_applications()}


def _new_versions(what: str, w: WriteResult) -> str:
    versions = ", ".join(f"{app} is now version {v}" for app, v in sorted(w.versions.items()))
    return f"{what}: {versions or 'nothing changed'} (generation {w.generation or '-'})"


# -- versions ----------------------------------------------------------------------


async def _versions(ctx: Ctx, args: argparse.Namespace) -> None:
    page = await ctx.client.list_versions(
        args.application, limit=args.limit, since_version=args.since, before_version=args.before
    )
    schema = await _schema(ctx.client, args.application)
    versions = [shapes.version_view(v, schema) for v in page.versions]
    ctx.out.emit(versions, render.render_versions(versions))


async def _version_show(ctx: Ctx, args: argparse.Namespace) -> None:
    version = await ctx.client.get_version(args.application, args.version)
    shown = shapes.version_view(version, await _schema(ctx.client, args.application))
    ctx.out.emit(shown, render.render_version(shown))


async def _version_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    diff = await ctx.client.diff_versions(args.application, args.from_version, args.to_version)
    d = shapes.version_diff_view(diff, await _schema(ctx.client, args.application))
    ctx.out.emit(d, render.render_version_diff(d))


async def _version_rollback(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.rollback(
            args.application,
            args.version,
            expected_version=args.expected_version,
            reason=args.reason or "",
            created_by=user(),
        )
    )
    text = _new_versions(f"rolled {args.application} back to version {args.version}", w)
    written(ctx, w, text)


def _emit_label(ctx: Ctx, label: shapes.Data) -> None:
    text = f"{label['application']} version {label['version']} is labelled {label['label']}"
    ctx.out.emit(label, render.render_text(text))


async def _version_tag(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.tag_version(args.application, args.label, version=args.version)
    _emit_label(ctx, shapes.label_view(label))


async def _version_bump(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.bump_version(args.application, args.part, version=args.version)
    _emit_label(ctx, shapes.label_view(label))


async def _version_latest(ctx: Ctx, args: argparse.Namespace) -> None:
    latest = shapes.latest_view(await ctx.client.latest_version(args.application))
    ctx.out.emit(latest, render.render_latest(latest))


async def _key_history(ctx: Ctx, args: argparse.Namespace) -> None:
    history = await ctx.client.key_history(
        args.application, args.key, limit=args.limit, before_version=args.before
    )
    entries = shapes.key_history_view(history, await _schema(ctx.client, args.application))
    ctx.out.emit(entries, render.render_key_history(entries))


# -- generations -------------------------------------------------------------------


async def _generations(ctx: Ctx, args: argparse.Namespace) -> None:
    page = await ctx.client.list_generations(
        limit=args.limit, since=args.since, before=args.before, application=args.application or ""
    )
    schemas = await _schemas(ctx.client)
    generations = [shapes.generation_view(g, schemas) for g in page.generations]
    ctx.out.emit(generations, render.render_generations(generations))


async def _generation_show(ctx: Ctx, args: argparse.Namespace) -> None:
    generation = await ctx.client.get_generation(args.id)
    shown = shapes.generation_view(generation, await _schemas(ctx.client))
    ctx.out.emit(shown, render.render_generation(shown))


async def _generation_revert(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.revert_generation(
            args.id, force=args.force, reason=args.reason or "", created_by=user()
        )
    )
    written(ctx, w, _new_versions(f"reverted generation {args.id}", w))


def _paging(since: str | None = None) -> list[Arg]:
    """--limit, --since (when ``since`` says what it skips) and --before."""
    since_flag = [arg("--since", type=int, default=0, help=since)] if since is not None else []
    return [
        arg("--limit", type=int, default=0, help="at most this many (default 100)"),
        *since_flag,
        arg(
            "--before",
            type=int,
            default=0,
            metavar="N",
            help="only entries older than N; page back with the last entry's number",
        ),
    ]


# The version a label goes on, for tag and bump.
LABELLED_VERSION = arg("--version", type=int, default=0, help="default: the current version")


def register(commands: Commands) -> None:
    commands.add_all(
        Command(
            "versions",
            _versions,
            "an application's versions, newest first",
            ["web", "web --limit 5", "web --since 12", "web --limit 5 --before 40"],
            ["application", *_paging(since="only versions after this one")],
        )
    )
    version = commands.group(
        "version",
        help="one version: show, diff, rollback, tag, bump, latest",
        examples=["show web 3", "diff web 2 5", "rollback web 2", "bump web minor"],
    )
    version.add_all(
        Command(
            "show",
            _version_show,
            "a version (0: current)",
            ["web 3"],
            ["application", arg("version", type=int, nargs="?", default=0)],
        ),
        Command(
            "diff",
            _version_diff,
            "effective config of one version against another (default: current)",
            ["web 2", "web 2 5"],
            [
                "application",
                arg("from_version", type=int),
                arg("to_version", type=int, nargs="?", default=0),
            ],
        ),
        Command(
            "rollback",
            _version_rollback,
            "a new version with an older version's settings",
            ["web 2", "web 2 --expected-version 7 --reason 'bad deploy'"],
            ["application", arg("version", type=int), expected_version(), reason(default="")],
        ),
        Command(
            "tag",
            _version_tag,
            "label a version with a semantic version",
            ["web 1.4.0", "web 1.4.0 --version 3"],
            ["application", "label", LABELLED_VERSION],
        ),
        Command(
            "bump",
            _version_bump,
            "label a version one major|minor|patch above the highest label",
            ["web patch", "web minor --version 3"],
            ["application", arg("part", choices=["major", "minor", "patch"]), LABELLED_VERSION],
        ),
        Command(
            "latest", _version_latest, "current version and highest label", ["web"], ["application"]
        ),
    )
    commands.add_all(
        Command(
            "key-history",
            _key_history,
            "each version where one key's effective value changed",
            ["web port", "web port --limit 5 --before 40"],
            ["application", "key", *_paging()],
        ),
        Command(
            "generations",
            _generations,
            "model-wide change records, newest first",
            ["", "--application web --limit 10", "--limit 10 --before 31"],
            [
                *_paging(since="only generations after this id"),
                arg("--application", default="", help="only those that touched it"),
            ],
        ),
    )
    generation = commands.group(
        "generation", help="one generation: show, revert", examples=["show 4", "revert 4"]
    )
    generation_id = arg("id", type=int)
    generation.add_all(
        Command("show", _generation_show, "a generation", ["4"], [generation_id]),
        Command(
            "revert",
            _generation_revert,
            "apply the inverse of a generation (conflict-checked)",
            ["4", "4 --force"],
            [generation_id, force("overwrite keys changed since"), reason(default="")],
        ),
    )
