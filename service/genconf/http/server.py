"""The HTTP server's lifecycle, inside the server's own event loop.

`serve_http` binds the address itself (so a port of 0 is known at once, and a
clash is an error naming the address), then runs uvicorn on that socket in a task
of the running loop: no thread, no signal handlers of its own (genconf's decide
when to stop), no lifespan events, no access log. On the way out the server stops
taking connections and lets open requests finish for ``shutdown_grace`` seconds;
the server's streams have ended by then (`genconf.api.server` closes the cache's
watches first).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn

from genconf.errors import GenconfError, InvalidArgument
from genconf.http.api import HttpApi
from genconf.http.app import build_app

log = logging.getLogger("genconf.http")

BACKLOG: Final = 2048


@dataclass(frozen=True)
class HttpSettings:
    """What `genconf.api.server.ServerConfig` says about the HTTP side."""

    listen: str
    shutdown_grace: float = 5.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # require client certificates signed by it
    bench: bool = False  # the bench's empty route (`genconf bench http-read`)
    # One worker of `genconf serve --workers N`: bind beside its siblings (SO_REUSEPORT);
    # the parent checked the address free and holds it (`genconf.workers`).
    reuse_port: bool = False


class _InLoop(uvicorn.Server):
    """uvicorn without its signal handlers: the process's own decide (genconf.signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidArgument(f"--http-listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def bind(listen: str, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket on ``listen`` (HOST:PORT, port 0: any free one); with
    ``reuse_port``, one of several (SO_REUSEPORT) that the kernel spreads connections over."""
    host, port = split_listen(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise GenconfError(f"cannot serve HTTP on {listen}: {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise GenconfError(f"{listen} is already in use (another genconf serve?)") from None
        raise GenconfError(f"cannot serve HTTP on {listen}: {exc.strerror or exc}") from None
    return sock


def _uvicorn_config(settings: HttpSettings, api: HttpApi) -> uvicorn.Config:
    tls = settings.tls_cert is not None
    config = uvicorn.Config(
        build_app(api, bench=settings.bench),
        http="h11",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,  # genconf's logging (genconf.logs) carries uvicorn's lines
        log_level="warning",
        proxy_headers=False,  # the peer is who connected: limits and logs count it
        server_header=False,
        timeout_graceful_shutdown=max(settings.shutdown_grace, 0.1),
        ssl_certfile=str(settings.tls_cert) if tls else None,
        ssl_keyfile=str(settings.tls_key) if tls else None,
        ssl_ca_certs=str(settings.tls_client_ca) if settings.tls_client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if settings.tls_client_ca else ssl.CERT_NONE,
    )
    config.load()  # a bad certificate fails here, before anything is served
    return config


@asynccontextmanager
async def serve_http(settings: HttpSettings, api: HttpApi) -> AsyncIterator[str]:
    """Serve ``api`` on ``settings.listen`` until the block exits; yields HOST:PORT bound."""
    sock = bind(settings.listen, reuse_port=settings.reuse_port)
    try:
        config = _uvicorn_config(settings, api)
        server = _InLoop(config)
        task = asyncio.get_running_loop().create_task(
            server.serve(sockets=[sock]), name="genconf-http"
        )
        host = settings.listen.rpartition(":")[0]
        address = f"{host}:{sock.getsockname()[1]}"
        scheme = "https" if settings.tls_cert is not None else "http"
        log.info(
            "HTTP API on %s://%s/api/v1/ (console: %s://%s/)", scheme, address, scheme, address
        )
        try:
            yield address
        finally:
            server.should_exit = True
            try:
                await task
            except (Exception, SystemExit):  # uvicorn exits the process on a failed start
                log.exception("the HTTP server failed")
    finally:
        sock.close()
