"""Rollouts as `genconf.v1` messages: the admin feed's ``rollout`` delta
(`genconf.api.convert.delta_to_proto`) and RolloutService's replies and requests."""

from __future__ import annotations

from genconf.domain.rollouts import Budget, Rollout, Step, Transition
from genconf.errors import InvalidArgument
from genconf.v1 import rollout_pb2 as pb
from genconf.wire import to_timestamp


def size_to_proto(size: Step | Budget) -> pb.RolloutSize:
    return (
        pb.RolloutSize(percent=size.percent) if size.percent else pb.RolloutSize(units=size.units)
    )


def step_from_proto(size: pb.RolloutSize, index: int) -> Step:
    which = size.WhichOneof("size")
    if which is None:
        raise InvalidArgument(f"step {index + 1} gives neither units nor a percent")
    return Step.of(size.units, 0.0) if which == "units" else Step.of(0, size.percent)


def budget_from_proto(request: pb.StartRolloutRequest) -> Budget:
    if not request.HasField("max_failed"):
        return Budget()
    size = request.max_failed
    if size.WhichOneof("size") == "percent":
        if not 0 <= size.percent <= 100:
            raise InvalidArgument(f"max_failed percent must be from 0 to 100, not {size.percent:g}")
        return Budget(0, size.percent)
    if size.units < 0:
        raise InvalidArgument(f"max_failed units must be 0 or more, not {size.units}")
    return Budget(size.units)


def transition_to_proto(t: Transition) -> pb.RolloutTransition:
    return pb.RolloutTransition(
        at=to_timestamp(t.at),
        by=t.by,
        to=t.to,
        step=t.step,
        why=t.why,
        epoch=t.epoch,
        tracked=t.tracked,
        **{"from": t.from_},
    )


def rollout_to_proto(r: Rollout) -> pb.Rollout:
    """The rollout as its document holds it (the admin feed's delta)."""
    return pb.Rollout(
        branch=r.branch,
        application=r.application,
        steps=[size_to_proto(s) for s in r.steps],
        bake_seconds=r.bake_seconds,
        max_failed=size_to_proto(r.max_failed),
        on_failure=r.on_failure,
        commit=r.commit,
        selector=r.selector,
        state=r.state,
        step=r.step,
        phase=r.phase,
        bake_until=to_timestamp(r.bake_until),
        reason=r.reason,
        failed=list(r.failed),
        skipped=dict(r.skipped),
        transitions=[transition_to_proto(t) for t in r.transitions],
        created_by=r.created_by,
        on_behalf_of=r.on_behalf_of,
        authenticated=r.authenticated,
        created_at=to_timestamp(r.created_at),
        updated_at=to_timestamp(r.updated_at),
        note=r.note,
    )
