"""A genconf server for synchronous tests (hypothesis): `servers.running_server`
on an event loop of its own, in a background thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from genconf.api.server import RunningServer
from support.servers import running_server


class ThreadedServer:
    """`servers.running_server` on an event loop in a background thread, so that
    synchronous hypothesis tests can call it while it keeps serving."""

    def __init__(self, mongo_uri: str, db_name: str, **overrides: Any) -> None:
        self.args = (mongo_uri, db_name)
        self.overrides = overrides
        self.ready = threading.Event()
        self.server: RunningServer | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()  # guards the three below
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self._stop_requested:
                stop.set()
        async with running_server(*self.args, **self.overrides) as srv:
            self.server = srv
            self.ready.set()
            await stop.wait()

    def _request_stop(self) -> None:
        """Stop the server whenever it gets to serving (now, if it is)."""
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._stop.set)
                except RuntimeError:  # the loop is closed: the thread has ended
                    pass

    def _stop_thread(self) -> None:
        self._request_stop()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the fuzz server did not stop"

    def __enter__(self) -> RunningServer:
        self._thread.start()
        try:
            assert self.ready.wait(60), "the fuzz server did not start in time"
            if self.server is None:
                raise RuntimeError("the fuzz server failed to start") from self.error
        except BaseException:
            self._stop_thread()
            raise
        return self.server

    def __exit__(self, *exc: object) -> None:
        self._stop_thread()
        if self.error is not None:
            raise self.error
