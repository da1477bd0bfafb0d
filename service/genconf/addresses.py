"""Which addresses stay on this machine, and whose a connection is.

Shared by the server (may it listen without authentication, or take tokens in
clear?) and the client (may it send a token in clear?), so both judge an address
the same way. It imports nothing of genconf's: `import genconf.client` must not
load server code.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Final

# gRPC target schemes that name addresses (the rest of the target lists them) and
# those that never leave the machine.
_ADDRESS_SCHEMES: Final = ("ipv4:", "ipv6:", "dns:")
_LOCAL_SCHEMES: Final = ("unix:", "unix-abstract:")


DEFAULT_PORT: Final = 50051


def with_default_port(target: str, port: int = DEFAULT_PORT) -> str:
    """``HOST`` -> ``HOST:50051`` (``[V6]`` and a bare IPv6 address too); a target
    with a port, or a gRPC target with a scheme (``dns:///...``), as it is."""
    target = target.strip()
    if not target or "/" in target or target.startswith(_ADDRESS_SCHEMES + _LOCAL_SCHEMES):
        return target
    if target.startswith("["):
        return target if "]:" in target else f"{target}:{port}"
    try:
        ip = ipaddress.ip_address(target)
    except ValueError:
        return target if ":" in target else f"{target}:{port}"
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def host_of(address: str) -> str:
    """The host of ``HOST:PORT``, ``[V6]:PORT``, a bare IP or a bare host name."""
    address = address.strip()
    if address.startswith("["):
        return address[1:].partition("]")[0]
    try:
        return str(ipaddress.ip_address(address))  # a bare IP, IPv6 included
    except ValueError:
        pass
    host, sep, _ = address.rpartition(":")
    return host if sep else address


def is_loopback(address: str) -> bool:
    """Whether ``address`` (HOST:PORT) is a loopback one: 127.0.0.0/8, ::1 or
    localhost. Any other name counts as off the machine: names are not resolved,
    since what a name resolves to can change after the check."""
    host = host_of(address)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_addresses(target: str) -> list[str]:
    """The addresses a client target names: ``HOST:PORT``, a comma-separated list
    (`genconf.client.channel.balanced_target`), or gRPC's ``ipv4:``/``ipv6:``/``dns:`` forms."""
    rest = target.strip()
    for scheme in _ADDRESS_SCHEMES:
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            if scheme == "dns:" and rest.startswith("//"):
                rest = rest[2:].partition("/")[2]  # dns://AUTHORITY/HOST:PORT
            break
    return [a.strip() for a in rest.split(",") if a.strip()]


def target_is_local(target: str) -> bool:
    """Whether everything ``target`` names is on this machine (loopback addresses,
    or a Unix socket), so that what is sent there never crosses a network."""
    if target.strip().startswith(_LOCAL_SCHEMES):
        return True
    addresses = target_addresses(target)
    return bool(addresses) and all(is_loopback(a) for a in addresses)


def peer_host(peer: str) -> str:
    """The IP address of a gRPC peer (``context.peer()``: ``ipv4:1.2.3.4:5678``,
    ``ipv6:%5B::1%5D:5678``), without the port: the connections of one machine
    share it. Anything else (a Unix socket) is returned whole."""
    scheme, sep, rest = peer.partition(":")
    if not sep or scheme not in ("ipv4", "ipv6"):
        return peer
    return host_of(urllib.parse.unquote(rest))
