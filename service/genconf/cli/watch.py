"""`genconf watch`: follow the admin feed, one line (or JSON object) per delta, until
the user stops it; it reconnects and resumes after the last revision printed."""

from __future__ import annotations

import argparse
import sys

import anyio
import grpc

from genconf import shapes
from genconf.cli import render
from genconf.cli.framework import Command, Commands, Ctx, apps, arg
from genconf.defaults import non_negative
from genconf.errors import ClientError, GenconfError, TooOld
from genconf.signals import run_until_signal

WATCH_GAP_HINT = (
    "hint: a server replays only the changes it still holds (the last --ring-size, none "
    "from before it started); `genconf generations` lists every committed change, and "
    "`genconf watch` without --since follows from now"
)


async def _watch(ctx: Ctx, args: argparse.Namespace) -> int:
    client, out = ctx.client, ctx.out
    seen = 0
    since: int | None = args.since

    async def follow() -> int:
        nonlocal seen, since
        # No server at all is an error (exit 1); reconnecting is for a server that
        # goes away while we watch.
        await client.health()
        delays = client.backoff.delays()
        reconnecting = False
        while True:
            try:
                if reconnecting and (status := await client.health()) != "SERVING":
                    # A restarted server answers before its cache has synced: resuming
                    # from it then would be refused (a revision ahead of it).
                    print(f"genconf watch: the server is {status}; waiting", file=sys.stderr)
                    await anyio.sleep(next(delays))
                    continue
                async for batch in client.watch_deltas(
                    since_revision=since, kinds=args.kind or (), applications=args.app or ()
                ):
                    delays = client.backoff.delays()
                    for delta in batch.deltas:
                        d = shapes.delta_view(batch.revision, delta)
                        out.emit_item(d, render.delta_line(out, d))
                        seen += 1
                        if args.count and seen >= args.count:
                            return 0
                    since = batch.revision
                return 0
            except TooOld as exc:
                raise GenconfError(f"{exc.message}\n{WATCH_GAP_HINT}") from None
            except ClientError as exc:
                # FeedTooSlow: our reader (say, a slow pipe) fell --feed-buffer batches
                # behind; the server ended the feed, and we resume like after a drop.
                slow = exc.detail.code == "FeedTooSlow"
                if exc.code != grpc.StatusCode.UNAVAILABLE and not slow:
                    raise
                # Resume after the last revision printed; if the server no longer
                # holds it, TooOld ends the watch with a message.
                print(f"genconf watch: {exc.message}; reconnecting", file=sys.stderr)
                reconnecting = True
                await anyio.sleep(next(delays))

    return await run_until_signal(follow) or 0


def register(commands: Commands) -> None:
    commands.add_all(
        Command(
            "watch",
            _watch,
            "follow every change to the model (the admin feed), one line per delta",
            ["", "--since 7301946349218856961", "--kind unit --app web -o json"],
            [
                arg("--since", type=int, help="replay the deltas after this revision first"),
                arg(
                    "--kind",
                    action="append",
                    choices=["application", "unit", "branch", "generation"],
                    help="only this kind (repeatable)",
                ),
                apps("only this application (repeatable)"),
                arg("--count", type=non_negative, help="exit after this many deltas"),
            ],
            description="Print every delta of the model as it happens: one line per delta, "
            "starting with its revision. --since REV replays what followed REV first (a "
            "watch that stopped resumes with the last revision it printed). When the "
            "server goes away it reconnects and resumes the same way; if the server no "
            "longer holds that revision (say it restarted), it exits 1 rather than skip "
            "changes. -o json prints JSON Lines. Ctrl-C stops it (exit 0).",
        )
    )
