"""The client process of `genconf bench soak`: agents that come and go one by one.

``python -m genconf.bench.soak_agents`` answers every command of
`genconf.bench.agents` (it is the same command loop) plus these, which treat each
agent on its own rather than in groups opened and closed together:

- ``join {agents: [[unit, known_hash, min_revision], ...], timeout}``: one
  ``WatchConfig`` stream per unit on the shared channels (``connect`` first);
  answers once each has its first message (config or bookmark) or has failed.
  Like a real agent, a stream that ends with UNAVAILABLE reconnects with the hash
  it holds.
- ``leave {units}``: cancel those agents' streams; answers the hash each held, so
  the bench can have it rejoin with that hash later.
- ``converge {expected: {unit: hash}, timeout}``: until every agent holds its
  unit's expected hash, and every agent of a unit not in ``expected`` (removed)
  saw its stream end with NOT_FOUND; answers the agents checked and what was
  still wrong at the end.
- ``counts``: messages received (configs, bookmarks) and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, ClassVar, Final

import grpc

from genconf.bench.agents import Agents, serve_commands
from genconf.v1 import agent_pb2, agent_pb2_grpc

RECONNECT_DELAY: Final = 0.2  # before a stream that ended with UNAVAILABLE reconnects
MISMATCH_SAMPLE: Final = 20  # mismatches listed in a `converge` answer (all are counted)


class Agent:
    """One agent: its stream, the hash it holds, and how its stream ended."""

    __slots__ = ("call", "ended", "first", "hash", "leaving", "revision", "task", "unit")

    def __init__(self, unit: str, known_hash: str, min_revision: int) -> None:
        self.unit = unit
        self.hash = known_hash
        self.revision = min_revision
        self.call: Any = None
        self.task: asyncio.Task[None] | None = None
        self.first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.leaving = False
        self.ended = ""  # status code name once the stream ended by itself

    def started(self) -> None:
        if not self.first.done():
            self.first.set_result(None)


class SoakAgents(Agents):
    """`Agents` plus agents that join and leave one by one."""

    COMMANDS: ClassVar[tuple[str, ...]] = (*Agents.COMMANDS, "join", "leave", "converge", "counts")

    def __init__(self) -> None:
        super().__init__()
        self.agents: dict[str, Agent] = {}
        self.configs = 0
        self.bookmarks = 0
        self.reconnects = 0
        self.turn = 0  # the next channel for a new stream
        # While `converge` runs: each unit's expected hash, and the agents not there yet.
        self.want: dict[str, str] | None = None
        self.wrong: set[str] = set()
        self.settled = asyncio.Event()

    # -- one agent -------------------------------------------------------------

    def _ok(self, agent: Agent) -> bool:
        assert self.want is not None
        want = self.want.get(agent.unit)
        if want is None:  # its unit was removed: the server must have ended the stream
            return agent.ended == grpc.StatusCode.NOT_FOUND.name
        return not agent.ended and agent.hash == want

    def _judge(self, agent: Agent) -> None:
        """Keep `converge`'s count of wrong agents current, one agent at a time."""
        if self.want is None:
            return
        if self._ok(agent):
            self.wrong.discard(agent.unit)
            if not self.wrong:
                self.settled.set()
        else:
            self.wrong.add(agent.unit)

    async def _run(self, agent: Agent) -> None:
        """Read the agent's stream; reconnect with its hash after UNAVAILABLE."""
        while True:
            stub = agent_pb2_grpc.AgentServiceStub(self.channels[self.turn % len(self.channels)])
            self.turn += 1
            agent.call = stub.WatchConfig(
                agent_pb2.WatchConfigRequest(
                    unit=agent.unit, known_hash=agent.hash, min_revision=agent.revision
                )
            )
            try:
                async for message in agent.call:
                    if message.HasField("bookmark"):
                        # Progress only: the agent holds what configs brought it, so a
                        # config the server failed to send shows in the final check.
                        self.bookmarks += 1
                        agent.revision = max(agent.revision, message.bookmark.revision)
                    else:
                        self.configs += 1
                        agent.hash = message.config.hash
                        agent.revision = max(agent.revision, message.config.revision)
                    agent.started()
                    self._judge(agent)
                agent.ended = grpc.StatusCode.OK.name  # the server never ends one cleanly
            except grpc.aio.AioRpcError as exc:
                if agent.leaving:
                    return
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    self.reconnects += 1
                    await asyncio.sleep(RECONNECT_DELAY)  # a real agent's backoff
                    continue
                agent.ended = exc.code().name
            agent.started()
            self._judge(agent)
            return

    # -- commands ----------------------------------------------------------------

    async def join(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if not self.channels:
            raise ValueError("connect first")
        new: list[Agent] = []
        for unit, known_hash, min_revision in cmd["agents"]:
            old = self.agents.get(unit)
            if old is not None and not old.ended:
                raise ValueError(f"an agent of {unit!r} is connected already")
            agent = Agent(unit, known_hash, min_revision)
            self.agents[unit] = agent
            agent.task = asyncio.create_task(self._run(agent))
            new.append(agent)
        if new:
            await asyncio.wait([a.first for a in new], timeout=cmd["timeout"])
        failed = [
            [a.unit, a.ended or "no first message in time"]
            for a in new
            if a.ended or not a.first.done()
        ]
        return {"failed": failed}

    async def leave(self, cmd: dict[str, Any]) -> dict[str, Any]:
        hashes: dict[str, str] = {}
        for unit in cmd["units"]:
            agent = self.agents.pop(unit)
            agent.leaving = True
            if agent.call is not None:
                agent.call.cancel()
            hashes[unit] = agent.hash
            if agent.task is not None:
                agent.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await agent.task
        return {"hashes": hashes}

    async def converge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        want: dict[str, str] = cmd["expected"]
        self.want = want
        try:
            self.wrong = {a.unit for a in self.agents.values() if not self._ok(a)}
            self.settled.clear()
            if self.wrong:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cmd["timeout"]):
                        await self.settled.wait()
            mismatches = []
            for unit in sorted(self.wrong):
                agent = self.agents[unit]
                state = f"stream ended: {agent.ended}" if agent.ended else "stream open"
                mismatches.append([unit, agent.hash, want.get(unit), state])
        finally:
            self.want = None
        return {
            "checked": sorted(u for u in self.agents if u in want),
            "removed": sum(1 for u in self.agents if u not in want),
            "mismatch_count": len(mismatches),
            "mismatches": mismatches[:MISMATCH_SAMPLE],
        }

    async def counts(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {
            "configs": self.configs,
            "bookmarks": self.bookmarks,
            "reconnects": self.reconnects,
        }

    async def aclose(self) -> None:
        await self.leave({"units": list(self.agents)})
        await super().aclose()


def main() -> int:
    asyncio.run(serve_commands(SoakAgents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
