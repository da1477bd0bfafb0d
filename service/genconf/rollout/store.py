"""Every write of a rollout: operators' (start, pause, resume, abort) and the
driver's (one `Action` of `genconf.rollout.plan`, fenced by the lease).

A rollout document lives in ``rollouts`` (``_id``: the branch), followed by the
change stream like branches, so the cache holds every rollout and the admin feed
carries each change as a ``rollout`` delta:

    {_id: BRANCH, application, steps: [{units: N} | {percent: P}], bake_seconds,
     max_failed: {units: N} | {percent: P}, on_failure: pause|rollback, commit,
     selector, note, state, step, phase, bake_until, reason, failed: [UNIT],
     skipped: {UNIT: why}, transitions: [{at, by, from, to, step, why, epoch,
     tracked}] (the newest 200), created_by, on_behalf_of, authenticated,
     created_at, updated_at, revision}

Each write is one transaction that reads the rollout document and writes it
(``revision`` + 1), so an operator's pause and the driver's step conflict and one
of them is retried. The driver's writes go through `act`: the lease's fence
(`Lease.check`), then a check that the document is still the revision the driver
decided on (else `Stale`: it decided on an old state and must look again), then
the document's update, then the branch write that goes with it (track, untrack,
commit), through the store's own methods with this as their ``guard``: one
transaction, so a step's tracking and the step's advance are never apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure

from genconf.domain.authorship import Authorship
from genconf.domain.cohorts import Selector, hash_order
from genconf.domain.names import validate_app_name, validate_branch_name
from genconf.domain.results import WriteResult
from genconf.domain.rollouts import (
    ABORTED,
    ACTIVE,
    BAKING,
    COLLECTION,
    MAX_NAMED,
    MAX_REASON_CHARS,
    MAX_TRANSITIONS,
    PAUSED,
    RUNNING,
    TRACKING,
    WAITING,
    Budget,
    Rollout,
    Step,
    Transition,
    check_bake,
    check_on_failure,
    check_sizes,
    check_steps,
    phase_label,
    steps_text,
)
from genconf.errors import FailedPrecondition, GenconfError, InvalidArgument, NotFound
from genconf.rollout.lease import LEASES, Lease
from genconf.rollout.plan import Action, listed
from genconf.store import limits, mongo
from genconf.store.documents import APPLICATIONS, BRANCHES, IMAGES, UNITS
from genconf.store.store import Store

Guard = Callable[[AsyncClientSession], Awaitable[None]]

ROLLOUTS: Final = COLLECTION
REPLANS: Final = 5  # an operator's abort re-reads the tracking units this often at most


class Stale(GenconfError):
    """The rollout changed since the driver decided (an operator's pause, another
    step): nothing written; the driver looks again."""


class _Replan(GenconfError):
    """The units tracking the branch changed under an abort: read them again."""


def by_text(author: Authorship) -> str:
    """Who an operator's transition names."""
    who = author.created_by or "unknown"
    return f"{who} (on behalf of {author.on_behalf_of})" if author.on_behalf_of else who


def _transition(
    r_label: str, to: str, step: int, why: str, by: str, now: dt.datetime, **more: int
) -> dict[str, Any]:
    return Transition(now, by, r_label, to, step, why, **more).to_doc()


def _push(transition: dict[str, Any]) -> dict[str, Any]:
    return {"transitions": {"$each": [transition], "$slice": -MAX_TRANSITIONS}}


def _bounded(names: Sequence[str]) -> list[str]:
    return list(names)[:MAX_NAMED]


