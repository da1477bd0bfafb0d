"""RolloutService: operators' rollout writes through `genconf.rollout.store`, reads
from the cache (which holds every rollout, as it holds branches).

The driver itself is not here: every replica runs one (`genconf.rollout.driver`),
started by `genconf.api.server`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc

from genconf.api.errors import unary, write
from genconf.api.guard import author
from genconf.api.reads import CacheServicer, read
from genconf.api.rollout_convert import budget_from_proto, rollout_to_proto, step_from_proto
from genconf.domain import names
from genconf.domain.authorship import Authorship
from genconf.domain.results import WriteResult
from genconf.domain.rollouts import Rollout
from genconf.errors import NotFound
from genconf.readside.cache import ModelCache
from genconf.rollout import plan
from genconf.rollout.driver import observe
from genconf.rollout.store import RolloutStore
from genconf.store.store import Store
from genconf.v1 import rollout_pb2 as pb
from genconf.v1 import rollout_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


def rollout_now(cache: ModelCache, r: Rollout) -> pb.Rollout:
    """The rollout with what the cache shows of it now: the units of the
    application on the branch, those not current yet, the candidates and the
    current step's size."""
    out = rollout_to_proto(r)
    if r.application not in cache.applications:
        return out
    seen = observe(cache, r, dt.datetime.now(dt.UTC))
    tracking = [u for u in seen.units if u.branch == r.branch]
    out.tracking.extend(u.name for u in tracking)
    out.candidates = len(plan.candidates(r, seen.units))
    out.step_size = plan.step_size(r, r.step, seen.units)
    if r.active:
        out.behind.extend(u.name for u in tracking if not plan.current(u))
    return out


class RolloutServicer(CacheServicer, rollout_pb2_grpc.RolloutServiceServicer):
    def __init__(self, store: Store, cache: ModelCache) -> None:
        super().__init__(store, cache)
        self.rollouts = RolloutStore(store)

    @write
    async def StartRollout(self, request: pb.StartRolloutRequest, context: Context) -> WriteResult:
        steps = [step_from_proto(s, i) for i, s in enumerate(request.steps)]
        return await self.rollouts.start(
            request.branch,
            request.application,
            steps,
            bake_seconds=request.bake_seconds,
            max_failed=budget_from_proto(request),
            on_failure=request.on_failure,
            commit=request.commit,
            selector=request.selector,
            reason=request.reason,
            author=Authorship(**author(request.created_by)),
        )

    @unary
    @read(lambda request: names.validate_branch_name(request.branch))
    def GetRollout(self, request: pb.GetRolloutRequest, context: Context) -> pb.Rollout:
        r = self.cache.rollouts.get(request.branch)
        if r is None:
            raise NotFound(
                f"branch {request.branch!r} has no rollout; start one with genconf rollout "
                f"start {request.branch} --app APP --steps 1,10%,50%,100%"
            )
        return rollout_now(self.cache, r)

    @unary
    @read(lambda request: request.application and names.validate_app_name(request.application))
    def ListRollouts(
        self, request: pb.ListRolloutsRequest, context: Context
    ) -> pb.ListRolloutsResponse:
        cache = self.cache
        return pb.ListRolloutsResponse(
            rollouts=[
                rollout_now(cache, r)
                for _, r in sorted(cache.rollouts.items())
                if not request.application or r.application == request.application
            ],
            revision=cache.revision,
        )

    @write
    async def PauseRollout(self, request: pb.PauseRolloutRequest, context: Context) -> WriteResult:
        return await self.rollouts.pause(
            request.branch,
            reason=request.reason,
            author=Authorship(**author(request.created_by)),
        )

    @write
    async def ResumeRollout(
        self, request: pb.ResumeRolloutRequest, context: Context
    ) -> WriteResult:
        return await self.rollouts.resume(
            request.branch,
            reason=request.reason,
            author=Authorship(**author(request.created_by)),
        )

    @write
    async def AbortRollout(self, request: pb.AbortRolloutRequest, context: Context) -> WriteResult:
        return await self.rollouts.abort(
            request.branch,
            reason=request.reason,
            author=Authorship(**author(request.created_by)),
        )
