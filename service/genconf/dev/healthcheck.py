"""Exit 0 when a genconf server reports SERVING on standard gRPC health, else 1.

For container health checks (Docker ``HEALTHCHECK``, Kubernetes exec probes) that
must not depend on a shell or on a separate ``grpc_health_probe`` binary: the image
already has Python and grpcio-health-checking. The server reports SERVING only once
its cache has synced, so this also answers "ready", not just "process alive".

    python -m genconf.dev.healthcheck 127.0.0.1:50051
    python -m genconf.dev.healthcheck 127.0.0.1:50051 --tls-ca ca.crt --server-name genconf.example

TLS settings may come from the environment instead (GENCONF_TLS_CA, as for every
genconf client, and GENCONF_TLS_SERVER_NAME), so an image's fixed HEALTHCHECK line
keeps working when the server is started with TLS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_ADDRESS: Final = "127.0.0.1:50051"
DEFAULT_TIMEOUT: Final = 3.0
ENV_TLS_CA: Final = "GENCONF_TLS_CA"
ENV_SERVER_NAME: Final = "GENCONF_TLS_SERVER_NAME"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m genconf.dev.healthcheck",
        description="Exit 0 if the genconf server at ADDRESS reports SERVING, else 1.",
    )
    parser.add_argument("address", nargs="?", default=DEFAULT_ADDRESS, help="host:port")
    parser.add_argument("--service", default="", help="health service name ('' = the whole server)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="deadline in seconds"
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get(ENV_TLS_CA) or None,
        help=f"CA file: connect with TLS (env {ENV_TLS_CA})",
    )
    parser.add_argument(
        "--server-name",
        default=os.environ.get(ENV_SERVER_NAME) or None,
        help="name to verify the server certificate against, when it does not cover "
        f"ADDRESS's host (env {ENV_SERVER_NAME})",
    )
    return parser


def _channel(address: str, tls_ca: str | None, server_name: str | None) -> grpc.Channel:
    if tls_ca is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, credentials, options=options)


def check(
    address: str,
    *,
    service: str = "",
    timeout: float = DEFAULT_TIMEOUT,
    tls_ca: str | None = None,
    server_name: str | None = None,
) -> str | None:
    """None when SERVING; otherwise why not, in one line."""
    try:
        channel = _channel(address, tls_ca, server_name)
    except OSError as exc:
        return f"cannot read the CA file {tls_ca}: {exc.strerror}"
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            return f"{code.name if code else 'error'}: {details}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = check(
        args.address,
        service=args.service,
        timeout=args.timeout,
        tls_ca=args.tls_ca,
        server_name=args.server_name,
    )
    if problem is not None:
        print(f"genconf at {args.address} is not healthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
