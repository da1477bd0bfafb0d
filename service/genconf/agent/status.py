"""What the agent shows: a live status line on a terminal, log lines otherwise."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Final, TextIO

import grpc

# The agent's log lines keep the logger name they have always carried.
log = logging.getLogger("genconf.agent.runner")


def wants_live_status(stream: TextIO) -> bool:
    """A redrawn status line only for a person at a terminal that can clear a line
    (not TERM=dumb); logs and pipes get plain log lines instead."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False
    return terminal and os.environ.get("TERM") != "dumb"


@dataclass
class Status:
    """What the agent shows: a live status line on a terminal, log lines otherwise."""

    unit: str
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool = False
    connection: str = "connecting"
    applied: str = "-"
    configs: int = 0
    when: str = ""
    health: str = ""  # shown only with --health-cmd: "health unknown", "healthy", ...
    _drawn: bool = False

    def event(self, text: str, *, error: bool = False) -> None:
        """A line that stays (above the live line on a terminal)."""
        if not self.live:
            (log.error if error else log.info)("%s: %s", self.unit, text)
            return
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self._clear()
        self.stream.write(f"{stamp} {text}\n")
        self.draw()

    def draw(self) -> None:
        if not self.live:
            return
        line = (
            f"genconf agent {self.unit} | {self.connection} | applied {self.applied} "
            f"| {self.configs} config(s) written{self.when}"
        )
        if self.health:
            line += f" | {self.health}"
        self._clear()
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def suspend(self) -> None:
        """Take the live line away while a command may print to the terminal."""
        self._clear()
        self.stream.flush()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def close(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


CONNECTION_NAMES: Final = {
    grpc.ChannelConnectivity.READY: "connected",
    grpc.ChannelConnectivity.CONNECTING: "connecting",
    grpc.ChannelConnectivity.TRANSIENT_FAILURE: "reconnecting",
    grpc.ChannelConnectivity.IDLE: "connecting",  # only before the watch's first call
    grpc.ChannelConnectivity.SHUTDOWN: "closed",
}
