"""The server's defaults, every `genconf serve` flag's, in one leaf module: the CLI
builds its parser from them without loading the server (pymongo, the cache, the
API), so a client command starts in a third of the time."""

from __future__ import annotations

from typing import Final

MIB: Final = 1024 * 1024

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
DEFAULT_BOOKMARK_INTERVAL: Final = 30.0
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
