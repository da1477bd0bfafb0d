"""The cache's synchronous state core: records, indexes, memoized effective configs.

No awaits, no tasks, no loop (etcd's watcher-group shape): `ModelState.apply`
takes one transaction's deltas and returns what changed, so it is table-tested
without an event loop; the notification layer (`cache.ModelCache`) tells the
watches and the feeds.

Effective config depends only on (application, branch), so it is computed and
memoized once per such *group*, not per unit: an application-wide change costs
one computation and one hash however many units share it, and every unit of
the group shares the same `EffectiveConfig` object (and later its encoding).
Groups are indexed by application and by branch, so a change drops only the
groups it concerns, never scanning the others.

Configs are *settled* once per run of transactions, not once per transaction:
`apply` mutates the state and only records which units may be affected (with
the hash each had before the run first touched it); `settle` computes each such
unit's config once and returns those whose hash differs. Reads never wait for
it (a group is memoized lazily from the current state); only watches do, and
the multiwatcher settles before every turn of the event loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from genconf.domain import values
from genconf.domain.config import effective_config
from genconf.domain.deltas import DELTA_OVERHEAD, Batch, Delta, Kind, Record, estimate_bytes
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.domain.rollouts import Rollout
from genconf.domain.schema import visible_keys
from genconf.errors import NotFound

GroupKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """The effective config of one (application, branch) group at a revision."""

    application: str
    branch: str | None
    config: Mapping[str, Any]
    hash: str
    app_version: int
    revision: int
    # Memo for encoders (e.g. the API's serialized message): computed once per
    # distinct config, shared by every subscriber of the group.
    encoded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UnitConfig:
    unit: str
    effective: EffectiveConfig

    @property
    def hash(self) -> str:
        return self.effective.hash

    @property
    def config(self) -> Mapping[str, Any]:
        return self.effective.config


class Changes(NamedTuple):
    """What one `ModelState.apply` changed (a tuple: cheap to make, per batch)."""

    # The deltas as the ring and the feeds keep them (`retained`).
    deltas: tuple[Delta, ...]
    # Per unit whose effective config hash changed, its new config (empty when
    # `apply` did not settle: `ModelState.settle` returns them then).
    configs: Mapping[str, EffectiveConfig]
    # Units the batch removed (their watches end).
    removed_units: tuple[str, ...]

    @property
    def applications(self) -> frozenset[str]:
        """Applications whose records the batch wrote or removed."""
        return frozenset(d.key for d in self.deltas if d.kind is Kind.APPLICATION)

    @property
    def branches(self) -> frozenset[str]:
        """Branches the batch wrote or removed."""
        return frozenset(d.key for d in self.deltas if d.kind is Kind.BRANCH)


class ModelState:
    """Applications, units and branches at one revision, with their indexes and
    the memoized effective config of each (application, branch) group."""

    def __init__(self) -> None:
        self.applications: dict[str, Application] = {}
        self.units: dict[str, Unit] = {}
        self.branches: dict[str, Branch] = {}
        # Rollout plans by branch (`genconf.rollout`): no config depends on them.
        self.rollouts: dict[str, Rollout] = {}
        self.last_generation = 0
        self.revision = 0
        self._units_by_app: dict[str, set[str]] = {}
        self._units_by_branch: dict[str, set[str]] = {}
        # Memoized groups per application, then per branch (None: master).
        self._groups: dict[str, dict[str | None, EffectiveConfig]] = {}
        # Per branch, the applications with a memoized group on it.
        self._grouped_on_branch: dict[str, set[str]] = {}
        # public_keys() per existing application, dropped with its groups (_invalidate).
        self._public_keys: dict[str, Container[str]] = {}
        # The run not yet settled: the hash each possibly-affected unit had before
        # the run's first transaction that could change it (None: the unit is new),
        # and the revision of the run's last transaction.
        self._before: dict[str, str | None] = {}
        self._run_revision = 0
        self.batches_applied = 0
        self.deltas_applied = 0
        self.groups_recomputed = 0

    # -- reads ---------------------------------------------------------------

    def config(self, unit: str) -> UnitConfig:
        """The unit's effective config; O(1) when memoized."""
        record = self.units.get(unit)
        if record is None:
            raise NotFound(f"unit {unit!r} not found")
        effective = self.group(record.application, record.branch)
        if effective is None:
            raise NotFound(f"unit {unit!r} has no application (it is being removed)")
        return UnitConfig(unit, effective)

    def master_config(self, app: Application) -> Mapping[str, Any]:
        """``app``'s effective config off any branch: the memoized group's when ``app``
        is the state the cache holds, else computed (an older state in a replay)."""
        if self.applications.get(app.name) is app:
            effective = self.group(app.name, None)
            if effective is not None:
                return effective.config
        return effective_config(app.schema, app.settings)

    def public_keys(self, application: str) -> Container[str] | None:
        """The keys of ``application`` observers may see (None if unknown): history
        may hold keys the schema has since dropped, which stay hidden.

        Redaction asks for every application entry of every observer message, so
        the set is memoized per application until its schema can have changed."""
        public = self._public_keys.get(application)
        if public is not None:
            return public
        app = self.applications.get(application)
        if app is None:
            return None
        public = visible_keys(app.schema)
        self._public_keys[application] = public
        return public

    def units_of(self, application: str) -> list[Unit]:
        names = self._units_by_app.get(application, set())
        return sorted((self.units[n] for n in names), key=lambda u: u.number)

    def tracking(self, branch: str) -> list[Unit]:
        names = self._units_by_branch.get(branch, set())
        return sorted((self.units[n] for n in names), key=lambda u: (u.application, u.number))

    def group(
        self, application: str, branch: str | None, revision: int | None = None
    ) -> EffectiveConfig | None:
        """The group's effective config, computed once until its inputs change."""
        by_branch = self._groups.get(application)
        if by_branch is not None:
            effective = by_branch.get(branch)
            if effective is not None:
                return effective
        app = self.applications.get(application)
        if app is None:
            return None
        changes = None
        if branch is not None and (b := self.branches.get(branch)) is not None:
            changes = b.changes.get(application)
        config = effective_config(app.schema, app.settings, changes)
        effective = EffectiveConfig(
            application,
            branch,
            config,
            values.config_hash(config),
            app.version,
            self.revision if revision is None else revision,
        )
        if by_branch is None:
            by_branch = self._groups[application] = {}
        by_branch[branch] = effective
        if branch is not None:
            self._grouped_on_branch.setdefault(branch, set()).add(application)
        self.groups_recomputed += 1
        return effective

    # -- writes --------------------------------------------------------------

    def load(
        self,
        applications: Iterable[Application],
        units: Iterable[Unit],
        branches: Iterable[Branch],
        last_generation: int,
        rollouts: Iterable[Rollout] = (),
    ) -> None:
        """Replace the whole state with a snapshot's."""
        self.applications = {a.name: a for a in applications}
        self.units = {u.name: u for u in units}
        self.branches = {b.name: b for b in branches}
        self.rollouts = {r.branch: r for r in rollouts}
        self.last_generation = last_generation
        self._units_by_app = {}
        self._units_by_branch = {}
        for u in self.units.values():
            self._index_unit(u, add=True)
        self._groups.clear()
        self._grouped_on_branch.clear()
        self._public_keys.clear()
        self._before.clear()  # a new state: nothing of a run before it is owed

    def diff_snapshot(
        self,
        applications: Iterable[Application],
        units: Iterable[Unit],
        branches: Iterable[Branch],
        generations: Iterable[Generation],
        revision: int,
        rollouts: Iterable[Rollout] = (),
    ) -> Batch:
        """The deltas that turn the state into this snapshot (after history was lost)."""
        deltas: list[Delta] = []
        tables: tuple[tuple[Kind, Mapping[str, Any], Mapping[str, Any]], ...] = (
            (Kind.APPLICATION, self.applications, {a.name: a for a in applications}),
            (Kind.UNIT, self.units, {u.name: u for u in units}),
            (Kind.BRANCH, self.branches, {b.name: b for b in branches}),
            (Kind.ROLLOUT, self.rollouts, {r.branch: r for r in rollouts}),
        )
        for kind, current, fresh in tables:
            for key in sorted(set(current) | set(fresh)):
                if current.get(key) != fresh.get(key):
                    deltas.append(_measured(kind, key, revision, fresh.get(key)))
        for gen in sorted(generations, key=lambda g: g.id):
            if gen.id > self.last_generation:
                deltas.append(_measured(Kind.GENERATION, str(gen.id), revision, gen))
        return Batch(revision, tuple(deltas))

    def apply(self, batch: Batch, *, settle: bool = True) -> Changes:
        """Apply one transaction's deltas; return what changed. With ``settle``
        (one transaction is its own run) that includes exactly the units whose
        effective config hash changed; without, `settle` returns them later, once
        for the whole run."""
        before, removed_units = self._before, []
        applied: list[Delta] = []
        for delta in batch.deltas:
            previous = self._apply_one(delta, before, removed_units)
            # retained() keeps an update as it is: no call for the common case.
            applied.append(delta if delta.value is not None else retained(delta, previous))
        if batch.revision > self._run_revision:
            self._run_revision = batch.revision
        if batch.revision > self.revision:
            self.revision = batch.revision
        self.batches_applied += 1
        self.deltas_applied += len(batch.deltas)
        configs = self.settle()[1] if settle else _NO_CONFIGS
        return Changes(tuple(applied), configs, tuple(removed_units))

    def settle(self) -> tuple[int, dict[str, EffectiveConfig]]:
        """End the run: the revision of its last transaction, and per unit whose
        effective config hash differs from the one it had before the run, its
        config (at that revision). A unit changed and changed back is left out."""
        before, revision = self._before, self._run_revision
        configs: dict[str, EffectiveConfig] = {}
        if not before:
            return revision, configs
        self._before = {}
        units, groups = self.units, self._groups
        for unit, old_hash in before.items():
            record = units.get(unit)
            if record is None:
                continue
            # The group's memo inline (every unit of a group after the first
            # finds it there), `group` only to compute it.
            by_branch = groups.get(record.application)
            new = None if by_branch is None else by_branch.get(record.branch)
            if new is None:
                new = self.group(record.application, record.branch, revision)
            if new is not None and new.hash != old_hash:
                configs[unit] = new
        return revision, configs

    # -- internals -------------------------------------------------------------

    def _capture(self, units: Iterable[str], before: dict[str, str | None]) -> None:
        """Note the hash each of ``units`` has now, unless the run already did."""
        all_units, groups = self.units, self._groups
        for unit in units:
            if unit in before:
                continue
            record = all_units.get(unit)
            if record is None:
                before[unit] = None
                continue
            by_branch = groups.get(record.application)
            effective = None if by_branch is None else by_branch.get(record.branch)
            if effective is None:
                effective = self.group(record.application, record.branch)
            before[unit] = None if effective is None else effective.hash

    def _invalidate_application(self, application: str) -> None:
        self._public_keys.pop(application, None)
        for branch in self._groups.pop(application, {}):
            if branch is not None and (apps := self._grouped_on_branch.get(branch)) is not None:
                apps.discard(application)
                if not apps:
                    del self._grouped_on_branch[branch]

    def _invalidate_branch(self, branch: str) -> None:
        for application in self._grouped_on_branch.pop(branch, ()):
            by_branch = self._groups.get(application)
            if by_branch is not None:
                by_branch.pop(branch, None)
                if not by_branch:
                    del self._groups[application]

    def _apply_one(
        self, delta: Delta, before: dict[str, str | None], removed_units: list[str]
    ) -> Record | None:
        """Mutate the state for one delta; return the object it replaces."""
        previous: Record | None
        if delta.kind is Kind.APPLICATION:
            previous = self.applications.get(delta.key)
            new_app = delta.value if isinstance(delta.value, Application) else None
            if not _same_config_inputs(previous, new_app):
                self._capture(self._units_by_app.get(delta.key, ()), before)
                self._invalidate_application(delta.key)
            if new_app is None:
                self.applications.pop(delta.key, None)
            else:
                self.applications[delta.key] = new_app
        elif delta.kind is Kind.UNIT:
            previous = self.units.get(delta.key)
            old_unit = previous if isinstance(previous, Unit) else None
            new_unit = delta.value if isinstance(delta.value, Unit) else None
            if old_unit is None or new_unit is None or old_unit.branch != new_unit.branch:
                self._capture((delta.key,), before)
            if old_unit is not None:
                self._index_unit(old_unit, add=False)
            if new_unit is None:
                self.units.pop(delta.key, None)
                if old_unit is not None:
                    removed_units.append(delta.key)
            else:
                self.units[delta.key] = new_unit
                self._index_unit(new_unit, add=True)
        elif delta.kind is Kind.BRANCH:
            previous = self.branches.get(delta.key)
            old_changes = previous.changes if isinstance(previous, Branch) else {}
            new_branch = delta.value if isinstance(delta.value, Branch) else None
            if old_changes != (new_branch.changes if new_branch else {}):
                self._capture(self._units_by_branch.get(delta.key, ()), before)
                self._invalidate_branch(delta.key)
            if new_branch is None:
                self.branches.pop(delta.key, None)
            else:
                self.branches[delta.key] = new_branch
        elif delta.kind is Kind.ROLLOUT:
            previous = self.rollouts.get(delta.key)
            if isinstance(delta.value, Rollout):
                self.rollouts[delta.key] = delta.value
            else:
                self.rollouts.pop(delta.key, None)
        else:
            previous = None
            if isinstance(delta.value, Generation):
                self.last_generation = max(self.last_generation, delta.value.id)
        return previous

    def _index_unit(self, unit: Unit, *, add: bool) -> None:
        pairs = ((self._units_by_app, unit.application), (self._units_by_branch, unit.branch))
        for index, key in pairs:
            if key is None:
                continue
            if add:
                index.setdefault(key, set()).add(unit.name)
            elif (names := index.get(key)) is not None:
                names.discard(unit.name)
                if not names:
                    del index[key]


