"""The client's calls of RolloutService: start a progressive rollout of a branch,
follow it, pause, resume or abort it. The server drives it (one replica at a
time); these only record what operators decide."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from genconf import wire
from genconf.client.status import from_rpc_error
from genconf.domain.results import WriteResult
from genconf.domain.rollouts import Budget, Step
from genconf.v1 import rollout_pb2 as pb
from genconf.v1 import rollout_pb2_grpc

T = TypeVar("T")
Size = str | int | Step


def _step(size: Size) -> pb.RolloutSize:
    """``3`` or ``"3"``: units; ``"10%"``: a percentage."""
    step = size if isinstance(size, Step) else Step.parse(str(size))
    return (
        pb.RolloutSize(percent=step.percent) if step.percent else pb.RolloutSize(units=step.units)
    )


def _budget(size: str | int | Budget) -> pb.RolloutSize:
    budget = size if isinstance(size, Budget) else Budget.parse(str(size))
    if budget.percent:
        return pb.RolloutSize(percent=budget.percent)
    return pb.RolloutSize(units=budget.units)


class RolloutCalls:
    """Rollouts, mixed into `genconf.client.aio.Client`."""

    channel: grpc.aio.Channel
    timeout: float | None
    _rollout_stub: rollout_pb2_grpc.RolloutServiceStub | None = None

    @property
    def _rollouts(self) -> rollout_pb2_grpc.RolloutServiceStub:
        if self._rollout_stub is None:
            self._rollout_stub = rollout_pb2_grpc.RolloutServiceStub(self.channel)
        return self._rollout_stub

    async def _rollout_call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def _rollout_write(
        self, method: Callable[..., Awaitable[Any]], request: Any
    ) -> WriteResult:
        return wire.write_result(await self._rollout_call(method, request))

    async def start_rollout(
        self,
        branch: str,
        *,
        application: str,
        steps: Sequence[Size],
        bake_seconds: float = 0,
        max_failed: str | int | Budget | None = None,
        on_failure: str = "pause",
        commit: bool = False,
        selector: str = "",
        reason: str = "",
        created_by: str = "",
    ) -> WriteResult:
        """Roll ``branch`` out to ``application``'s units in ``steps`` (``1``, ``"10%"``,
        ...), holding ``bake_seconds`` at each; past ``max_failed`` failed units
        (``2`` or ``"10%"``; default none) ``on_failure`` pauses or rolls back;
        ``commit`` commits the branch after the last step."""
        request = pb.StartRolloutRequest(
            branch=branch,
            application=application,
            steps=[_step(s) for s in steps],
            bake_seconds=bake_seconds,
            on_failure=on_failure,
            commit=commit,
            selector=selector,
            reason=reason,
            created_by=created_by,
        )
        if max_failed is not None:
            request.max_failed.CopyFrom(_budget(max_failed))
        return await self._rollout_write(self._rollouts.StartRollout, request)

    async def get_rollout(self, branch: str, *, min_revision: int = 0) -> pb.Rollout:
        return await self._rollout_call(
            self._rollouts.GetRollout,
            pb.GetRolloutRequest(branch=branch, min_revision=min_revision),
        )

    async def list_rollouts(
        self, *, application: str = "", min_revision: int = 0
    ) -> list[pb.Rollout]:
        """Every rollout (of ``application``), finished ones too, by branch."""
        reply = await self._rollout_call(
            self._rollouts.ListRollouts,
            pb.ListRolloutsRequest(application=application, min_revision=min_revision),
        )
        return list(reply.rollouts)

    async def pause_rollout(
        self, branch: str, *, reason: str = "", created_by: str = ""
    ) -> WriteResult:
        return await self._rollout_write(
            self._rollouts.PauseRollout,
            pb.PauseRolloutRequest(branch=branch, reason=reason, created_by=created_by),
        )

    async def resume_rollout(
        self, branch: str, *, reason: str = "", created_by: str = ""
    ) -> WriteResult:
        return await self._rollout_write(
            self._rollouts.ResumeRollout,
            pb.ResumeRolloutRequest(branch=branch, reason=reason, created_by=created_by),
        )

    async def abort_rollout(
        self, branch: str, *, reason: str = "", created_by: str = ""
    ) -> WriteResult:
        """Every unit of the rollout's application back on master; the branch is kept."""
        return await self._rollout_write(
            self._rollouts.AbortRollout,
            pb.AbortRolloutRequest(branch=branch, reason=reason, created_by=created_by),
        )
