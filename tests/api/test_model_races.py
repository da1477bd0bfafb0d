"""A seeded random schedule of every write RPC from many clients at once.

Each step sends CLIENTS random requests together over a small universe of names
(so they collide); refusals a person can act on are fine, anything else fails.
After every step the invariants hold in MongoDB; at the end of each run the
server's Snapshot and every unit's GetConfig equal MongoDB's documents.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from support.model_check import assert_consistent, mongo_violations

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError

CLIENTS = 6
STEPS = 40
SEEDS = (1, 2, 3)
APPS = ("web", "db", "cache")
BRANCHES = ("canary", "beta")
INT_PORT = {"port": {"type": "int", "default": 80}, "level": {"type": "string", "default": "a"}}
STR_PORT = {"port": {"type": "string", "default": "80"}, "level": {"type": "string"}}
# Refusals of a legal-looking request in a model that moved under it.
EXPECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
}


@pytest.fixture
async def clients(srv: RunningServer) -> AsyncIterator[list[Client]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(Client(srv.address, timeout=60)) for _ in range(CLIENTS)
        ]


def request(rng: random.Random, c: Client) -> tuple[str, Awaitable[Any]]:
    """One random write request (its name, and the call)."""
    app, branch = rng.choice(APPS), rng.choice(BRANCHES)
    unit = f"{app}/{rng.randrange(4)}"
    value: Any = rng.choice([rng.randrange(1, 9000), f"p{rng.randrange(99)}"])
    ops: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("create", lambda: c.create_application(app, schema=INT_PORT, units=rng.randrange(3))),
        ("schema", lambda: c.update_application(app, schema=rng.choice([INT_PORT, STR_PORT]))),
        ("remove-app", lambda: c.remove_application(app, force=True)),
        ("add-units", lambda: c.add_units(app, count=rng.randrange(1, 3))),
        ("remove-unit", lambda: c.remove_unit(unit)),
        ("set", lambda: c.set_config(app, {"port": value})),
        ("unset", lambda: c.set_config(app, unset=["port"])),
        ("add-branch", lambda: c.add_branch(branch)),
        ("track-unit", lambda: c.track_branch(branch, units=[unit])),
        ("track-app", lambda: c.track_branch(branch, applications=[app])),
        ("track-count", lambda: c.track_branch(branch, count=1, application=app)),
        ("untrack-unit", lambda: c.untrack_branch(branch, units=[unit])),
        ("untrack-app", lambda: c.untrack_branch(branch, applications=[app])),
        ("branch-set", lambda: c.set_branch_config(branch, app, {"port": value})),
        ("branch-unset", lambda: c.set_branch_config(branch, app, unset=["level"])),
        ("commit", lambda: c.commit_branch(branch, force=rng.random() < 0.5)),
        ("abort", lambda: c.abort_branch(branch, force=rng.random() < 0.7)),
        ("rollback", lambda: c.rollback(app, 1)),
    ]
    name, make = rng.choice(ops)
    return name, make()


async def run_step(rng: random.Random, clients: list[Client], seen: Counter[str]) -> None:
    calls = [request(rng, c) for c in clients]
    results = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)
    for (name, _), result in zip(calls, results, strict=True):
        if isinstance(result, ClientError):
            assert result.code in EXPECTED, f"{name}: {result.code.name}: {result.message}"
            seen[f"{name}:{result.code.name}"] += 1
        elif isinstance(result, BaseException):
            raise result
        else:
            seen[f"{name}:ok"] += 1


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_concurrent_schedule_keeps_the_model_sound(
    seed: int,
    clients: list[Client],
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
) -> None:
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for app in APPS:
        await clients[0].create_application(app, schema=INT_PORT, units=2)
    for step in range(STEPS):
        await run_step(rng, clients, seen)
        broken = mongo_violations(mongo_client, db_name)
        assert not broken, f"seed {seed} step {step}: {broken}"
    await assert_consistent(clients[0], mongo_client, db_name, f"seed {seed}")
    ok = sum(n for k, n in seen.items() if k.endswith(":ok"))
    print(f"\nseed {seed}: {STEPS * CLIENTS} requests, {ok} accepted: {dict(sorted(seen.items()))}")
    assert ok > STEPS  # the schedule did change the model, not only bounce off it
