"""`genconf watch`: follow the admin feed until the user stops it, reconnecting and
resuming after the last revision printed.

For people (`-o table`) each line says what changed, with a time
(`genconf.cli.watch_lines`), and one line on stderr says where it follows from and
when the server goes away and comes back; `-o json` / `-o yaml` print each delta as
it is (one JSON line or YAML document), which scripts rely on byte for byte.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import anyio
import grpc

from genconf import shapes
from genconf.cli import watch_lines as say
from genconf.cli.framework import Command, Commands, Ctx, apps, arg
from genconf.cli.output import Output
from genconf.cli.watch_lines import WatchLines
from genconf.client import Client
from genconf.defaults import non_negative
from genconf.errors import ClientError, GenconfError, TooOld
from genconf.signals import run_until_signal

WATCH_GAP_HINT = (
    "hint: a server replays only the changes it still holds (the last --ring-size, none "
    "from before it started); `genconf generations` lists every committed change, and "
    "`genconf watch` without --since follows from now"
)

# How long a feed must run without an error before we say it runs (a replay's first
# line, "back"): an error such as TooOld comes at once, and must not follow them.
CONFIRMED_AFTER = 1.0


class _Watch:
    """One `genconf watch`: where it is in the feed, and what it told the user."""

    def __init__(self, client: Client, out: Output, args: argparse.Namespace) -> None:
        self.client, self.out, self.args = client, out, args
        self.people = not out.machine
        # Values cut to fit a terminal, never when piped (as tables do).
        self.lines = WatchLines(out.style, say.VALUE_WIDTH if out.cuts else None)
        self.since: int | None = args.since
        # Started without --since: the user follows from now, so a gap the server
        # cannot replay is said and skipped; with --since it is an error.
        self.from_now = args.since is None
        # Whether ``since`` came from the server (a batch, a snapshot) rather than
        # the user: a server that has not reached it yet is a replica catching up.
        self.since_is_ours = False
        self.seen = 0
        self.started = False
        self.header: str | None = None  # the first line, until the feed is confirmed
        self.lost_after: int | None = None  # TooOld: the revision the server lost
        self.away = False  # told the user the server is away, not yet that it is back
        self.told_waiting = False

    def note(self, text: str) -> None:
        """One line on stderr: stdout stays one line per change."""
        if self.people:
            line = f"{say.clock(now(), now())}  {text}"
        else:
            line = f"genconf watch: {text}"
        print(line, file=sys.stderr, flush=True)

    async def follow(self) -> int:
        # No server at all is an error (exit 1); reconnecting is for a server that
        # goes away while we watch.
        await self.client.health()
        delays = self.client.backoff.delays()
        while True:
            try:
                if self.away and not await self._serving():
                    await anyio.sleep(next(delays))
                    continue
                await self._start()
                await self._feed()
                return 0
            except TooOld as exc:
                if not self.from_now:
                    raise GenconfError(f"{exc.message}\n{WATCH_GAP_HINT}") from None
                # Follow from now: the next round starts from the server's present.
                self.lost_after = self.since
                self.since, self.since_is_ours = None, False
                self.away = False
            except ClientError as exc:
                if not self._retryable(exc):
                    raise
                await anyio.sleep(next(delays))
                continue
            delays = self.client.backoff.delays()

    def _retryable(self, exc: ClientError) -> bool:
        """Say what happened, once, and whether to try again."""
        if exc.detail.code == "FeedTooSlow":
            # Our reader (say, a slow pipe) fell --feed-buffer batches behind: the
            # server ended the feed, and we resume like after a drop.
            self.note(say.fell_behind(self.since))
            return True
        if exc.code == grpc.StatusCode.OUT_OF_RANGE and self.since_is_ours:
            # A revision this server has yet to reach, though another had it.
            if not self.told_waiting and self.since is not None:
                self.note(say.behind(self.since))
                self.told_waiting = True
            return True
        if exc.code != grpc.StatusCode.UNAVAILABLE:
            return False
        if not self.away:
            self.note(say.away(exc.message))
            self.away, self.told_waiting = True, False
        return True

    async def _serving(self) -> bool:
        """A restarted server answers before its cache has synced: resuming from it
        then would be refused (a revision ahead of it)."""
        status = await self.client.health()
        if status == "SERVING":
            return True
        if not self.told_waiting:
            self.note(say.waiting(status))
            self.told_waiting = True
        return False

    async def _start(self) -> None:
        """Where the feed starts: for people following from now, a snapshot's
        revision (the state every later line is compared with)."""
        if self.people and self.since is None:
            snapshot = await self.client.snapshot()
            self.lines.seed(snapshot)
            self.since, self.since_is_ours = snapshot.revision, True
        if self.lost_after is not None:
            self.note(say.lost(self.lost_after, self.since))
            self.lost_after = None
        if self.people and not self.started and self.since is not None:
            self.header = say.header(
                self.since,
                replay=not self.from_now,
                kinds=self.args.kind or (),
                applications=self.args.app or (),
            )
            if self.from_now:
                self._confirmed()  # from a snapshot's revision: the server has it
        self.started = True

    async def _feed(self) -> None:
        """Follow the feed from ``since`` until it ends or --count is reached. What
        waits for the feed to be confirmed (a replay's first line, "back") is said
        once it has run a moment or a batch came, never before the error that a
        revision the server does not hold brings at once."""
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            if self.away or self.header is not None:
                tg.start_soon(self._confirmed_soon)
            try:
                await self._batches()
            except Exception as exc:  # re-raised below, not as an ExceptionGroup
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _confirmed_soon(self) -> None:
        await anyio.sleep(CONFIRMED_AFTER)
        self._confirmed()

    def _confirmed(self) -> None:
        """The feed runs: say where it follows from (once) and that it is back."""
        if self.header is not None:
            print(self.header, file=sys.stderr, flush=True)
            self.header = None
        if self.away:
            self.away = self.told_waiting = False
            self.note(say.back(self.since))

    async def _batches(self) -> None:
        args = self.args
        async for batch in self.client.watch_deltas(
            since_revision=self.since, kinds=args.kind or (), applications=args.app or ()
        ):
            self._confirmed()
            self.told_waiting = False
            deltas = list(batch.deltas)
            if args.count:
                deltas = deltas[: args.count - self.seen]
            views = [shapes.delta_view(batch.revision, d) for d in deltas]
            if self.people:
                for line in self.lines.batch(views, now()):
                    self.out.emit_item(views, line)
            else:
                for view in views:
                    self.out.emit_item(view, "")
            self.seen += len(views)
            self.since, self.since_is_ours = batch.revision, True
            if args.count and self.seen >= args.count:
                return

    def stopped(self) -> None:
        """Stopped by the user: where to resume (people's lines carry no revision)."""
        if self.people and self.since is not None:
            print(say.stopped(self.since), file=sys.stderr, flush=True)


def now() -> dt.datetime:
    return dt.datetime.now().astimezone()


async def _watch(ctx: Ctx, args: argparse.Namespace) -> int:
    watch = _Watch(ctx.client, ctx.out, args)
    result = await run_until_signal(watch.follow)
    if result is None:
        watch.stopped()
    return result or 0


def register(commands: Commands) -> None:
    commands.add_all(
        Command(
            "watch",
            _watch,
            "follow every change to the model (the admin feed), one line per change",
            ["", "--since 7301946349218856961", "--kind unit --app web -o json"],
            [
                arg("--since", type=int, help="replay the deltas after this revision first"),
                arg(
                    "--kind",
                    action="append",
                    choices=["application", "unit", "branch", "generation", "rollout"],
                    help="only this kind (repeatable)",
                ),
                apps("only this application (repeatable)"),
                arg("--count", type=non_negative, help="exit after this many deltas"),
            ],
            description="Print every change to the model as it happens. For people, each "
            "line has a time and says what changed (`web: port 8080 -> 9090`, `web: units "
            "web/3 added`, `branch canary committed as generation 4: web v7`); a first line "
            "on stderr says where it follows from, and stderr says when the server goes "
            "away and when it is back. Without --since it follows from now; if the server "
            "restarts and loses changes meanwhile, it says so in one line and follows from "
            "now (`genconf generations` lists every committed change). --since REV replays "
            "what followed REV first (Ctrl-C prints the revision to resume from); if the "
            "server no longer holds REV it exits 1 rather than skip changes. -o json "
            "prints each delta as a JSON line (-o yaml: a YAML document) with its "
            "revision. Ctrl-C stops it (exit 0).",
        )
    )
