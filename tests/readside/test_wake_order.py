"""A fan-out wakes its readers in the order they began to wait, whatever the
order of the units offered (pure: one event loop, no I/O)."""

from __future__ import annotations

import asyncio

import pytest
from model_builders import START, app, batch, fixture_model

from genconf.readside.cache import ModelCache


@pytest.mark.parametrize("order", [("a/1", "a/0"), ("a/0", "a/1")])
async def test_readers_wake_in_the_order_they_began_to_wait(order: tuple[str, str]) -> None:
    cache = ModelCache()
    cache.load(*fixture_model(), 0, START)
    woke: list[str] = []

    async def reader(unit: str, started: asyncio.Event) -> None:
        watch = cache.watch(unit)
        started.set()
        await watch.next()
        woke.append(unit)

    # Both orders: the offer's own order (units of a) is one of them. A reader sets
    # its event and goes on to wait in the same step, so once it is set it waits.
    tasks = []
    for unit in order:
        started = asyncio.Event()
        tasks.append(asyncio.get_running_loop().create_task(reader(unit, started)))
        await started.wait()
    cache.apply(batch(START + 1, app("a", 2, k=5)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert woke == list(order)
