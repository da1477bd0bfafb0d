"""Benchmarks of genconf's hot paths, runnable against an embedded or given MongoDB.

Each benchmark measures genconf next to a baseline taken in the same run (same
machine, same MongoDB, same data), so the figure that matters is the ratio, not
an absolute rate that depends on the host.

- `genconf.bench.ingest`: change events applied to the model cache per second,
  against a raw change-stream read of the same events.

The agent-facing workloads run a server process (`genconf.bench.server`: genconf
plus the baseline handlers of `genconf.bench.baseline`) and drive it from separate
client processes (`genconf.bench.agents`). What they share: `session` (the
processes and the model they drive), `processes` (the server and agent
processes), `options` (the command line) and `figures` (the report). Each prints
its figures next to the baseline and their ratio:

- `fanout`: one application-wide change to S watching agents; time until the
  last has it, against one pre-encoded message sent to as many streams.
- `targeted`: commits that each change one unit's config at a steady rate, with
  S agents subscribed; commit-to-notified, against a plain change stream.
- `read`: GetConfig throughput, against an empty unary handler.
- `http-read`: a unit's config over HTTP, against an empty route of the same stack.
- `idle`: server memory per idle stream and CPU with bookmarks on, against
  streams that only wait.
- `storm`: S agents reconnect at once; time until all have their config,
  against the same storm on the baseline stream.
- `soak`: writes, branch lifecycles and agents joining and leaving for N
  minutes; the server's memory over time (no baseline: against itself), then
  every agent's config against MongoDB's documents.
- `scale`: per-unit memory, cold start and resync, GetConfig latency under an
  open-loop load and fan-out to one application at 1k, 10k and 100k units,
  against the same figures at the smallest size.
- `all` (`genconf.bench.suite`): every workload but soak, each in its own process,
  in one table next to its baseline and target, the machine described once.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Final

# Workload name -> module under genconf.bench exposing ``main(argv) -> int``.
WORKLOADS: Final = {
    "ingest": "ingest",
    "fanout": "fanout",
    "targeted": "targeted",
    "read": "read",
    "http-read": "http_read",
    "idle": "idle",
    "storm": "storm",
    "soak": "soak",
    "scale": "scale",
    "all": "suite",
}


def main(workload: str, argv: Sequence[str]) -> int:
    """Run one workload's command line (``genconf bench WORKLOAD ...``)."""
    module = importlib.import_module(f"genconf.bench.{WORKLOADS[workload]}")
    return int(module.main(list(argv)))
