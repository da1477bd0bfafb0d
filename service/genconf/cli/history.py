"""`genconf` commands for history: versions (one application's), generations
(model-wide change records) and key history.

Each prints the stable shape `genconf.shapes` defines for its result (``-o json``
/ ``-o yaml``) or its table (``-o table``). Versions carry no schema, so commands
that print config values fetch the application's to type them.

Wherever a command names a version (VERSION), a number (``3``) and a semantic label
(``1.0.0`` or ``v1.0.0``) both work; anything else is a usage error that says so.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import (
    Arg,
    Command,
    Commands,
    Ctx,
    arg,
    expected_version,
    force,
    meta,
    metadata_of,
    reason,
    user,
    written,
)
from genconf.cli.output import show
from genconf.client import Client, WriteResult
from genconf.defaults import positive
from genconf.domain.patch import unified_diff
from genconf.domain.semver import SemVer
from genconf.errors import FailedPrecondition, InvalidArgument, UsageError
from genconf.v1 import history_pb2 as hpb
from genconf.wire import from_struct


@dataclass(frozen=True)
class VersionArg:
    """A VERSION as given on the command line: a number (0: the current one) or a label."""

    number: int = 0
    label: str = ""

    def __str__(self) -> str:
        return self.label or f"version {self.number}"


def bounded_limit(text: str) -> int:
    """``--limit``: 1 to 1000 (0 would mean the server's default: say so instead)."""
    value = positive(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(
            f"expected at most 1000, got {value}; page back with --before"
        )
    return value


def version_arg(text: str) -> VersionArg:
    """``3`` -> version 3; ``1.0.0`` or ``v1.0.0`` -> that label (checked as the server
    checks it, so a typo is a usage error here, not a round trip)."""
    if text.isascii() and text.isdigit():
        return VersionArg(number=int(text))
    try:
        SemVer.parse(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}; or a version number such as 3") from None
    return VersionArg(label=text)


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
    ref: VersionArg = args.version
    version = await ctx.client.get_version(args.application, ref.number, label=ref.label)
    shown = shapes.version_view(version, await _schema(ctx.client, args.application))
    ctx.out.emit(shown, render.render_version(shown))


async def _version_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    start: VersionArg = args.from_version
    end: VersionArg = args.to_version
    diff = await ctx.client.diff_versions(
        args.application,
        start.number,
        end.number,
        from_label=start.label,
        to_label=end.label,
    )
    schema = await _schema(ctx.client, args.application)
    if args.key is not None:
        await _key_diff(ctx, diff, args.key, schema)
        return
    d = shapes.version_diff_view(diff, schema)
    ctx.out.emit(d, render.render_version_diff(d))


async def _key_diff(
    ctx: Ctx, diff: hpb.DiffVersionsResponse, key: str, schema: shapes.Schema
) -> None:
    """``version diff --key KEY``: the unified diff of one text value, which
    ``config patch --diff`` applies as it is."""
    old, new = [
        _text_of(await ctx.client.get_version(diff.application, number), key, schema)
        for number in (diff.from_version, diff.to_version)
    ]
    text = unified_diff(old, new, key)
    shown = shapes.key_diff_view(diff, key, text)
    ctx.out.emit(shown, render.render_patch(text))


def _text_of(version: Any, key: str, schema: shapes.Schema) -> str:
    """``key``'s effective text value in ``version`` (a `types_pb2.Version`): the value
    set, else the schema's default; anything else is an error naming the version."""
    settings = from_struct(version.settings)
    option = schema.get(key)
    where = f"version {version.version} of {version.application}"
    if key in settings:
        value = settings[key]
    elif option is not None and option.HasField("default"):
        value = shapes.option_view(option)["default"]
    else:
        raise FailedPrecondition(
            f"key {key!r} has no value in {where}; --key diffs a text value both "
            "versions hold (drop --key to compare everything)"
        )
    if not isinstance(value, str):
        raise FailedPrecondition(
            f"key {key!r} is not text in {where} (it holds {show(value)}); --key diffs "
            "text values only (drop --key to compare any values)"
        )
    return value


async def _version_rollback(ctx: Ctx, args: argparse.Namespace) -> None:
    ref: VersionArg = args.version
    w = await ctx.settled(
        await ctx.client.rollback(
            args.application,
            ref.number,
            to_label=ref.label,
            expected_version=args.expected_version,
            reason=args.reason or "",
            metadata=metadata_of(args.meta),
            created_by=user(),
        )
    )
    text = _new_versions(f"rolled {args.application} back to {ref}", w)
    written(ctx, w, text)


def _emit_label(ctx: Ctx, label: shapes.Data) -> None:
    text = f"{label['application']} version {label['version']} is labelled {label['label']}"
    ctx.out.emit(label, render.render_text(text))


async def _version_tag(ctx: Ctx, args: argparse.Namespace) -> None:
    ref: VersionArg = args.version
    label = await ctx.client.tag_version(
        args.application, args.label, version=ref.number, version_label=ref.label
    )
    _emit_label(ctx, shapes.label_view(label))


async def _version_bump(ctx: Ctx, args: argparse.Namespace) -> None:
    ref: VersionArg = args.version
    label = await ctx.client.bump_version(
        args.application, args.part, version=ref.number, version_label=ref.label
    )
    _emit_label(ctx, shapes.label_view(label))


async def _version_latest(ctx: Ctx, args: argparse.Namespace) -> None:
    latest = shapes.latest_view(await ctx.client.latest_version(args.application))
    ctx.out.emit(latest, render.render_latest(latest))


async def _key_history(ctx: Ctx, args: argparse.Namespace) -> None:
    before: VersionArg = args.before
    history = await ctx.client.key_history(
        args.application,
        args.key,
        limit=args.limit,
        before_version=before.number,
        before_label=before.label,
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
    ref: VersionArg | None = args.version
    if args.id and (args.application or ref is not None):
        raise UsageError("name the generation by its ID or by --application [--version], not both")
    if ref is not None and not args.application:
        raise UsageError("--version names a version of --application APP; give both")
    if not args.id and not args.application:
        raise UsageError(
            "name the generation to revert: its ID, or --application APP [--version VERSION] "
            "for the one that wrote that version (default: the current one)"
        )
    ref = ref or VersionArg()
    w = await ctx.settled(
        await ctx.client.revert_generation(
            args.id,
            application=args.application or "",
            version=ref.number,
            label=ref.label,
            force=args.force,
            reason=args.reason or "",
            created_by=user(),
        )
    )
    what = f"generation {args.id}" if args.id else f"the generation of {args.application} {ref}"
    written(ctx, w, _new_versions(f"reverted {what}", w))


def _paging(since: str | None = None, *, by_version: bool = False) -> list[Arg]:
    """--limit, --since (when ``since`` says what it skips) and --before (a VERSION,
    number or label, when ``by_version``)."""
    since_flag = [arg("--since", type=int, default=0, help=since)] if since is not None else []
    before = (
        arg(
            "--before",
            type=version_arg,
            default=VersionArg(),
            metavar="VERSION",
            help="only versions older than VERSION (a number or a label); page back with "
            "the last entry's number (default: from the newest)",
        )
        if by_version
        else arg(
            "--before",
            type=int,
            default=0,
            metavar="N",
            help="only entries older than N; page back with the last entry's number "
            "(default: from the newest)",
        )
    )
    return [
        arg(
            "--limit",
            type=bounded_limit,
            default=0,
            metavar="N",
            help="at most N, 1 to 1000 (default 100)",
        ),
        *since_flag,
        before,
    ]


# A version named on the command line: a number or a semantic label.
VERSION_HELP = "a version number (3) or label (1.0.0 or v1.0.0)"
# The version a label goes on, for tag and bump.
LABELLED_VERSION = arg(
    "--version",
    type=version_arg,
    default=VersionArg(),
    metavar="VERSION",
    help=f"{VERSION_HELP}; default: the current version",
)


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
        help="one version (by number or label): get, diff, rollback, tag, bump, latest",
        examples=[
            "get web 3",
            "get web 1.0.0",
            "diff web 1.0.0 2.0.0",
            "rollback web 1.0.1",
            "bump web minor",
        ],
    )
    shown_version = arg(
        "version",
        type=version_arg,
        nargs="?",
        default=VersionArg(),
        metavar="VERSION",
        help=f"{VERSION_HELP}; default: the current version",
    )
    version.add_all(
        Command(
            "get",
            _version_show,
            "a version, by number or label (default: the current one)",
            ["web 3", "web 1.0.0"],
            ["application", shown_version],
        ),
        Command(
            "show",
            _version_show,
            "a version (the same as get)",
            ["web 3", "web v1.0.0"],
            ["application", shown_version],
        ),
        Command(
            "diff",
            _version_diff,
            "effective config of one version against another (default: current), with a summary",
            ["web 2", "web 2 5", "web 1.0.0 2.0.0", "web 1.0.0 2.0.0 --key motd > motd.diff"],
            [
                "application",
                arg("from_version", type=version_arg, metavar="FROM", help=VERSION_HELP),
                arg(
                    "to_version",
                    type=version_arg,
                    nargs="?",
                    default=VersionArg(),
                    metavar="TO",
                    help=f"{VERSION_HELP}; default: the current version",
                ),
                arg(
                    "--key",
                    metavar="KEY",
                    help="print only the unified diff of this key's text value (it "
                    "applies with genconf config patch --diff)",
                ),
            ],
            description="Compare the effective config of two versions, each named by "
            "number or label. The first line sums it up: 'web 1.0.0 -> 1.1.0: 2 changed, "
            "1 added, 0 removed' (a version without a label reads 'version N'). With "
            "--key, print only the unified diff of one text value.",
        ),
        Command(
            "rollback",
            _version_rollback,
            "a new version with an older version's settings",
            [
                "web 2",
                "web 1.0.1",
                "web 2 --expected-version 7 --reason 'bad deploy' --meta ticket=OPS-12",
            ],
            [
                "application",
                arg("version", type=version_arg, metavar="VERSION", help=VERSION_HELP),
                expected_version(),
                reason(default=""),
                meta(
                    "kept in the new version's metadata, beside rollback_from and "
                    "rollback_to (which the server records); VALUE is JSON when it reads as JSON"
                ),
            ],
        ),
        Command(
            "tag",
            _version_tag,
            "label a version with a semantic version (labels grow with versions)",
            ["web 1.4.0", "web 1.4.0 --version 3"],
            ["application", "label", LABELLED_VERSION],
        ),
        Command(
            "bump",
            _version_bump,
            "label a version one major|minor|patch above the highest label at or below it",
            ["web patch", "web minor --version 3"],
            ["application", arg("part", choices=["major", "minor", "patch"]), LABELLED_VERSION],
        ),
        Command(
            "latest",
            _version_latest,
            "the current version and the highest label",
            ["web"],
            ["application"],
        ),
    )
    commands.add_all(
        Command(
            "key-history",
            _key_history,
            "each version where one key's effective value changed",
            ["web port", "web port --limit 5 --before 40", "web port --before 1.2.0"],
            ["application", "key", *_paging(by_version=True)],
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
        "generation",
        help="one generation: show, revert",
        examples=["show 4", "revert 4", "revert --application web --version 1.2.0"],
    )
    generation.add_all(
        Command("show", _generation_show, "a generation", ["4"], [arg("id", type=int)]),
        Command(
            "revert",
            _generation_revert,
            "apply the inverse of a generation (conflict-checked)",
            ["4", "4 --force", "--application web --version 1.2.0", "--application web"],
            [
                arg("id", type=int, nargs="?", default=0, help="the generation's id"),
                arg(
                    "--application",
                    metavar="APP",
                    help="instead of an ID: the generation that wrote APP's --version",
                ),
                arg(
                    "--version",
                    type=version_arg,
                    default=None,
                    metavar="VERSION",
                    help=f"with --application: {VERSION_HELP}; default: its current version",
                ),
                force("overwrite keys changed since"),
                reason(default=""),
            ],
        ),
    )
