"""Memory follows bytes, not counts (issue 14, item 3): a `genconf serve` process
takes many one-int writes to a ~3 MB application, with one admin feed that keeps
up and one that stops reading, and its resident memory stays within its byte
budgets (``--ring-bytes``, ``--feed-bytes``) instead of growing by megabytes per
write (the ring used to keep 10,000 deltas, each holding a whole application).
Figures are printed (``pytest tests/readside/test_memory_bounds.py -s``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import grpc
import pytest
from support.cli_runner import clean_env
from support.procs import ready_serve

from genconf.cli import main as cli
from genconf.client import Client, ClientError

MIB = 1024 * 1024
RING_BYTES = 32 * MIB
FEED_BYTES = 16 * MIB
KEYS = 60
VALUE_CHARS = 50_000  # KEYS x VALUE_CHARS: a ~3 MB application (the limit is 4 MiB)
WRITES = 80
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    """Resident bytes of process ``pid`` now (/proc/PID/statm)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@asynccontextmanager
async def serve(
    mongo_uri: str, db_name: str, tmp_path: Path, *options: str
) -> AsyncIterator[tuple[str, int]]:
    """`genconf serve` as a child process: (address, pid); SIGINT stops it after."""
    argv = ["serve", "--mongo-uri", mongo_uri, "--database", db_name, "--listen", "127.0.0.1:0"]
    log = tmp_path / "serve.log"
    async with ready_serve([*argv, *options], clean_env(tmp_path), log) as (address, proc):
        yield address, proc.pid


async def test_rss_stays_within_the_byte_budgets_under_writes_to_a_large_application(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    schema = {f"s{i:02d}": {"type": "string"} for i in range(KEYS)} | {"n": {"type": "int"}}
    big = {f"s{i:02d}": chr(ord("a") + i % 26) * VALUE_CHARS for i in range(KEYS)}
    options = ("--ring-bytes", str(RING_BYTES), "--feed-bytes", str(FEED_BYTES))
    async with (
        serve(mongo_uri, db_name, tmp_path, *options) as (address, pid),
        Client(address, timeout=60) as client,
    ):
        idle = rss(pid)
        await client.create_application("big", schema=schema, units=3)
        await client.set_config("big", big)
        fast_seen: list[int] = []
        fast_progress = anyio.Condition()
        slow_seen: list[int] = []
        slow_error: list[ClientError] = []
        go_on, slow_done = anyio.Event(), anyio.Event()

        async def read_fast() -> None:
            async for batch in client.watch_deltas(applications=["big"]):
                async with fast_progress:
                    fast_seen.append(batch.revision)
                    fast_progress.notify_all()

        async def read_slow() -> None:
            """Takes one batch, then reads nothing until the writes are over."""
            try:
                async for batch in client.watch_deltas(applications=["big"]):
                    slow_seen.append(batch.revision)
                    if len(slow_seen) == 1:
                        await go_on.wait()
            except ClientError as exc:
                slow_error.append(exc)
            finally:
                slow_done.set()

        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_fast)
                tg.start_soon(read_slow)
                # Warm-up: the allocator and every cache of the server see such writes.
                for n in range(5):
                    last = await client.set_config("big", {"n": n})
                await client.get_config("big/0", min_revision=last.revision)
                warm = rss(pid)
                peak = warm
                for n in range(5, 5 + WRITES):
                    last = await client.set_config("big", {"n": n})
                    peak = max(peak, rss(pid))
                config = await client.get_config("big/0", min_revision=last.revision)
                end = rss(pid)
                peak = max(peak, end)
                async with fast_progress:  # the feed that keeps up gets every write
                    while last.revision not in fast_seen:
                        await fast_progress.wait()
                go_on.set()
                await slow_done.wait()
                tg.cancel_scope.cancel()
        assert config.config["n"] == 4 + WRITES

    growth = end - warm
    app_mib = KEYS * VALUE_CHARS / MIB
    print(
        f"\n{WRITES} one-int writes to a {app_mib:.1f} MiB application (ring {RING_BYTES // MIB}"
        f" MiB, feeds {FEED_BYTES // MIB} MiB each): server RSS idle {idle / MIB:.0f} MiB, "
        f"after warm-up {warm / MIB:.0f} MiB, at end {end / MIB:.0f} MiB, peak {peak / MIB:.0f}"
        f" MiB; growth {growth / MIB:.0f} MiB (kept by count alone: ~"
        f"{WRITES * app_mib:.0f} MiB); the reader that stopped got {len(slow_seen)} "
        f"batches, then {slow_error[0].code.name if slow_error else 'nothing'}"
    )
    # Budgets, plus room for what is in flight (a getMore batch, gRPC buffers) and
    # what the allocator keeps of freed records: 142 MiB of growth on a quiet 2-core
    # VM, 151 MiB with a test suite running beside it. Records kept by count alone
    # would add ~229 MiB on top of that room: far past the bound.
    bound = RING_BYTES + FEED_BYTES + 128 * MIB
    assert peak - warm < bound, f"RSS grew {(peak - warm) / MIB:.0f} MiB"
    # The stopped reader was ended once its queue passed its byte budget, long
    # before the writes were over, and was told so.
    assert slow_error and slow_error[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(slow_seen) < WRITES // 2


@pytest.mark.parametrize("flag", ["--ring-bytes", "--feed-bytes"])
def test_serve_refuses_a_byte_budget_that_is_not_positive(flag: str) -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", flag, "0"])
    args = parser.parse_args(["serve", flag, str(MIB)])
    assert getattr(args, flag.removeprefix("--").replace("-", "_")) == MIB
