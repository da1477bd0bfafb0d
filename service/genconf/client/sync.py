"""The blocking `SyncClient`: `Client`'s methods run on a private event loop in a
background thread, so it works from any thread, inside or outside asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from genconf.client.aio import Client
from genconf.client.results import Config
from genconf.v1 import admin_pb2

T = TypeVar("T")


class SyncClient:
    """Blocking facade over `Client`: the same methods, run on a private event loop
    in a background thread (so it works from any thread, inside or outside asyncio)."""

    def __init__(self, target: str = "127.0.0.1:50051", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client: Client = self._run(self._make(target, kwargs))

    @staticmethod
    async def _make(target: str, kwargs: dict[str, Any]) -> Client:
        return Client(target, **kwargs)

    def _run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())  # type: ignore[attr-defined]

    def watch_config(self, unit: str, **kwargs: Any) -> Iterator[Config]:
        return self._iterate(self._client.watch_config(unit, **kwargs))

    def watch_deltas(self, **kwargs: Any) -> Iterator[admin_pb2.DeltaBatch]:
        return self._iterate(self._client.watch_deltas(**kwargs))

    def export_model(self, applications: Sequence[str] = ()) -> Iterator[str]:
        return self._iterate(self._client.export_model(applications))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(method(*args, **kwargs))

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call
