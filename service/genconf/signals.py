"""Stopping on SIGINT/SIGTERM, one way for every long-running process: `genconf serve`,
the bench server, `genconf watch` and the agent.

The receiver is open before the work starts, so a stop signal from then on is
caught and handled here, never a KeyboardInterrupt half-way through a write. A
server waits for the signal and then leaves its ``async with`` (its shutdown must
not run cancelled); a follower is cancelled when it comes. Imports nothing of
genconf's (a leaf: the agent's host loads it too).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

import anyio

T = TypeVar("T")

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The stop signals caught since `stop_signals` opened."""

    def __init__(self, receiver: AsyncIterator[int]) -> None:
        self._receiver = receiver

    async def wait(self) -> signal.Signals:
        """The next stop signal (one caught earlier returns at once)."""
        async for signum in self._receiver:
            return signal.Signals(signum)
        raise RuntimeError("the signal receiver closed")  # anyio's never does


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Catch SIGINT and SIGTERM for the duration of the block."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as receiver:
        yield StopSignals(receiver)


async def run_until_signal(
    body: Callable[[], Awaitable[T]],
    *,
    on_signal: Callable[[signal.Signals], None] | None = None,
) -> T | None:
    """Run ``body`` until it returns (its result) or a stop signal arrives (``body``
    is cancelled, ``on_signal`` told which, and the result is None). An exception
    from ``body`` is raised as itself, not inside an ExceptionGroup."""
    result: T | None = None
    failure: Exception | None = None
    with stop_signals() as signals:
        async with anyio.create_task_group() as tg:

            async def stop() -> None:
                signum = await signals.wait()
                if on_signal is not None:
                    on_signal(signum)
                tg.cancel_scope.cancel()

            async def run() -> None:
                nonlocal result, failure
                try:
                    result = await body()
                except Exception as exc:  # re-raised below, not as an ExceptionGroup
                    failure = exc
                tg.cancel_scope.cancel()

            tg.start_soon(stop)
            tg.start_soon(run)
    if failure is not None:
        raise failure
    return result
