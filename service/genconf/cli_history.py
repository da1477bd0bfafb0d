"""`genconf` commands for history (versions, generations) and tokens.

Each prints its result through the shared output layer (`-o table|json|yaml`;
without a table renderer, people get YAML). Handlers take the CLI's context.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.message import Message

if TYPE_CHECKING:
    from genconf.cli import Commands, Ctx
    from genconf.client import WriteResult

DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def plain(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _new_versions(w: WriteResult) -> dict[str, Any]:
    """What a rollback or revert wrote: each application's new version, the generation."""
    return {"versions": dict(w.versions), "generation": w.generation}


def duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    match = DURATION_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 12h or 30d, got {text!r}")
    return int(match[1]) * SECONDS[match[2]]


# -- versions ----------------------------------------------------------------------


async def _versions(ctx: Ctx, args: argparse.Namespace) -> None:
    page = await ctx.client.list_versions(
        args.application, limit=args.limit, since_version=args.since
    )
    ctx.out.emit([plain(v) for v in page.versions])


async def _version_show(ctx: Ctx, args: argparse.Namespace) -> None:
    ctx.out.emit(plain(await ctx.client.get_version(args.application, args.version)))


async def _version_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    diff = await ctx.client.diff_versions(args.application, args.from_version, args.to_version)
    ctx.out.emit(plain(diff))


