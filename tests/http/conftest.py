"""Fixtures of the HTTP tests: a real genconf server with its HTTP API on, and
clients of it over real HTTP (httpx) and gRPC, on loopback.

Named apart from the root fixtures (``srv``, ``client``), which stay HTTP-less
for the tests that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from support.servers import background_server
from web_support import HTTP_TIMEOUT, web_client

from genconf.api.server import RunningServer
from genconf.client import Client


@pytest.fixture
async def http_server(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    """A genconf server (no authentication) serving the HTTP API too."""
    async with background_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as server:
        yield server


@pytest.fixture
async def web(http_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``http_server``'s API."""
    async with web_client(http_server) as client:
        yield client


@pytest.fixture
async def grpc_client(http_server: RunningServer) -> AsyncIterator[Client]:
    """A gRPC client of the same server."""
    async with Client(http_server.address, timeout=HTTP_TIMEOUT) as c:
        yield c