_NO_CONFIGS: Mapping[str, EffectiveConfig] = MappingProxyType({})


def _measured(kind: Kind, key: str, revision: int, value: Record | None) -> Delta:
    """A delta of a reload, its size estimated once (no change event measured it)."""
    return Delta(kind, key, revision, value, None, DELTA_OVERHEAD + estimate_bytes(value))


def retained(delta: Delta, previous: Record | None) -> Delta:
    """What the ring and the admin feeds keep of an applied delta.

    The feed sends only the new value, so an update keeps no previous state (that
    would double what the ring holds, megabytes per write to a large application).
    A removal keeps a slim stand-in of what it removed: feed filters need to know
    which applications it concerned, not its settings or changes."""
    if delta.value is not None or previous is None:
        return delta
    slim: Record = previous
    if isinstance(previous, Application):
        slim = dataclasses.replace(previous, schema={}, settings={})
    elif isinstance(previous, Branch):
        slim = dataclasses.replace(previous, changes={app: {} for app in previous.changes})
    return delta.with_previous(slim)


def _same_config_inputs(a: Record | None, b: Application | None) -> bool:
    """Whether two application states give every unit the same effective config."""
    if not isinstance(a, Application) or b is None:
        return False
    if a.version != b.version or a.settings != b.settings:
        return False
    # Parsed schemas are shared per distinct stored schema (records.parsed_schema).
    return a.schema is b.schema or a.schema == b.schema
