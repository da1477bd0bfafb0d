"""The channel to the server: TLS or plaintext, a bearer token on every call, and
several replicas behind one target (round robin)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import grpc

from genconf.addresses import target_is_local
from genconf.errors import GenconfError
from genconf.wire import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)


class _BearerUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every unary call's metadata."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_bearer(details, self.token), request)


class _BearerUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    """The same for server streams (watches); grpc.aio files an interceptor under one
    call shape only, hence one class per shape the API uses."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_bearer(details, self.token), request)


class _BearerStreamStream(grpc.aio.StreamStreamClientInterceptor):
    """The same for bidirectional streams (import)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_stream_stream(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_bearer(details, self.token), request_iterator)


def _with_bearer(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


def check_token_transport(
    target: str, *, token: str | None, tls_ca: str | None, insecure_plaintext: bool
) -> None:
    """Refuse to send a bearer token in clear off this machine, before any call.

    The bearer interceptors add the token themselves, which bypasses gRPC's own
    refusal of call credentials on an insecure channel: this check stands in for it.
    With ``insecure_plaintext`` (the network is trusted) it warns instead."""
    if not token or tls_ca or target_is_local(target):
        return
    if not insecure_plaintext:
        raise GenconfError(
            f"refusing to send a token in clear to {target}: use --tls-ca, or "
            "--insecure-plaintext if the network is trusted"
        )
    log.warning("sending the token in clear to %s (--insecure-plaintext)", target)


def open_channel(
    target: str,
    *,
    token: str | None = None,
    tls_ca: str | None = None,
    insecure_plaintext: bool = False,
    tls_server_name: str | None = None,
) -> grpc.aio.Channel:
    """A channel to ``target``: TLS verified against the CA file ``tls_ca`` when given,
    and a bearer ``token`` on every call when given (over plaintext only to a
    loopback address, unless ``insecure_plaintext``: `check_token_transport`).

    ``tls_server_name`` checks the server's certificate against that name instead
    of ``target``'s host, for a server reached through another address (a
    ``kubectl port-forward`` to 127.0.0.1 of a server whose certificate names
    ``genconf.genconf.svc``); it needs ``tls_ca``.

    ``target`` may list several replicas, ``IP:PORT,IP:PORT``: calls are spread
    over them (round robin), and a replica that goes away is skipped, so a
    reconnecting watch lands on one that is up."""
    check_token_transport(target, token=token, tls_ca=tls_ca, insecure_plaintext=insecure_plaintext)
    if tls_server_name and not tls_ca:
        raise GenconfError(
            f"--tls-server-name {tls_server_name} needs --tls-ca: the server name is "
            "checked against the certificate of a TLS server"
        )
    target, options = balanced_target(target)
    # The server sends replies up to this size (a large config, twice): see there.
    options = [*options, ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    if tls_server_name:
        options += server_name_options(tls_server_name)
    interceptors: list[grpc.aio.ClientInterceptor] | None = None
    if token:
        interceptors = [
            _BearerUnaryUnary(token),
            _BearerUnaryStream(token),
            _BearerStreamStream(token),
        ]
    if tls_ca:
        try:
            with open(tls_ca, "rb") as f:
                root = f.read()
        except OSError as exc:
            raise GenconfError(f"cannot read the TLS CA file {tls_ca}: {exc.strerror}") from None
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def server_name_options(name: str) -> list[tuple[str, Any]]:
    """Channel options that verify the server certificate against ``name`` (SNI and
    the hostname check) and send it as the HTTP/2 authority, as if ``name`` had
    been dialled."""
    name = name.strip()
    if not name or any(c.isspace() or c in "/:@" for c in name):
        raise GenconfError(
            f"invalid TLS server name {name!r}: give a DNS name the server certificate "
            "covers, e.g. genconf.genconf.svc (no port, no scheme)"
        )
    return [("grpc.ssl_target_name_override", name), ("grpc.default_authority", name)]


def balanced_target(target: str) -> tuple[str, list[tuple[str, Any]]]:
    """gRPC's target and channel options for one address or a comma-separated list."""
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) <= 1:
        return target, []
    hosts = [a.rpartition(":")[0].strip("[]") for a in addresses]
    try:
        families = {ipaddress.ip_address(h).version for h in hosts}
    except ValueError:
        raise GenconfError(
            f"several server addresses must each be IP:PORT (got {target!r}); "
            "for host names, put the replicas behind one DNS name or load balancer"
        ) from None
    if len(families) != 1:
        raise GenconfError(f"mix of IPv4 and IPv6 addresses in {target!r}; use one family")
    scheme = "ipv4" if families == {4} else "ipv6"
    return f"{scheme}:{','.join(addresses)}", [("grpc.lb_policy_name", "round_robin")]
