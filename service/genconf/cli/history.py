"""`genconf` commands for history (versions, generations) and tokens.

Each prints the stable shape `genconf.cli.views` defines for its result (``-o json``
/ ``-o yaml``) or that view's table (``-o table``). Versions carry no schema, so
commands that print config values fetch the application's to type them.
Handlers take the CLI's context.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from genconf.cli import views

if TYPE_CHECKING:
    from genconf.cli.main import Commands, Ctx
    from genconf.client import Client, WriteResult

DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    match = DURATION_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 12h or 30d, got {text!r}")
    return int(match[1]) * SECONDS[match[2]]


async def _schema(client: Client, application: str) -> views.Schema:
    """The application's current schema, which types its versions' values. Called
    after the history read, so a missing application or version reports as such."""
    return (await client.get_application(application)).schema


async def _schemas(client: Client) -> dict[str, views.Schema]:
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
    versions = [views.version_view(v, schema) for v in page.versions]
    ctx.out.emit(versions, views.render_versions(versions))


async def _version_show(ctx: Ctx, args: argparse.Namespace) -> None:
    version = await ctx.client.get_version(args.application, args.version)
    shown = views.version_view(version, await _schema(ctx.client, args.application))
    ctx.out.emit(shown, views.render_version(shown))


async def _version_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    diff = await ctx.client.diff_versions(args.application, args.from_version, args.to_version)
    d = views.version_diff_view(diff, await _schema(ctx.client, args.application))
    ctx.out.emit(d, views.render_version_diff(d))


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
    text = _new_versions(f"rolled {args.application} back to version {args.version}", written)
    ctx.out.emit(views.write_view(written), views.render_text(text))


def _emit_label(ctx: Ctx, label: views.Data) -> None:
    text = f"{label['application']} version {label['version']} is labelled {label['label']}"
    ctx.out.emit(label, views.render_text(text))


async def _version_tag(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.tag_version(args.application, args.label, version=args.version)
    _emit_label(ctx, views.label_view(label))


async def _version_bump(ctx: Ctx, args: argparse.Namespace) -> None:
    label = await ctx.client.bump_version(args.application, args.part, version=args.version)
    _emit_label(ctx, views.label_view(label))


async def _version_latest(ctx: Ctx, args: argparse.Namespace) -> None:
    latest = views.latest_view(await ctx.client.latest_version(args.application))
    ctx.out.emit(latest, views.render_latest(latest))


async def _key_history(ctx: Ctx, args: argparse.Namespace) -> None:
    history = await ctx.client.key_history(
        args.application, args.key, limit=args.limit, before_version=args.before
    )
    entries = views.key_history_view(history, await _schema(ctx.client, args.application))
    ctx.out.emit(entries, views.render_key_history(entries))


# -- generations -------------------------------------------------------------------


async def _generations(ctx: Ctx, args: argparse.Namespace) -> None:
    page = await ctx.client.list_generations(
        limit=args.limit, since=args.since, before=args.before, application=args.application or ""
    )
    schemas = await _schemas(ctx.client)
    generations = [views.generation_view(g, schemas) for g in page.generations]
    ctx.out.emit(generations, views.render_generations(generations))


async def _generation_show(ctx: Ctx, args: argparse.Namespace) -> None:
    generation = await ctx.client.get_generation(args.id)
    shown = views.generation_view(generation, await _schemas(ctx.client))
    ctx.out.emit(shown, views.render_generation(shown))


async def _generation_revert(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.settled(
        await ctx.client.revert_generation(
            args.id, force=args.force, reason=args.reason or "", created_by=args.created_by
        )
    )
    text = _new_versions(f"reverted generation {args.id}", written)
    ctx.out.emit(views.write_view(written), views.render_text(text))


# -- tokens ------------------------------------------------------------------------


async def _token_create(ctx: Ctx, args: argparse.Namespace) -> None:
    created = await ctx.client.create_token(
        args.role,
        unit=args.unit or "",
        expires_in_seconds=args.expires or 0,
        description=args.description or "",
        name=args.name or "",
    )
    await ctx.client.list_tokens(min_revision=created.revision)
    token = views.created_token_view(created)
    ctx.out.emit(token, views.render_created_token(token))


async def _token_list(ctx: Ctx, args: argparse.Namespace) -> None:
    tokens = [views.token_view(t) for t in await ctx.client.list_tokens()]
    ctx.out.emit(tokens, views.render_tokens(tokens))


async def _token_revoke(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.client.revoke_token(args.id)
    await ctx.client.list_tokens(min_revision=written.revision)
    ctx.out.emit({"revoked": args.id}, views.render_text(f"revoked token {args.id}"))


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")


def _before(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--before",
        type=int,
        default=0,
        metavar="N",
        help="only entries older than N; page back with the last entry's number",
    )


def add_history(commands: Commands, user: str) -> None:
    p = commands.add(
        "versions",
        _versions,
        help="an application's versions, newest first",
        examples=["web", "web --limit 5", "web --since 12", "web --limit 5 --before 40"],
    )
    p.add_argument("application")
    _limits(p)
    p.add_argument("--since", type=int, default=0, help="only versions after this one")
    _before(p)

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
        examples=["web port", "web port --limit 5 --before 40"],
    )
    p.add_argument("application")
    p.add_argument("key")
    _limits(p)
    _before(p)

    p = commands.add(
        "generations",
        _generations,
        help="model-wide change records, newest first",
        examples=["", "--application web --limit 10", "--limit 10 --before 31"],
    )
    _limits(p)
    p.add_argument("--since", type=int, default=0, help="only generations after this id")
    _before(p)
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
        examples=["--role controller --name ci-deploy --expires 12h", "--role agent --unit web/0"],
    )
    p.add_argument("--role", required=True, choices=["admin", "controller", "observer", "agent"])
    p.add_argument(
        "--unit",
        default="",
        help="APP/N: the unit an agent token is bound to (it must exist; a re-created "
        "unit of that name needs a new token)",
    )
    p.add_argument("--expires", type=duration, default=None, help="e.g. 12h, 30d (default never)")
    p.add_argument("--description", default="")
    p.add_argument(
        "--name",
        default="",
        help="who the token stands for (e.g. ci-deploy): writes made with it record "
        "'NAME (token ID)' as their author",
    )
    token.add("list", _token_list, help="tokens (never their secrets)", examples=[""])
    p = token.add("revoke", _token_revoke, help="revoke a token by id", examples=["3f2a..."])
    p.add_argument("id")
