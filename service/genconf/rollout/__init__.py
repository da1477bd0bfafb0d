"""Progressive rollouts: a branch taken to an application's units in steps, driven
by exactly one server replica at a time.

    plan.py    what a running rollout does next: a pure function (table-tested)
    lease.py   the lease document, its epochs, and the fence of every driver write
    store.py   rollout documents and every write to them (operators' and the driver's)
    driver.py  the per-replica loop
    (genconf.domain.rollouts: the plan's values and the record the cache holds)

**The plan** (``rollouts`` collection, one document per branch, ``_id`` = branch;
followed by the change stream like branches, so the cache holds every rollout,
the API reads them from it, and the admin feed carries a ``rollout`` delta for
each change): the application, the steps (``{units: n}`` or ``{percent: p}``),
the bake time, the failure budget (``{units: n}`` or ``{percent: p}`` of the
tracking units, default 0), what to do on failure (pause, the default, or
rollback), whether to commit at the end, a label selector; and its state:
``running | paused | completed | committed | rolled_back | aborted``, the current
step (0-based) and phase (``tracking | waiting | baking``), ``bake_until``, the
reason it stopped and the failed units, the units skipped (on another branch),
and the newest 200 transitions (when, by whom: the operator, or ``replica ID``
with its lease epoch; from, to, step, why, units tracked).

**Starting** reads the branch and the application under their fences: the branch
must exist, stage changes to the application, not track the application as a
whole or by a cohort of its own, and track no unit of it outside the first
step's cohort; a branch has one running or paused rollout at most (a finished
one is replaced by the next).

**A step's cohort** is the first k units of ``hash_order(branch, units of APP
matching the selector)``: k = n for a units step (capped at the count), ⌈p/100·N⌉
for a percent step. Prefixes nest, so steps only add units; a step never
untracks, and never brings the application's units on the branch past k (units
already there count, also ones an operator tracked by hand). A unit of the
cohort that tracks another branch is skipped and named (it does not count; the
step holds fewer units). Units added to the application later join at the next
step (the cohort is recomputed at each step).

**Gates** (`plan`): a tracking unit is *current* when its latest report is the
hash of its effective config now (the cache's: the hash its agent receives), ok,
and not unhealthy; *failed* when it reported that hash not ok, or unhealthy.
More failed units than the budget: pause (the reason names the units) or roll
back (every unit of the application off the branch, back on master; the branch
is kept; state ``rolled_back``). Failed units within the budget block the step
until they are fixed or the budget is exceeded. When every tracking unit is
current, the step bakes until now + bake; a failure while baking stops it as
above, a unit no longer current (say the branch was edited) sends it back to
waiting; then the next step. After the last step: with ``commit``, the branch is
committed (conflict-checked, ``require_applied``; the generation's reason and the
versions' metadata name the rollout), and a refused commit (a conflict, units not
applied) pauses the rollout with the keys or units named; without it, the state
is ``completed`` and the operator commits.

**Operators**: pause (a running rollout stops where it is), resume (a paused one
goes on from its recorded step and phase; a bake starts over), abort (every unit
of the application back on master, the branch kept, state ``aborted``), each
recorded with who. A branch committed or aborted by hand while its rollout runs:
the driver sees it gone and marks the rollout ``aborted``, saying so (likewise
for a removed application).

**One driver across replicas** (`lease`): one lease document for every rollout
(and the maintenance that runs under it), ``leases/rollouts``: holder, epoch (the
fencing token, +1 at each change of hands), expires (the holder's clock + lease
seconds). A replica drives only while it holds it; it takes it when absent or
expired and renews it every lease/3 seconds while any rollout runs (an idle model
costs no write). Every driver write is one transaction that first checks and
writes the lease document (`Lease.check`), then checks the rollout is still at
the revision the decision was made on, then writes the rollout and the branch
together (the store's branch writes take this as their ``guard``). So a step's
tracking and the step's advance are one transaction: a crash cannot split them,
and a replica taking over continues from the recorded step and phase; no step is
skipped, none applied twice. A holder that was stopped and wakes after losing
the lease writes nothing: its fence sees another epoch, or its own expiry.

**Maintenance** runs under the same lease: the driver aborts branches past their
expiry (`Store.expire_branches`, each abort fenced), when the cache shows one.

**Timing**: the driver looks at its rollouts each ``--rollout-tick`` (0.5 s); a
replica takes over within the lease time (``--lease-seconds``, 10) of the
holder's last renewal, plus a tick. ``--rollout-tick 0`` turns the driver off on
a replica (another must drive rollouts and expire branches).
"""
