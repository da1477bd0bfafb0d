"""The agent's health command (``--health-cmd``): what it says of the unit, and the
tail of its output that goes into the report.

The command runs with ``sh -c`` like ``--exec`` (same environment, its own session,
killed after its timeout); exit 0 is healthy, anything else (an exit code, a
signal, the timeout) unhealthy. Its stdout and stderr are read together, since a
check script usually explains itself on either, and only their tail is kept: the
report travels on every change of health, so it stays small.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from genconf.agent.command import run_command

TAIL_LINES: Final = 20  # of the command's output, in the report
TAIL_BYTES: Final = 2048


class Health(enum.StrEnum):
    """As the server stores it (`genconf.domain.records.HEALTH_STATES`)."""

    UNKNOWN = "unknown"  # no --health-cmd, or it has not run yet
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthState:
    health: Health = Health.UNKNOWN
    message: str = ""


def output_tail(text: str, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``text`` (blank ends stripped), cut further to its
    last ``limit`` bytes of UTF-8, never inside a character."""
    kept = "\n".join(text.strip().splitlines()[-lines:])
    data = kept.encode()
    if len(data) <= limit:
        return kept
    return data[-limit:].decode(errors="ignore")


async def check_health(command: str, env: Mapping[str, str], limit: float) -> HealthState:
    """Run the health command once: healthy with its output's tail, or unhealthy
    with how it ended and that tail (``health check exited with code 1: ...``)."""
    result = await run_command(command, env, limit, merge_stdout=True)
    tail = output_tail(result.output)
    if result.ok:
        return HealthState(Health.HEALTHY, tail)
    what = result.outcome(limit, "health check")
    return HealthState(Health.UNHEALTHY, f"{what}: {tail}" if tail else what)
