"""The server's options, every `genconf serve` flag, declared once in one leaf
module: the CLI builds its parser from `SERVE_OPTIONS` without loading the server
(pymongo, the cache, the API), so a client command starts in a third of the time;
`ServerConfig` takes its defaults from here and is built from the same table
(`server_config_values`), and the bench server reuses the flags it shares.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

MIB: Final = 1024 * 1024

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
DEFAULT_DATA_DIR: Final = ".genconf-data"
DEFAULT_DATABASE: Final = "genconf"
# 0: no periodic bookmarks. Resuming a config watch never needs them (see
# `AgentServicer.WatchConfig`), and each one costs a message per quiet stream.
DEFAULT_BOOKMARK_INTERVAL: Final = 0.0
DEFAULT_MAX_REQUEST_BYTES: Final = 4 * MIB
# Whole-server health is NOT_SERVING after this long without word from the stream.
DEFAULT_STALE_AFTER: Final = 10.0

DEFAULT_STREAMS_PER_TOKEN: Final = 1000
# Streams not bound to a token, per peer IP address. Without authentication every
# stream is such a stream and every peer is this machine (loopback only): room for
# a test fleet of local agents; with it, far more than health checks need.
DEFAULT_STREAMS_PER_PEER: Final = 1000
# Open streams of any kind, in all: 15-30 KB each when idle (5,000 health watches
# took 76 MB; the idle bench measures ~28 KB per config watch), so 300-600 MB at
# most; the idle bench's 10,000 fit.
DEFAULT_MAX_STREAMS: Final = 20_000

DEFAULT_RING_SIZE: Final = 10_000
DEFAULT_FEED_BUFFER: Final = 1_000
# Memory follows bytes, not counts: one delta of a large application can weigh
# megabytes, so the ring and each feed's queue are bounded in (estimated) bytes too.
DEFAULT_RING_BYTES: Final = 256 * MIB
DEFAULT_FEED_BYTES: Final = 64 * MIB
# The rollout driver (`genconf.rollout`): its lease, and how often it looks.
DEFAULT_LEASE_SECONDS: Final = 10.0
DEFAULT_ROLLOUT_TICK: Final = 0.5


# -- flag value types ------------------------------------------------------------


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def positive(text: str) -> int:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


def worker_count(text: str) -> int:
    """``--workers``: a number >= 1, or ``auto`` for one per CPU."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        return positive(text)
    except argparse.ArgumentTypeError:
        shown = text if text.lstrip("-").isdigit() else repr(text)
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or auto, got {shown}") from None


# -- the serve options -----------------------------------------------------------

SECURITY: Final = "security (authentication is on when an admin token is given)"
OPERATIONS: Final = "operations"
ROLLOUTS: Final = "rollouts (genconf rollout: one replica drives them, holding a lease)"


