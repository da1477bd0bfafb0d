"""A steady write load for failover tests: value ``k = 1, 2, ...`` written until told
to stop, passing refusals (no primary for a moment) counted and retried.

A plain module: tests import it as ``from support.writer import ...``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio

from genconf.domain.results import WriteResult


class Acked(NamedTuple):
    k: int
    result: WriteResult


class Writer:
    """``write(k)`` in a loop until ``stopping``; an exception ``is_refusal`` accepts is
    counted in ``refused`` and retried after ``retry_pace`` seconds, any other ends the
    run. ``pace``: seconds after each acknowledged write (pacing, not synchronisation)."""

    def __init__(
        self,
        write: Callable[[int], Awaitable[WriteResult]],
        is_refusal: Callable[[Exception], bool],
        *,
        pace: float = 0,
        retry_pace: float = 0,
    ) -> None:
        self._write = write
        self._is_refusal = is_refusal
        self._pace = pace
        self._retry_pace = retry_pace
        self.acked: list[Acked] = []
        self.refused = 0
        self.stopping = False
        self._progress = anyio.Condition()

    async def run(self) -> None:
        k = 0
        while not self.stopping:
            k += 1
            try:
                result = await self._write(k)
            except Exception as exc:
                if not self._is_refusal(exc):
                    raise
                self.refused += 1
                await anyio.sleep(self._retry_pace)
                continue
            async with self._progress:
                self.acked.append(Acked(k, result))
                self._progress.notify_all()
            await anyio.sleep(self._pace)

    async def ack(self, count: int) -> Acked:
        """The ``count``-th acknowledged write, waiting for it."""
        async with self._progress:
            while len(self.acked) < count:
                await self._progress.wait()
        return self.acked[count - 1]
