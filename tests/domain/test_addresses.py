"""Which addresses stay on this machine (`genconf.addresses`), as tables: one row an
address, its id saying what the row is about. Pure: names are never resolved."""

from __future__ import annotations

import pytest
from support.tables import rows

from genconf.addresses import host_of, is_loopback, peer_host, target_addresses, target_is_local

REMOTE = "10.1.2.3:50051"


HOSTS = {
    "ipv4 with port": ("127.0.0.1:50051", "127.0.0.1"),
    "bracketed ipv6 with port": ("[::1]:50051", "::1"),
    "bare ipv6": ("::1", "::1"),
    "bare ipv6, long form": ("fd00::2", "fd00::2"),
    "bare ipv4": ("10.1.2.3", "10.1.2.3"),
    "name with port": ("example.com:1", "example.com"),
    "bare name": ("localhost", "localhost"),
    "surrounding spaces": (" 127.0.0.1:1 ", "127.0.0.1"),
}


@pytest.mark.parametrize(("address", "host"), rows(HOSTS))
def test_host_of(address: str, host: str) -> None:
    assert host_of(address) == host


LOOPBACK = {
    "127.0.0.1": ("127.0.0.1:50051", True),
    "anywhere in 127/8": ("127.9.8.7:1", True),
    "ipv6 ::1 bracketed": ("[::1]:50051", True),
    "localhost": ("localhost:1", True),
    "LOCALHOST in capitals": ("LOCALHOST:1", True),
    "bare ::1": ("::1", True),
    "every ipv4 interface": ("0.0.0.0:1", False),
    "every ipv6 interface": ("[::]:1", False),
    "a private network": ("10.1.2.3:1", False),
    "a name, never resolved": ("example.com:1", False),
    "a name that starts like localhost": ("localhost.evil:1", False),
}


@pytest.mark.parametrize(("address", "loopback"), rows(LOOPBACK))
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


TARGETS = {
    "one address": ("127.0.0.1:1", ["127.0.0.1:1"]),
    "a comma-separated list": ("127.0.0.1:1, 127.0.0.2:2", ["127.0.0.1:1", "127.0.0.2:2"]),
    "ipv4: scheme": ("ipv4:127.0.0.1:1,127.0.0.2:2", ["127.0.0.1:1", "127.0.0.2:2"]),
    "ipv6: scheme": ("ipv6:[::1]:1", ["[::1]:1"]),
    "dns: without authority": ("dns:///localhost:1", ["localhost:1"]),
    "dns: with authority": ("dns://8.8.8.8/genconf.example:1", ["genconf.example:1"]),
    "empty": ("", []),
}


@pytest.mark.parametrize(("target", "addresses"), rows(TARGETS))
def test_target_addresses(target: str, addresses: list[str]) -> None:
    assert target_addresses(target) == addresses


LOCAL_TARGETS = {
    "loopback address": ("127.0.0.1:1", True),
    "ipv4: list of loopbacks": ("ipv4:127.0.0.1:1,127.0.0.2:2", True),
    "dns: localhost": ("dns:///localhost:1", True),
    "unix socket": ("unix:/run/g", True),
    "remote address": (REMOTE, False),
    "one remote in a list": ("127.0.0.1:1,10.0.0.1:1", False),
    "dns: with an authority": ("dns://8.8.8.8/genconf.example:1", False),
    "dns: a name": ("dns:///genconf.example:50051", False),
    "empty": ("", False),
}


@pytest.mark.parametrize(("target", "local"), rows(LOCAL_TARGETS))
def test_target_is_local(target: str, local: bool) -> None:
    assert target_is_local(target) is local


PEERS = {
    "ipv4 peer": ("ipv4:10.1.2.3:40000", "10.1.2.3"),
    "ipv6 peer, percent-encoded": ("ipv6:%5B::1%5D:40000", "::1"),
    "ipv6 peer, bracketed": ("ipv6:[fd00::2]:1", "fd00::2"),
    "unix socket, whole": ("unix:/run/genconf.sock", "unix:/run/genconf.sock"),
    "no scheme, whole": ("somewhere", "somewhere"),
}


@pytest.mark.parametrize(("peer", "host"), rows(PEERS))
def test_peer_host(peer: str, host: str) -> None:
    assert peer_host(peer) == host
