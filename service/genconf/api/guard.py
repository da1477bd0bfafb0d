"""The gate's state: who the caller is, what they may see, how many streams they hold.

The interceptor (`genconf.api.interceptor`) consults one `Guard` per server on
every call. When authentication is on, it checks the bearer token against the
`TokenBook`, the method against `auth.RULES`, an agent's unit against the request
(and against the incarnation its token was issued for), and the number of open
streams per token. A stream whose token is revoked or expires,
or whose agent's unit is removed or re-created, ends with UNAUTHENTICATED. Every
other stream (health watches, reflection, every stream without authentication)
counts against its peer's IP address, and streams of any kind against one cap for
the server, so no caller, authenticated or not, can hold memory without bound.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

import anyio
import grpc
from google.protobuf.message import Message

from genconf.addresses import peer_host
from genconf.defaults import (
    DEFAULT_MAX_STREAMS,
    DEFAULT_STREAMS_PER_PEER,
    DEFAULT_STREAMS_PER_TOKEN,
)
from genconf.errors import ResourceExhausted, Unauthenticated
from genconf.security import auth
from genconf.security.redact import PublicKeys, redacted
from genconf.security.tokenbook import TokenBook

log = logging.getLogger("genconf.guard")

Context = grpc.aio.ServicerContext[Any, Any]
Clock = Callable[[], dt.datetime]

# The caller of the RPC being served (None: authentication is off).
current_principal: contextvars.ContextVar[auth.Principal | None] = contextvars.ContextVar(
    "genconf_principal", default=None
)

SWEEP_INTERVAL: Final = 1.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class KeySource(Protocol):
    async def observer_key(self) -> bytes: ...


def sees_secrets(principal: auth.Principal | None) -> bool:
    """Whether ``principal`` sees secret values and exact config hashes (None:
    authentication is off). Observers do not: `Guard.shown_to` redacts for them."""
    return principal is None or principal.role is not auth.Role.OBSERVER


def author(claimed: str) -> dict[str, Any]:
    """The store's authorship arguments for a write whose client says ``claimed``:
    the caller's token when authentication is on (see `auth.authorship`)."""
    return auth.authorship(current_principal.get(), claimed).fields()


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class Guard:
    """Authentication state shared by every call of one server."""

    def __init__(
        self,
        tokens: TokenBook,
        bootstrap: auth.TokenRecord | None,
        *,
        public_keys: PublicKeys,
        streams_per_token: int = DEFAULT_STREAMS_PER_TOKEN,
        streams_per_peer: int = DEFAULT_STREAMS_PER_PEER,
        max_streams: int = DEFAULT_MAX_STREAMS,
        clock: Clock = _utcnow,
    ) -> None:
        self.tokens = tokens
        self.bootstrap = bootstrap
        # What observers may see; redaction fails closed: see `genconf.security.redact`.
        self.public_keys = public_keys
        # Keys the config hashes observers see (`load_observer_key`); None: blanked.
        self.observer_key: bytes | None = None
        self.streams_per_token = streams_per_token
        self.clock = clock
        self._streams: dict[str, int] = {}
        self.streams_per_peer = streams_per_peer
        self.max_streams = max_streams
        self._peer_streams: dict[str, int] = {}
        self.open_streams = 0  # of any kind

    @property
    def enabled(self) -> bool:
        return self.bootstrap is not None

    async def load_observer_key(self, store: KeySource) -> None:
        """Read (or make) the server key of observers' hashes, once at start-up: the
        same on every replica, so an observer's hashes agree wherever it reads."""
        if self.enabled:
            self.observer_key = await store.observer_key()

    def shown_to(self, principal: auth.Principal, response: Any) -> Any:
        """The response as ``principal`` may see it: observers get secrets redacted
        and config hashes keyed, so that no hash can be tested against a guess."""
        if not sees_secrets(principal) and isinstance(response, Message):
            return redacted(response, self.public_keys, self.observer_key)
        return response

    def authenticate(self, metadata: Any) -> auth.Principal:
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated(
                "this server requires a bearer token: pass --token or set GENCONF_TOKEN "
                "(metadata 'authorization: Bearer <token>')"
            )
        principal = auth.authenticate(token, self.tokens.records, self.bootstrap, self.clock())
        stale = self.tokens.principal_problem(principal)  # an agent's unit was re-created
        if stale is not None:
            raise Unauthenticated(stale)
        return principal

    def open_stream(self, principal: auth.Principal) -> Callable[[], None]:
        """Count a stream against its token and the server's cap; returns its release."""
        count = self._streams.get(principal.token_id, 0)
        if count >= self.streams_per_token:
            raise ResourceExhausted(
                f"token {principal.token_id} already has {count} open streams "
                f"(limit streams_per_token={self.streams_per_token}); close some first"
            )
        return self._open(self._streams, principal.token_id)

    def open_peer_stream(self, peer: str) -> Callable[[], None]:
        """Count a stream no token answers for against its peer's IP address (all
        the connections of one machine) and the server's cap; returns its release."""
        host = peer_host(peer)
        count = self._peer_streams.get(host, 0)
        if count >= self.streams_per_peer:
            raise ResourceExhausted(
                f"{host} already has {count} open streams not bound to a token (limit "
                f"--streams-per-peer={self.streams_per_peer}); close some first"
            )
        return self._open(self._peer_streams, host)

    def _open(self, counts: dict[str, int], key: str) -> Callable[[], None]:
        if self.open_streams >= self.max_streams:
            raise ResourceExhausted(
                f"the server already has {self.open_streams} open streams (limit "
                f"--max-streams={self.max_streams}); try again later"
            )
        counts[key] = counts.get(key, 0) + 1
        self.open_streams += 1
        closed = False

        def close() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            self.open_streams -= 1
            left = counts.get(key, 1) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

        return close

    async def sweep_expired(self) -> None:
        """End streams whose token expired: one timer for all of them, not one each."""
        while True:
            await anyio.sleep(SWEEP_INTERVAL)
            self.tokens.announce_expired(self.clock())

    def still_valid(self, principal: auth.Principal) -> str | None:
        """Why the principal's token is no longer usable (None: it still is)."""
        if principal.token_id == auth.BOOTSTRAP_ID:
            return None
        record = self.tokens.get(principal.token_id)
        if record is None:
            return f"token {principal.token_id} was removed"
        if record.revoked:
            return f"token {principal.token_id} has been revoked"
        if record.expired(self.clock()):
            return f"token {principal.token_id} has expired"
        return self.tokens.principal_problem(principal)