class RolloutStore:
    """Rollout documents and every write to them, over the model's `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self.coll = store.db[ROLLOUTS]

    def _now(self) -> dt.datetime:
        return self.store.clock()

    async def ensure_schema(self) -> None:
        """Create ``rollouts`` with the change-stream images the multiwatcher reads
        (it opens the stream with ``fullDocument: required``), and ``leases``."""
        with mongo.mongo_errors():
            cursor = await self.db.list_collections(filter={"name": {"$in": [ROLLOUTS, LEASES]}})
            options = {c["name"]: c.get("options", {}) async for c in cursor}
            for name, wanted in (
                (ROLLOUTS, {"changeStreamPreAndPostImages": IMAGES}),
                (LEASES, {}),
            ):
                if name not in options:
                    try:
                        await self.db.create_collection(name, check_exists=False, **wanted)
                    except OperationFailure as exc:
                        if exc.code != 48:  # NamespaceExists: another replica won the race
                            raise
                elif wanted and options[name].get("changeStreamPreAndPostImages") != IMAGES:
                    await self.db.command("collMod", name, **wanted)

    async def _transact(self, body: Guard) -> int:
        _, revision = await mongo.transact(self.store.client, body)
        return revision

    async def _rollout(self, s: AsyncClientSession, branch: str) -> dict[str, Any]:
        validate_branch_name(branch)
        doc = await self.coll.find_one({"_id": branch}, session=s)
        if doc is None:
            raise NotFound(
                f"branch {branch!r} has no rollout; start one with "
                f"genconf rollout start {branch} --app APP --steps 1,10%,50%,100%"
            )
        return doc

    # -- operators ---------------------------------------------------------------------

    async def start(
        self,
        branch: str,
        application: str,
        steps: Sequence[Step],
        *,
        bake_seconds: float = 0,
        max_failed: Budget | None = None,
        on_failure: str = "",
        commit: bool = False,
        selector: str = "",
        reason: str = "",
        author: Authorship | None = None,
    ) -> WriteResult:
        """A rollout of ``branch`` to ``application``'s units, starting at its first step.

        Read under the branch's and the application's fences: the branch must exist
        and stage changes to the application, track no unit of it outside the first
        step's cohort (nor the whole application or a cohort of its own), and have no
        running or paused rollout."""
        validate_branch_name(branch)
        validate_app_name(application)
        plan = check_steps(steps)
        bake = check_bake(bake_seconds)
        budget = max_failed or Budget()
        if budget.units < 0 or not 0 <= budget.percent <= 100:
            raise InvalidArgument(
                f"max_failed must be a number of units (0 or more) or a percentage from 0 to "
                f"100, not {budget}"
            )
        failure = check_on_failure(on_failure)
        chosen = Selector.parse(selector)
        author = author or Authorship()
        limits.check_text("reason", reason, MAX_REASON_CHARS)
        limits.check_text("created_by", author.created_by, limits.MAX_NAME_CHARS)
        limits.check_text("created_by", author.on_behalf_of, limits.MAX_NAME_CHARS)
        by = by_text(author)

        async def body(s: AsyncClientSession) -> None:
            await mongo.fence(self.db, s, "branch", branch)
            doc = await self.db[BRANCHES].find_one({"_id": branch}, session=s)
            if doc is None:
                raise NotFound(
                    f"branch {branch!r} not found: add it and stage the changes first "
                    f"(genconf branch add {branch}; genconf config set {application} "
                    f"KEY=VALUE --branch {branch})"
                )
            await mongo.fence(self.db, s, "application", application)
            if (
                await self.db[APPLICATIONS].find_one({"_id": application}, {"_id": 1}, session=s)
                is None
            ):
                raise NotFound(f"application {application!r} not found")
            if application in doc.get("track_applications", ()) or application in (
                doc.get("cohorts") or {}
            ):
                raise FailedPrecondition(
                    f"branch {branch!r} tracks application {application!r} as a whole or a "
                    "cohort of its own, while a rollout picks the units itself: untrack it "
                    f"first (genconf branch untrack {branch} --app {application})"
                )
            if not doc.get("changes", {}).get(application):
                raise FailedPrecondition(
                    f"branch {branch!r} changes nothing in {application!r}: nothing to roll "
                    f"out; stage changes first (genconf config set {application} KEY=VALUE "
                    f"--branch {branch})"
                )
            old = await self.coll.find_one({"_id": branch}, session=s)
            if old is not None and old.get("state") in ACTIVE:
                was = Rollout.from_doc(old)
                raise FailedPrecondition(
                    f"branch {branch!r} already has a {was.state} rollout ({was.step_text()}): "
                    f"resume or abort it first (genconf rollout abort {branch})"
                )
            units = (
                await self.db[UNITS]
                .find({"application": application}, {"branch": 1, "labels": 1}, session=s)
                .to_list()
            )
            picked = [u["_id"] for u in units if chosen.matches(u.get("labels") or {})]
            if not picked:
                which = f"matches selector {chosen}" if chosen.requirements else "exists"
                raise FailedPrecondition(
                    f"no unit of {application!r} {which}: nothing to roll out to"
                )
            sizes = check_sizes(plan, len(picked))
            first = set(hash_order(branch, picked)[: sizes[0]])
            outside = sorted(
                u["_id"] for u in units if u["branch"] == branch and u["_id"] not in first
            )
            if outside:
                raise FailedPrecondition(
                    f"{len(outside)} unit(s) of {application!r} already track {branch!r} outside "
                    f"the first step's {sizes[0]} unit(s): {listed(outside)}; untrack them "
                    f"first (genconf branch untrack {branch} UNIT...) or start with a larger "
                    "first step"
                )
            now = self._now()
            summary = (
                f"started by {by}: steps {steps_text(plan)} of {len(picked)} unit(s) "
                f"({', '.join(map(str, sizes))}), bake {bake:g}s, failure budget {budget}, "
                f"on failure {failure}, {'commit' if commit else 'no commit'} at the end"
            )
            rollout = {
                "_id": branch,
                "application": application,
                "steps": [step.to_doc() for step in plan],
                "bake_seconds": bake,
                "max_failed": budget.to_doc(),
                "on_failure": failure,
                "commit": commit,
                "selector": str(chosen),
                "note": reason,
                "state": RUNNING,
                "step": 0,
                "phase": TRACKING,
                "bake_until": None,
                "reason": "",
                "failed": [],
                "skipped": {},
                "transitions": [_transition("", TRACKING, 0, summary, by, now)],
                **author.fields(),
                "created_at": now,
                "updated_at": now,
                # Counting on from an earlier rollout of the branch: a revision never repeats.
                "revision": int(old.get("revision", 0)) + 1 if old else 1,
            }
            await self.coll.replace_one({"_id": branch}, rollout, upsert=True, session=s)

        return WriteResult(await self._transact(body))

    async def pause(
        self, branch: str, *, reason: str = "", author: Authorship | None = None
    ) -> WriteResult:
        """Stop a running rollout where it is; its units stay as they are."""
        by = by_text(author or Authorship())
        limits.check_text("reason", reason, MAX_REASON_CHARS)

        async def body(s: AsyncClientSession) -> None:
            r = Rollout.from_doc(await self._rollout(s, branch))
            if r.state != RUNNING:
                raise FailedPrecondition(
                    f"the rollout of {branch!r} is {r.state}, not running: nothing to pause"
                    + (f" ({r.reason})" if r.state == PAUSED and r.reason else "")
                )
            why = f"paused by {by}" + (f": {reason}" if reason else "")
            await self._operator_update(s, r, PAUSED, r.phase, why, by, reason=why)

        return WriteResult(await self._transact(body))

    async def resume(
        self, branch: str, *, reason: str = "", author: Authorship | None = None
    ) -> WriteResult:
        """Go on from the step and phase a paused rollout stopped at (a bake starts
        over: from baking it waits until every unit is current again)."""
        by = by_text(author or Authorship())
        limits.check_text("reason", reason, MAX_REASON_CHARS)

        async def body(s: AsyncClientSession) -> None:
            r = Rollout.from_doc(await self._rollout(s, branch))
            if r.state != PAUSED:
                raise FailedPrecondition(
                    f"the rollout of {branch!r} is {r.state}, not paused: nothing to resume"
                )
            phase = WAITING if r.phase == BAKING else r.phase
            why = f"resumed by {by} at {r.step_text()}" + (f": {reason}" if reason else "")
            await self._operator_update(s, r, RUNNING, phase, why, by, reason="", failed=[])

        return WriteResult(await self._transact(body))

    async def abort(
        self, branch: str, *, reason: str = "", author: Authorship | None = None
    ) -> WriteResult:
        """End a running or paused rollout: every unit of its application that tracks
        the branch goes back to master; the branch is kept."""
        by = by_text(author or Authorship())
        limits.check_text("reason", reason, MAX_REASON_CHARS)
        for _ in range(REPLANS):
            try:
                return await self._abort_once(branch, reason, by)
            except _Replan:
                continue
        raise FailedPrecondition(
            f"units kept joining or leaving branch {branch!r} while the rollout was being "
            "aborted; try again"
        )

    async def _abort_once(self, branch: str, reason: str, by: str) -> WriteResult:
        validate_branch_name(branch)
        with mongo.mongo_errors():
            doc = await self.coll.find_one({"_id": branch})
            if doc is None:
                raise NotFound(f"branch {branch!r} has no rollout")
            app = doc["application"]
            branch_doc = await self.db[BRANCHES].find_one({"_id": branch})
            tracking = await self._tracking(None, branch, app)
        whole = branch_doc is not None and (
            app in branch_doc.get("track_applications", ())
            or app in (branch_doc.get("cohorts") or {})
        )

        async def guard(s: AsyncClientSession) -> None:
            r = Rollout.from_doc(await self._rollout(s, branch))
            if r.state not in ACTIVE:
                raise FailedPrecondition(
                    f"the rollout of {branch!r} is {r.state} already: nothing to abort"
                )
            if await self._tracking(s, branch, app) != tracking:
                raise _Replan("the tracking units changed")
            why = f"aborted by {by} at {r.step_text()}" + (f": {reason}" if reason else "")
            if tracking:
                why += f"; {len(tracking)} unit(s) of {app} back on master"
            await self._operator_update(s, r, ABORTED, r.phase, why, by, reason=why)

        return await self._with_branch_write(branch, guard, untrack=tracking, whole=whole, app=app)

    async def _operator_update(
        self,
        s: AsyncClientSession,
        r: Rollout,
        state: str,
        phase: str,
        why: str,
        by: str,
        **fields: Any,
    ) -> None:
        now = self._now()
        transition = _transition(r.label, phase_label(state, phase), r.step, why, by, now)
        await self.coll.update_one(
            {"_id": r.branch},
            {
                "$set": {"state": state, "phase": phase, "updated_at": now, **fields},
                "$push": _push(transition),
                "$inc": {"revision": 1},
            },
            session=s,
        )

    async def _tracking(self, s: AsyncClientSession | None, branch: str, app: str) -> list[str]:
        cursor = self.db[UNITS].find({"application": app, "branch": branch}, {"_id": 1}, session=s)
        return sorted([u["_id"] async for u in cursor])

    async def _with_branch_write(
        self,
        branch: str,
        guard: Guard,
        *,
        track: Sequence[str] = (),
        untrack: Sequence[str] = (),
        whole: bool = False,
        app: str = "",
        commit: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """``guard`` (which checks and writes the rollout document) and the branch
        write that goes with it, in one transaction."""
        if track:
            return await self.store.track_branch(branch, units=list(track), guard=guard)
        if whole:
            return await self.store.untrack_branch(branch, applications=[app], guard=guard)
        if untrack:
            return await self.store.untrack_branch(branch, units=list(untrack), guard=guard)
        if commit is not None:
            return await self.store.commit_branch(
                branch, require_applied=True, guard=guard, **commit
            )
        return WriteResult(await self._transact(guard))

    # -- the driver --------------------------------------------------------------------

    async def act(self, lease: Lease, r: Rollout, action: Action) -> WriteResult:
        """Carry out ``action`` on ``r`` (the rollout as the driver saw it) in one
        transaction fenced by ``lease``: `LeaseLost` or `Stale` if it cannot, with
        nothing written."""
        by = f"replica {lease.replica}"

        async def guard(s: AsyncClientSession) -> None:
            await lease.check(s)
            doc = await self.coll.find_one({"_id": r.branch}, session=s)
            if doc is None or doc.get("revision") != r.write_count or doc.get("state") != RUNNING:
                raise Stale(f"the rollout of {r.branch!r} changed since the driver looked")
            if action.untrack and await self._tracking(s, r.branch, r.application) != sorted(
                action.untrack
            ):
                raise Stale(f"the units tracking {r.branch!r} changed since the driver looked")
            now = self._now()
            transition = _transition(
                r.label,
                phase_label(action.state, action.phase),
                action.step,
                action.why,
                by,
                now,
                epoch=lease.epoch,
                tracked=len(action.track),
            )
            fields: dict[str, Any] = {
                "state": action.state,
                "phase": action.phase,
                "step": action.step,
                "bake_until": action.bake_until,
                "updated_at": now,
                "reason": "" if action.state == RUNNING else action.why,
            }
            if action.failed:
                fields["failed"] = _bounded(action.failed)
            if action.skipped:
                skipped = {**r.skipped, **action.skipped}
                fields["skipped"] = dict(sorted(skipped.items())[:MAX_NAMED])
            await self.coll.update_one(
                {"_id": r.branch},
                {"$set": fields, "$push": _push(transition), "$inc": {"revision": 1}},
                session=s,
            )

        commit = None
        if action.commit:
            author = Authorship(r.created_by, r.on_behalf_of, r.authenticated)
            note = f"{r.note} " if r.note else ""
            commit = {
                **author.fields(),
                "reason": (
                    f"{note}(rollout of branch {r.branch} to {r.application}: steps "
                    f"{steps_text(r.steps)}, committed by replica {lease.replica})"
                )[: limits.MAX_REASON_CHARS],
                "metadata": {
                    "rollout": r.branch,
                    "rollout_steps": steps_text(r.steps),
                    "rollout_replica": lease.replica,
                    "rollout_epoch": lease.epoch,
                },
            }
        return await self._with_branch_write(
            r.branch,
            guard,
            track=action.track,
            untrack=action.untrack,
            whole=action.untrack_application,
            app=r.application,
            commit=commit,
        )
