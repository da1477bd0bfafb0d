"""What each route answers, as the OpenAPI document describes it.

The routes answer the dicts of `genconf.shapes` (the shapes ``genconf -o json``
prints) as they are; these models only document them, so they are never used to
validate or re-encode a reply (every key of a shape is always present, null
where a value is absent).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class View(BaseModel):
    pass


class ErrorDetails(View):
    code: str | None = Field(description="the genconf error class, e.g. VersionMismatch")
    expected_version: int | None
    actual_version: int | None
    conflicts: list[dict[str, Any]] = Field(
        description="{application, key, from, current, proposed}: values as JSON text"
    )
    mismatches: list[dict[str, Any]] = Field(
        description="{application, key, expected, actual, branch}: per-key expectations"
    )
    units: list[str]
    fields: list[dict[str, str]] = Field(description="{field, problem} of a malformed request")


class ErrorBody(View):
    code: str = Field(description="the gRPC status name, e.g. INVALID_ARGUMENT")
    message: str = Field(description="what went wrong, as over gRPC")
    details: ErrorDetails


class WriteView(View):
    revision: int = Field(description="the write's revision (cluster time)")
    generation: int | None
    versions: dict[str, int] = Field(description="application -> its new version")
    units: list[str]


class TrackView(WriteView):
    skipped: dict[str, str] = Field(
        description="unit -> why it was left as it was: units of the cohort that track "
        "another branch"
    )


class OptionView(View):
    type: str
    default: Any
    description: str
    secret: bool


class ApplicationView(View):
    name: str
    charm: str
    version: int
    units: list[str]
    schema_: dict[str, OptionView] = Field(alias="schema")
    settings: dict[str, Any] = Field(description="the values operators set (master)")
    effective: dict[str, Any] = Field(description="defaults with master's values over them")


class AppliedView(View):
    hash: str
    ok: bool
    message: str
    at: str | None


class UnitView(View):
    name: str
    application: str
    branch: str | None
    applied: AppliedView | None
    labels: dict[str, str] = Field(description="zone=a: what cohorts of branches select on")


class ConfigView(View):
    unit: str
    application: str
    branch: str | None
    config: dict[str, Any]
    hash: str
    app_version: int
    revision: int


class BranchView(View):
    name: str
    created_by: str
    on_behalf_of: str | None
    authenticated: bool
    created_at: str | None
    expires_at: str | None = Field(
        description="when the server aborts it, its units back on master (null: never)"
    )
    track_applications: list[str]
    units: list[str]
    changes: dict[str, dict[str, dict[str, Any]]] = Field(
        description="application -> key -> {op, value, from}"
    )
    cohorts: dict[str, dict[str, Any]] = Field(
        description="application -> {percent, selector}: the stable cohort of it the branch "
        "tracks (units added later join by the same rule)"
    )


class UnitAppliedView(View):
    unit: str
    hash: str = Field(description="the unit's config hash now")
    applied: bool = Field(description="its agent reported this hash applied, and ok")
    report: AppliedView | None


class BranchDetailView(BranchView):
    applied: list[UnitAppliedView]


class BranchDiffView(View):
    branch: str
    revision: int
    applications: list[dict[str, Any]] = Field(
        description="{application, entries: [{path, kind, old, new, text_diff}], conflicts}"
    )


class SnapshotView(View):
    applications: list[ApplicationView]
    units: list[UnitView]
    branches: list[BranchView]
    last_generation: int
    revision: int


class VersionView(View):
    application: str
    version: int
    settings: dict[str, Any]
    metadata: dict[str, Any]
    timestamp: str | None
    reason: str
    created_by: str
    on_behalf_of: str | None
    authenticated: bool
    previous_version: int | None
    generation: int | None
    tags: list[str]


class VersionsPage(View):
    versions: list[VersionView] = Field(description="newest first")
    more: bool = Field(description="the limit cut the list: page on with before=")
    current_version: int


class LatestView(View):
    application: str
    version: int
    label: str | None
    label_version: int | None


class VersionDiffView(View):
    application: str
    from_version: int
    to_version: int
    from_label: str | None
    to_label: str | None
    added: int
    removed: int
    changed: int
    summary: str
    entries: list[dict[str, Any]]


class LabelView(View):
    application: str
    version: int
    label: str
    revision: int


class KeyHistoryPage(View):
    application: str
    key: str
    entries: list[dict[str, Any]] = Field(
        description="newest first: {version, value, is_default, created_by, timestamp, "
        "reason, generation}"
    )
    more: bool


class GenerationView(View):
    id: int
    kind: str
    branch: str | None
    changes: dict[str, dict[str, dict[str, Any]]]
    created_by: str
    on_behalf_of: str | None
    authenticated: bool
    created_at: str | None
    reason: str
    versions: dict[str, int]


class GenerationsPage(View):
    generations: list[GenerationView] = Field(description="newest first")
    more: bool


class TokenView(View):
    id: str
    name: str | None
    role: str
    unit: str | None
    unit_uid: str | None
    created_by: str
    created_at: str | None
    expires_at: str | None
    revoked: bool
    description: str


class CreatedTokenView(TokenView):
    token: str = Field(description="the secret bearer token: shown this once")


class WhoAmI(View):
    role: str
    name: str | None
    token_id: str | None
    unit: str | None
    auth: bool = Field(description="false: the server runs without authentication")


class Health(View):
    status: str = Field(description="SERVING, or NOT_SERVING (answered with 503)")


class ImportSummary(View):
    records: int
    applications: list[str]
    branches: list[str]
    units: int
    versions: int
    generations: int
    transactions: int
    renumbered: dict[str, int] | None
    revision: int


class UnitStatusView(View):
    name: str
    branch: str | None
    state: str = Field(
        description="current: reported its effective config applied, ok, not unhealthy; "
        "failed: reported that config with ok false, or unhealthy; behind: reported "
        "another (older) config; unreported: never reported"
    )
    reported_at: str | None
    hash: str | None = Field(description="the hash it reported (observers: keyed)")
    ok: bool | None
    message: str | None = Field(description="the tail of the agent's command output")
    health: str | None = Field(description="unknown, healthy or unhealthy")
    health_message: str | None = Field(description="the tail of the health command's output")
    health_since: str | None


class BranchInFlightView(View):
    name: str
    units: int = Field(description="units of the application tracking it")
    keys: int = Field(description="keys it stages for the application")


class ApplicationStatusView(View):
    name: str
    version: int
    label: str | None = Field(description="the highest label on the current version")
    counts: dict[str, int] = Field(
        description="units per state: current, behind, failed, unreported"
    )
    branches: list[BranchInFlightView]
    units: list[UnitStatusView]


class StatusView(View):
    revision: int
    applications: list[ApplicationStatusView]
