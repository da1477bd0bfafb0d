"""Benchmarks of genconf's hot paths, runnable against an embedded or given MongoDB.

Each benchmark measures genconf next to a baseline taken in the same run (same
machine, same MongoDB, same data), so the figure that matters is the ratio, not
an absolute rate that depends on the host.

- `genconf.bench.ingest`: change events applied to the model cache per second,
  against a raw change-stream read of the same events.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Final

# Workload name -> module under genconf.bench exposing ``main(argv) -> int``.
WORKLOADS: Final = {"ingest": "ingest"}


def main(workload: str, argv: Sequence[str]) -> int:
    """Run one workload's command line (``genconf bench WORKLOAD ...``)."""
    module = importlib.import_module(f"genconf.bench.{WORKLOADS[workload]}")
    return int(module.main(list(argv)))