async def _version_rollback(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.settled(
        await ctx.client.rollback(
            args.application,
            args.version,
            expected_version=args.expected_version,
            reason=args.reason or "",
            created_by=args.created_by,
        )
    )
    ctx.out.emit(_new_versions(written))


async def _version_tag(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.tag_version(args.application, args.label, version=args.version)
    ctx.out.emit(plain(label))


async def _version_bump(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.bump_version(args.application, args.part, version=args.version)
    ctx.out.emit(plain(label))


async def _version_latest(ctx: Ctx, args: argparse.Namespace) -> None:
    ctx.out.emit(plain(await ctx.client.latest_version(args.application)))


async def _key_history(ctx: Ctx, args: argparse.Namespace) -> None:
    history = await ctx.client.key_history(args.application, args.key, limit=args.limit)
    ctx.out.emit([plain(e) for e in history.entries])


# -- generations -------------------------------------------------------------------


async def _generations(ctx: Ctx, args: argparse.Namespace) -> None:
    page = await ctx.client.list_generations(
        limit=args.limit, since=args.since, application=args.application or ""
    )
    ctx.out.emit([plain(g) for g in page.generations])


async def _generation_show(ctx: Ctx, args: argparse.Namespace) -> None:
    ctx.out.emit(plain(await ctx.client.get_generation(args.id)))


async def _generation_revert(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.settled(
        await ctx.client.revert_generation(
            args.id, force=args.force, reason=args.reason or "", created_by=args.created_by
        )
    )
    ctx.out.emit(_new_versions(written))


# -- tokens ------------------------------------------------------------------------


async def _token_create(ctx: Ctx, args: argparse.Namespace) -> None:
    created = await ctx.client.create_token(
        args.role,
        unit=args.unit or "",
        expires_in_seconds=args.expires or 0,
        description=args.description or "",
    )
    await ctx.client.list_tokens(min_revision=created.revision)
    ctx.out.emit({"token": created.token, **plain(created.info)})


async def _token_list(ctx: Ctx, args: argparse.Namespace) -> None:
    ctx.out.emit([plain(t) for t in await ctx.client.list_tokens()])


async def _token_revoke(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.client.revoke_token(args.id)
    await ctx.client.list_tokens(min_revision=written.revision)
    ctx.out.emit({"revoked": args.id})


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")


def add_history(commands: Commands, user: str) -> None:
    p = commands.add(
        "versions",
        _versions,
        help="an application's versions, newest first",
        examples=["web", "web --limit 5", "web --since 12"],
    )
    p.add_argument("application")
    _limits(p)
    p.add_argument("--since", type=int, default=0, help="only versions after this one")

    _, version = commands.group(
        "version",
        help="one version: show, diff, rollback, tag, bump, latest",
        examples=["show web 3", "diff web 2 5", "rollback web 2", "bump web minor"],
    )
    p = version.add("show", _version_show, help="a version (0: current)", examples=["web 3"])
    p.add_argument("application")
    p.add_argument("version", type=int, nargs="?", default=0)
    p = version.add(
        "diff",
        _version_diff,
        help="effective config of one version against another (default: current)",
        examples=["web 2", "web 2 5"],
    )
    p.add_argument("application")
    p.add_argument("from_version", type=int)
    p.add_argument("to_version", type=int, nargs="?", default=0)
    p = version.add(
        "rollback",
        _version_rollback,
        help="a new version with an older version's settings",
        examples=["web 2", "web 2 --expected-version 7 --reason 'bad deploy'"],
    )
    p.add_argument("application")
    p.add_argument("version", type=int)
    p.add_argument("--expected-version", type=int, default=None)
    p.add_argument("--reason", default="")
    p.set_defaults(created_by=user)
    p = version.add(
        "tag",
        _version_tag,
        help="label a version with a semantic version",
        examples=["web 1.4.0", "web 1.4.0 --version 3"],
    )
    p.add_argument("application")
    p.add_argument("label")
    p.add_argument("--version", type=int, default=0, help="default: the current version")
    p = version.add(
        "bump",
        _version_bump,
        help="label a version one major|minor|patch above the highest label",
        examples=["web patch", "web minor --version 3"],
    )
    p.add_argument("application")
    p.add_argument("part", choices=["major", "minor", "patch"])
    p.add_argument("--version", type=int, default=0, help="default: the current version")
    p = version.add(
        "latest", _version_latest, help="current version and highest label", examples=["web"]
    )
    p.add_argument("application")

    p = commands.add(
        "key-history",
        _key_history,
        help="each version where one key's effective value changed",
        examples=["web port"],
    )
    p.add_argument("application")
    p.add_argument("key")
    _limits(p)

    p = commands.add(
        "generations",
        _generations,
        help="model-wide change records, newest first",
        examples=["", "--application web --limit 10"],
    )
    _limits(p)
    p.add_argument("--since", type=int, default=0, help="only generations after this id")
    p.add_argument("--application", default="", help="only those that touched it")
    _, generation = commands.group(
        "generation", help="one generation: show, revert", examples=["show 4", "revert 4"]
    )
    p = generation.add("show", _generation_show, help="a generation", examples=["4"])
    p.add_argument("id", type=int)
    p = generation.add(
        "revert",
        _generation_revert,
        help="apply the inverse of a generation (conflict-checked)",
        examples=["4", "4 --force"],
    )
    p.add_argument("id", type=int)
    p.add_argument("--force", action="store_true", help="overwrite keys changed since")
    p.add_argument("--reason", default="")
    p.set_defaults(created_by=user)


def add_tokens(commands: Commands) -> None:
    _, token = commands.group(
        "token",
        help="bearer tokens (admin): create, list, revoke",
        examples=["create --role observer", "create --role agent --unit web/0 --expires 30d"],
    )
    p = token.add(
        "create",
        _token_create,
        help="mint a token; it is printed once",
        examples=["--role controller --expires 12h", "--role agent --unit web/0"],
    )
    p.add_argument("--role", required=True, choices=["admin", "controller", "observer", "agent"])
    p.add_argument("--unit", default="", help="APP/N: the unit an agent token is bound to")
    p.add_argument("--expires", type=duration, default=None, help="e.g. 12h, 30d (default never)")
    p.add_argument("--description", default="")
    token.add("list", _token_list, help="tokens (never their secrets)", examples=[""])
    p = token.add("revoke", _token_revoke, help="revoke a token by id", examples=["3f2a..."])
    p.add_argument("id")
