"""The server's messages in the words of the command line: an API client reads
``pass force`` and ``expected_version``, a person at a terminal types ``--force``
and ``--expected-version``. Only the phrasing changes, never the facts."""

from __future__ import annotations

import re
import socket
import ssl
from typing import Final

from genconf.addresses import host_of

# Request fields (and phrases) as the flags that set them, longest first.
FLAG_FOR_FIELD: Final = (
    (
        "import with renumber_generations, genconf import --renumber-generations,",
        "import with --renumber-generations",
    ),
    ("retry with expected_version set to", "retry with --expected-version set to"),
    ("take a new Snapshot", "start again without --since"),
    ("pass force", "pass --force"),
    ("without require_applied", "without --require-applied"),
    ("expected_version", "--expected-version"),
    ("require_applied", "--require-applied"),
    ("renumber_generations", "--renumber-generations"),
    ("since_revision", "--since"),
    ("before_version", "--before"),
    ("since_version", "--since"),
)
_PATTERN: Final = re.compile(
    "|".join(rf"(?<![\w-]){re.escape(field)}(?![\w])" for field, _ in FLAG_FOR_FIELD)
)
_FLAGS: Final = dict(FLAG_FOR_FIELD)


def in_cli_words(message: str) -> str:
    """``message`` with each request field named as the flag a person types."""
    return _PATTERN.sub(lambda m: _FLAGS[m.group(0)], message)


def speaks_tls(address: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``address`` (HOST:PORT) completes a TLS handshake: what a
    plaintext client cannot tell from gRPC's "failed to connect"."""
    host, port = host_of(address), int(address.rpartition(":")[2])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (OSError, ValueError):
        return False


def unavailable_hint(server: str, tls_ca: str | None) -> str:
    """What to try when the server cannot be reached."""
    if not tls_ca and ":" in server and "/" not in server and speaks_tls(server):
        return (
            f"hint: the server at {server} speaks TLS: pass --tls-ca CA_FILE "
            "(GENCONF_TLS_CA) with the CA that signed its certificate"
        )
    return f"hint: is a genconf server running at {server}? (--server, GENCONF_SERVER)"
