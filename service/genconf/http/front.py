"""What every HTTP request passes before it is routed (pure ASGI: no per-request
task, nothing buffered):

- **Same origin only.** A browser names the page that sends a request (``Origin``);
  one from another site is refused, so no web page can drive the API with the
  browser of someone who runs it (a command-line client sends no ``Origin``).
- **Loopback names without authentication.** A server without tokens answers only
  requests addressed to a loopback name (``Host``), so a site that re-points its
  own name at 127.0.0.1 (DNS rebinding) gets nothing from it.
- **The request size limit.** A body larger than ``--max-request-bytes`` is
  refused (413) before it is read whole; an import is bounded per record instead
  (`genconf.http.admin.ImportBody`), as gRPC bounds each message of one.
"""

from __future__ import annotations

import functools
from typing import Final

import grpc
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genconf.addresses import is_loopback
from genconf.http import errors
from genconf.http.api import Json

# Bodies bounded per record by their route rather than as a whole.
PER_RECORD: Final = frozenset({"/api/v1/import"})


# Whether a Host names this machine, for the few names a server is reached by.
_loopback = functools.lru_cache(maxsize=64)(is_loopback)


class BodyTooLarge(HTTPException):
    """A body past the limit, found while it is read (FastAPI passes HTTP errors on
    from its body reading; `genconf.http.app` answers it with the JSON body)."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=errors.TOO_LARGE, detail=message)


def too_large_message(size: int | None, limit: int) -> str:
    what = f"is {size:,} bytes" if size is not None else "is"
    return f"the request body {what}, more than --max-request-bytes={limit:,}; send less"


class Front:
    """The checks above, in front of ``app``."""

    def __init__(self, app: ASGIApp, *, max_body: int, auth: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = host = length = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        refusal = self._refusal(scope, origin, host)
        limited = scope["path"] not in PER_RECORD
        if refusal is None and limited and length is not None:
            size = int(length) if length.isdigit() else None
            if size is None:
                refusal = errors.Refusal(
                    grpc.StatusCode.INVALID_ARGUMENT, "Content-Length is not a number"
                )
            elif size > self.max_body:
                refusal = errors.Refusal(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    too_large_message(size, self.max_body),
                    status=errors.TOO_LARGE,
                )
        if refusal is not None:
            status, body = errors.body_of(refusal)
            await Json(body, status_code=status)(scope, receive, send)
            return
        if limited and chunked:
            receive = self._counted(receive)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, origin: str | None, host: str | None) -> errors.Refusal | None:
        if origin is not None and host is not None:
            own = f"{scope.get('scheme', 'http')}://{host}".lower()
            if origin.lower() != own:
                return errors.Refusal(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"a request from the page of {origin} is refused: the API answers "
                    f"pages this server serves ({own}/) and clients that are not browsers",
                )
        if not self.auth and host is not None and not _loopback(host):
            return errors.Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this server runs without authentication and answers requests addressed "
                f"to 127.0.0.1, localhost or [::1] only, not to {host!r}",
            )
        return None

    def _counted(self, receive: Receive) -> Receive:
        """``receive``, refusing a chunked body once it passes the limit."""
        limit = self.max_body
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(too_large_message(None, limit))
            return message

        return counted