@dataclass(frozen=True)
class ServeOption:
    """One `genconf serve` flag: how the parser reads it, and whether it sets the
    `ServerConfig` field of its name (``--ring-size`` -> ``ring_size``)."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None
    group: str = ""  # the --help section ("": the command's own options)
    in_config: bool = True  # False: the command uses it (--demo), not ServerConfig
    to_config: Callable[[Any], Any] | None = None  # the flag's value as the field wants it

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def argparse_kwargs(self) -> dict[str, Any]:
        given = {
            "type": self.type,
            "metavar": self.metavar,
            "choices": self.choices,
            "action": self.action,
        }
        extra = {name: value for name, value in given.items() if value is not None}
        return {"default": self.default, "help": self.help, **extra}


SERVE_OPTIONS: Final[tuple[ServeOption, ...]] = (
    ServeOption("--mongo-uri", "a MongoDB 6.0+ replica set URI"),
    ServeOption("--data-dir", "embedded MongoDB's data", DEFAULT_DATA_DIR, to_config=Path),
    ServeOption("--listen", "host:port to serve gRPC on", DEFAULT_LISTEN),
    ServeOption(
        "--http-listen",
        "host:port to serve the JSON API (/api/v1/) and the web console (/) on; default: off",
        metavar="HOST:PORT",
    ),
    ServeOption("--database", "the model's database name", DEFAULT_DATABASE),
    ServeOption(
        "--workers",
        "server processes sharing --listen (and --http-listen), each with its own change "
        "stream and cache, restarted if one dies; auto: one per CPU",
        1,
        worker_count,
        metavar="N",
        in_config=False,
    ),
    ServeOption(
        "--bookmark-interval",
        "seconds between bookmarks on a quiet config watch, a sign of life for clients that "
        "want one (0: none; resuming does not need them)",
        DEFAULT_BOOKMARK_INTERVAL,
        float,
    ),
    ServeOption(
        "--demo",
        "load a small demo model on first run",
        False,
        action="store_true",
        in_config=False,
    ),
    ServeOption(
        "--retain-versions",
        "keep the newest N versions per application (labelled ones always); default: all",
        type=int,
        metavar="N",
    ),
    ServeOption(
        "--admin-token-file",
        "file holding the bootstrap admin token (or env GENCONF_ADMIN_TOKEN)",
        metavar="FILE",
        group=SECURITY,
        in_config=False,  # ServerConfig.admin_token: the token read from it
    ),
    ServeOption("--tls-cert", "server certificate", metavar="PEM", group=SECURITY, to_config=Path),
    ServeOption("--tls-key", "server private key", metavar="PEM", group=SECURITY, to_config=Path),
    ServeOption(
        "--tls-client-ca",
        "require client certificates from it",
        metavar="PEM",
        group=SECURITY,
        to_config=Path,
    ),
    ServeOption(
        "--max-request-bytes",
        "largest request accepted",
        DEFAULT_MAX_REQUEST_BYTES,
        int,
        group=SECURITY,
    ),
    ServeOption(
        "--streams-per-token",
        "open streams allowed per token",
        DEFAULT_STREAMS_PER_TOKEN,
        int,
        group=SECURITY,
    ),
    ServeOption(
        "--streams-per-peer",
        "open streams not bound to a token (health watches, reflection, every stream "
        "without authentication) allowed per client IP address",
        DEFAULT_STREAMS_PER_PEER,
        int,
        group=SECURITY,
    ),
    ServeOption(
        "--max-streams",
        "open streams of any kind allowed in all",
        DEFAULT_MAX_STREAMS,
        int,
        group=SECURITY,
    ),
    ServeOption(
        "--metrics-listen", "serve Prometheus /metrics", metavar="HOST:PORT", group=OPERATIONS
    ),
    ServeOption(
        "--log-format",
        "json: one object per line",
        "text",
        choices=("text", "json"),
        group=OPERATIONS,
        in_config=False,
    ),
    ServeOption(
        "--stale-after",
        "report NOT_SERVING (whole-server health) after this long without the change stream",
        DEFAULT_STALE_AFTER,
        float,
        metavar="SECONDS",
        group=OPERATIONS,
    ),
    ServeOption(
        "--ring-size",
        "recent changes kept so an admin feed can resume from a revision (memory: ~KB each)",
        DEFAULT_RING_SIZE,
        non_negative,
        metavar="DELTAS",
        group=OPERATIONS,
    ),
    ServeOption(
        "--feed-buffer",
        "an admin feed this many batches behind its reader ends RESOURCE_EXHAUSTED "
        "(the reader resumes from its last revision)",
        DEFAULT_FEED_BUFFER,
        positive,
        metavar="BATCHES",
        group=OPERATIONS,
    ),
    ServeOption(
        "--ring-bytes",
        "at most this many (estimated) bytes of recent changes kept for resume",
        DEFAULT_RING_BYTES,
        positive,
        metavar="BYTES",
        group=OPERATIONS,
    ),
    ServeOption(
        "--feed-bytes",
        "like --feed-buffer, in (estimated) bytes of changes waiting for the reader",
        DEFAULT_FEED_BYTES,
        positive,
        metavar="BYTES",
        group=OPERATIONS,
    ),
    ServeOption(
        "--replica-id",
        "this replica's name in the rollout lease and in rollout history; unique per "
        "replica (default: HOSTNAME:PID)",
        metavar="NAME",
        group=ROLLOUTS,
    ),
    ServeOption(
        "--lease-seconds",
        "the rollout driver's lease: another replica takes over this long after the "
        "holder's last renewal (renewed every third of it)",
        DEFAULT_LEASE_SECONDS,
        float,
        metavar="SECONDS",
        group=ROLLOUTS,
    ),
    ServeOption(
        "--rollout-tick",
        "seconds between the rollout driver's looks at its rollouts; 0: this replica "
        "drives no rollout",
        DEFAULT_ROLLOUT_TICK,
        float,
        metavar="SECONDS",
        group=ROLLOUTS,
    ),
)
SERVE_OPTION: Final = {option.flag: option for option in SERVE_OPTIONS}


def serve_option(flag: str, **changes: Any) -> ServeOption:
    """The option of ``flag`` outside its --help section, with ``changes`` applied
    (say another default): for another server process that shares it."""
    return replace(SERVE_OPTION[flag], group="", **changes)


def add_serve_flags(
    parser: argparse.ArgumentParser, options: Iterable[ServeOption] = SERVE_OPTIONS
) -> None:
    """The options as flags of ``parser``, each group in its --help section."""
    sections: dict[str, Any] = {"": parser}
    for option in options:
        if option.group not in sections:
            sections[option.group] = parser.add_argument_group(option.group)
        sections[option.group].add_argument(option.flag, **option.argparse_kwargs())


def server_config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The `ServerConfig` fields the parsed flags set (the options ``args`` holds)."""
    values = {}
    for option in SERVE_OPTIONS:
        if not option.in_config or not hasattr(args, option.dest):
            continue
        value = getattr(args, option.dest)
        if option.to_config is not None and value is not None:
            value = option.to_config(value)
        values[option.dest] = value
    return values
