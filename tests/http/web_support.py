"""Helpers of the HTTP tests: clients of a server's HTTP API, and a reader of
server-sent events that follows the format (what `curl -N` shows).

A plain module: tests import it as ``from web_support import ...``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from genconf.api.server import RunningServer

HTTP_TIMEOUT = 10.0
API = "/api/v1"


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def web_client(
    server: RunningServer, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of ``server``'s HTTP API (with ``token`` on every request)."""
    async with httpx.AsyncClient(
        base_url=f"http://{server.http_address}", timeout=HTTP_TIMEOUT, headers=bearer(token)
    ) as client:
        yield client


@dataclass
class Event:
    """One server-sent event (``kind`` None: a comment, its text in ``comment``)."""

    id: str | None = None
    kind: str | None = None
    data: Any = None
    comment: str = ""
    lines: list[str] = field(default_factory=list)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a text/event-stream response as they arrive; comments too."""
    event = Event()
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Event(comment=line[1:].strip())
            continue
        if line == "":
            if event.lines:
                event.data = json.loads("\n".join(event.lines))
                yield event
            event = Event()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event.id = value
        elif name == "event":
            event.kind = value
        elif name == "data":
            event.lines.append(value)


async def next_event(stream: AsyncIterator[Event], limit: float = HTTP_TIMEOUT) -> Event:
    """The next event that is not a comment."""
    with anyio.fail_after(limit):
        async for event in stream:
            if event.kind is not None or event.lines:
                return event
    raise AssertionError("the stream ended")


async def until(
    stream: AsyncIterator[Event], check: Any, what: str, limit: float = HTTP_TIMEOUT
) -> Event:
    """Events of ``stream`` until one satisfies ``check`` (returned)."""
    with anyio.fail_after(limit):
        async for event in stream:
            if event.kind is not None and check(event):
                return event
    raise AssertionError(f"the stream ended before {what}")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON error body, checked for its shape: every key present."""
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["message"], "an error must say what went wrong"
    assert set(body["details"]) == {
        "code",
        "expected_version",
        "actual_version",
        "conflicts",
        "mismatches",
        "units",
        "fields",
    }, body["details"]
    return body


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error of ``response``, which must have ``status`` and gRPC status ``code``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = error_of(response)
    assert body["code"] == code, body
    return body
