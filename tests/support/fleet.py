"""A fleet of watching agents for the scale-out and failover tests.

Each agent is one `Client.watch_config` stream; the fleet keeps the newest config
each unit holds and lets a test wait, without polling, until every unit's config
satisfies a condition. Checked against MongoDB with `model_check.expected_hashes`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import anyio
from anyio.abc import TaskGroup, TaskStatus

from genconf.client import Client, Config

# The suite runs reduced fleets; the figure is for 1,000
# (GENCONF_TEST_AGENTS=1000 pytest tests/api/test_failover_service.py -s).
AGENTS = int(os.environ.get("GENCONF_TEST_AGENTS", "200"))


class Fleet:
    """Agents watching their units; `wait_all` waits for a condition on every unit."""

    def __init__(self) -> None:
        self.latest: dict[str, Config] = {}
        self.received = 0
        self._units: set[str] = set()
        self._condition: Callable[[Config], bool] | None = None
        self._pending: set[str] = set()
        self._met = anyio.Event()

    async def start(
        self, tg: TaskGroup, clients: list[Client], units: Iterable[str], min_revision: int = 0
    ) -> None:
        """One agent per unit, spread over ``clients``; returns once each has its
        first config (started one after another, so balancing sees them spread)."""
        for n, unit in enumerate(sorted(units)):
            self._units.add(unit)
            await tg.start(self._agent, clients[n % len(clients)], unit, min_revision)

    async def _agent(
        self, client: Client, unit: str, min_revision: int, *, task_status: TaskStatus[None]
    ) -> None:
        async for config in client.watch_config(unit, min_revision=min_revision):
            first = unit not in self.latest
            self.latest[unit] = config
            self.received += 1
            if first:
                task_status.started()
            if self._condition is not None and unit in self._pending and self._condition(config):
                self._pending.discard(unit)
                if not self._pending:
                    self._met.set()

    async def wait_all(self, condition: Callable[[Config], bool]) -> None:
        """Until every unit's newest config satisfies ``condition`` (bound it with
        ``anyio.fail_after``); the lagging units are in the error if it times out."""
        self._condition = condition
        self._pending = {u for u in self._units if not condition(self.latest[u])}
        self._met = anyio.Event()
        if self._pending:
            try:
                await self._met.wait()
            except BaseException:
                lagging = sorted(self._pending)[:5]
                print(f"{len(self._pending)} agent(s) lagging, e.g. {lagging}")
                raise
        self._condition = None

    def hashes(self) -> dict[str, str]:
        return {unit: config.hash for unit, config in self.latest.items()}
