"""`genconf token`: mint, list and revoke bearer tokens (admin)."""

from __future__ import annotations

import argparse

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import Command, Commands, Ctx, arg, duration


async def _tokens_settled(ctx: Ctx, revision: int) -> None:
    """Return once the server's token list holds the write at ``revision``."""
    await ctx.client.list_tokens(min_revision=revision)


async def _token_create(ctx: Ctx, args: argparse.Namespace) -> None:
    created = await ctx.client.create_token(
        args.role,
        unit=args.unit or "",
        expires_in_seconds=args.expires or 0,
        description=args.description or "",
        name=args.name or "",
    )
    await _tokens_settled(ctx, created.revision)
    token = shapes.created_token_view(created)
    ctx.out.emit(token, render.render_created_token(token))


async def _token_list(ctx: Ctx, args: argparse.Namespace) -> None:
    tokens = [shapes.token_view(t) for t in await ctx.client.list_tokens()]
    ctx.out.emit(tokens, render.render_tokens(tokens))


async def _token_revoke(ctx: Ctx, args: argparse.Namespace) -> None:
    written = await ctx.client.revoke_token(args.id)
    await _tokens_settled(ctx, written.revision)
    ctx.out.emit({"revoked": args.id}, render.render_text(f"revoked token {args.id}"))


def register(commands: Commands) -> None:
    token = commands.group(
        "token",
        help="bearer tokens (admin): create, list, revoke",
        examples=["create --role observer", "create --role agent --unit web/0 --expires 30d"],
    )
    token.add_all(
        Command(
            "create",
            _token_create,
            "mint a token; it is printed once",
            ["--role controller --name ci-deploy --expires 12h", "--role agent --unit web/0"],
            [
                arg(
                    "--role",
                    required=True,
                    choices=["admin", "controller", "observer", "agent"],
                    help="what the token may do: admin everything, controller change "
                    "config, observer read (secrets hidden), agent its own unit",
                ),
                arg(
                    "--unit",
                    default="",
                    help="APP/N: the unit an agent token is bound to (it must exist; a re-created "
                    "unit of that name needs a new token)",
                ),
                arg("--expires", type=duration, default=None, help="e.g. 12h, 30d (default never)"),
                arg("--description", default="", help="a note kept with the token"),
                arg(
                    "--name",
                    default="",
                    help="who the token stands for (e.g. ci-deploy): writes made with it record "
                    "'NAME (token ID)' as their author",
                ),
            ],
        ),
        Command("list", _token_list, "tokens (never their secrets)", [""]),
        Command("revoke", _token_revoke, "revoke a token by id", ["3f2a..."], ["id"]),
    )
