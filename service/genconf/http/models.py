"""What each route takes in: one pydantic model per request body (strict types,
unknown fields refused) and its protobuf request.

JSON numbers reach protobuf as doubles, so a value whose numbers would be rounded
on the way (past ±`schema.MAX_EXACT_INT`) is refused here, naming the path, as the
client refuses it before sending; everything else is judged by the servicer the
route calls, with the same messages as over gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field

from genconf.domain.schema import check_wire_numbers
from genconf.domain.semver import SemVer
from genconf.domain.values import ABSENT
from genconf.errors import InvalidArgument
from genconf.v1 import agent_pb2, history_pb2, tokens_pb2, types_pb2
from genconf.v1 import controller_pb2 as cpb
from genconf.wire import expectations_to_proto, to_struct, to_value

INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1
# Protobuf's integer types: a number past them is a malformed request, not a crash.
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=-(2**63), le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Values = dict[str, Any]
# A version: its number, or a semantic label ("1.0.0", "v1.0.0"); "3" is number 3.
Ref = int | str


class Body(BaseModel):
    """A request body: exact JSON types (no "3" for 3), no field it does not name."""

    model_config = ConfigDict(strict=True, extra="forbid")


# -- values --------------------------------------------------------------------------


def exact(values: Mapping[str, Any]) -> Values:
    """``values`` with each one's numbers checked (`check_wire_numbers`)."""
    for key, value in values.items():
        check_wire_numbers(key, value)
    return dict(values)


def values_struct(values: Mapping[str, Any]) -> Any:
    return to_struct(exact(values))


def metadata_struct(metadata: Mapping[str, Any]) -> Any:
    check_wire_numbers("metadata", dict(metadata))
    return to_struct(metadata)


def expectations(expect: Mapping[str, Any], out: Any) -> None:
    """``{key: value}``, or ``{key: {"absent": true}}`` for a key expected to have no
    value, into a request's ``expect`` map."""
    checked = {
        key: ABSENT if _absent(value) else exact({key: value})[key] for key, value in expect.items()
    }
    expectations_to_proto(checked, out)


def _absent(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"absent"} and value["absent"] is True


def version_ref(ref: Ref | None, what: str) -> tuple[int, str]:
    """(number, label) for a version named by number or label; (0, "") for none."""
    if ref is None:
        return 0, ""
    if isinstance(ref, int):
        number = ref
    elif ref.isascii() and ref.isdigit():
        number = int(ref)
    else:
        try:
            SemVer.parse(ref)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{what}: {exc.message}; or a version number such as 3") from None
        return 0, ref
    if not 0 <= number <= INT64_MAX:
        raise InvalidArgument(f"{what}: version {number} is out of range")
    return number, ""


# -- applications --------------------------------------------------------------------


class Option(Body):
    """One schema option, as `GET /applications/{app}` shows it."""

    type: str
    default: Any = None  # null or absent: no default
    description: str = ""
    secret: bool = False


def schema_proto(schema: Mapping[str, Option]) -> dict[str, types_pb2.OptionSchema]:
    out = {}
    for key, option in schema.items():
        message = types_pb2.OptionSchema(
            type=option.type, description=option.description, secret=option.secret
        )
        if option.default is not None:
            message.default.CopyFrom(to_value(exact({key: option.default})[key]))
        out[key] = message
    return out


class CreateApplication(Body):
    name: str
    charm: str = ""
    schema_: dict[str, Option] = Field(default_factory=dict, alias="schema")
    open: bool = False
    settings: Values = Field(default_factory=dict)
    units: Int32 = 0
    reason: str = ""
    metadata: Values = Field(default_factory=dict)

    def proto(self, created_by: str) -> Message:
        return cpb.CreateApplicationRequest(
            name=self.name,
            charm=self.charm,
            schema=schema_proto(self.schema_),
            open=self.open,
            settings=values_struct(self.settings),
            units=self.units,
            reason=self.reason,
            metadata=metadata_struct(self.metadata),
            created_by=created_by,
        )


class UpdateApplication(Body):
    charm: str | None = None
    schema_: dict[str, Option] | None = Field(None, alias="schema")

    def proto(self, name: str) -> Message:
        out = cpb.UpdateApplicationRequest(name=name)
        if self.charm is not None:
            out.charm = self.charm
        if self.schema_ is not None:
            out.replace_schema = True
            for key, option in schema_proto(self.schema_).items():
                out.schema[key].CopyFrom(option)
        return out


class SetConfig(Body):
    set: Values = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    replace: bool = False
    expect: Values = Field(default_factory=dict)
    expected_version: Int64 | None = None
    reason: str = ""
    metadata: Values = Field(default_factory=dict)

    def proto(self, application: str, created_by: str) -> Message:
        out = cpb.SetConfigRequest(
            application=application,
            set=values_struct(self.set),
            unset=self.unset,
            replace=self.replace,
            reason=self.reason,
            metadata=metadata_struct(self.metadata),
            created_by=created_by,
        )
        if self.expected_version is not None:
            out.expected_version = self.expected_version
        expectations(self.expect, out.expect)
        return out


class PatchConfig(Body):
    key: str
    diff: str
    branch: str = ""
    expected_version: Int64 | None = None
    reason: str = ""
    metadata: Values = Field(default_factory=dict)

    def proto(self, application: str, created_by: str) -> Message:
        out = cpb.PatchConfigRequest(
            application=application,
            key=self.key,
            diff=self.diff,
            branch=self.branch,
            reason=self.reason,
            metadata=metadata_struct(self.metadata),
            created_by=created_by,
        )
        if self.expected_version is not None:
            out.expected_version = self.expected_version
        return out


class AddUnits(Body):
    count: Int32 = 0
    names: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)  # every new unit starts with them

    def proto(self, application: str) -> Message:
        return cpb.AddUnitsRequest(
            application=application, count=self.count, names=self.names, labels=self.labels
        )


class LabelUnit(Body):
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)  # keys to take off

    def proto(self, unit: str) -> Message:
        return cpb.LabelUnitRequest(unit=unit, set=self.set, remove=self.remove)


class ReportApplied(Body):
    hash: str
    ok: bool
    message: str = ""

    def proto(self, unit: str) -> Message:
        return agent_pb2.ReportAppliedRequest(
            unit=unit, hash=self.hash, ok=self.ok, message=self.message
        )


# -- branches ------------------------------------------------------------------------


class AddBranch(Body):
    name: str
    expires_in_seconds: Int64 = 0  # the server aborts it this long after (0: never)

    def proto(self, created_by: str) -> Message:
        return cpb.AddBranchRequest(
            name=self.name, created_by=created_by, expires_in_seconds=self.expires_in_seconds
        )


class Track(Body):
    units: list[str] = Field(default_factory=list)
    applications: list[str] = Field(default_factory=list)  # whole applications, later units too
    count: Int32 = 0  # with application: this many of its units
    application: str = ""
    # With application: a stable cohort of about `percent` % of the units `selector`
    # matches (`selector` alone: all of them).
    percent: float = 0
    selector: str = ""

    def proto(self, branch: str) -> Message:
        return cpb.TrackBranchRequest(
            branch=branch,
            units=self.units,
            applications=self.applications,
            count=self.count,
            application=self.application,
            percent=self.percent,
            selector=self.selector,
        )


class Untrack(Body):
    units: list[str] = Field(default_factory=list)
    applications: list[str] = Field(default_factory=list)

    def proto(self, branch: str) -> Message:
        return cpb.UntrackBranchRequest(
            branch=branch, units=self.units, applications=self.applications
        )


class SetBranchConfig(Body):
    set: Values = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    expect: Values = Field(default_factory=dict)

    def proto(self, branch: str, application: str) -> Message:
        out = cpb.SetBranchConfigRequest(
            branch=branch, application=application, set=values_struct(self.set), unset=self.unset
        )
        expectations(self.expect, out.expect)
        return out


class Commit(Body):
    force: bool = False
    require_applied: bool = False
    reason: str = ""
    metadata: Values = Field(default_factory=dict)

    def proto(self, branch: str, created_by: str) -> Message:
        return cpb.CommitBranchRequest(
            branch=branch,
            force=self.force,
            require_applied=self.require_applied,
            reason=self.reason,
            metadata=metadata_struct(self.metadata),
            created_by=created_by,
        )


class Abort(Body):
    force: bool = False


class Rebase(Body):
    keys: list[str] = Field(default_factory=list)  # empty: every staged key
    applications: list[str] = Field(default_factory=list)  # empty: every staged application

    def proto(self, branch: str) -> Message:
        return cpb.RebaseBranchRequest(name=branch, keys=self.keys, applications=self.applications)


# -- history -------------------------------------------------------------------------


class Compare(Body):
    from_: Ref = Field(alias="from")
    to: Ref | None = None  # none: the current version

    def proto(self, application: str) -> Message:
        from_version, from_label = version_ref(self.from_, "from")
        to_version, to_label = version_ref(self.to, "to")
        return history_pb2.DiffVersionsRequest(
            application=application,
            from_version=from_version,
            from_label=from_label,
            to_version=to_version,
            to_label=to_label,
        )


class Rollback(Body):
    to: Ref
    expected_version: Int64 | None = None
    reason: str = ""
    metadata: Values = Field(default_factory=dict)

    def proto(self, application: str, created_by: str) -> Message:
        number, label = version_ref(self.to, "to")
        out = history_pb2.RollbackRequest(
            application=application,
            to_version=number,
            to_label=label,
            reason=self.reason,
            metadata=metadata_struct(self.metadata),
            created_by=created_by,
        )
        if self.expected_version is not None:
            out.expected_version = self.expected_version
        return out


class Increment(Body):
    part: str  # major | minor | patch
    version: Ref | None = None  # none: the current version

    def proto(self, application: str) -> Message:
        number, label = version_ref(self.version, "version")
        return history_pb2.BumpVersionRequest(
            application=application, part=self.part, version=number, version_label=label
        )


class Tag(Body):
    label: str


class Revert(Body):
    force: bool = False
    reason: str = ""


# -- tokens --------------------------------------------------------------------------


class CreateToken(Body):
    role: str  # admin | controller | observer | agent
    unit: str = ""  # agent tokens: the unit (APP/N) they are bound to
    name: str = ""
    description: str = ""
    expires_in_seconds: Int64 = 0  # 0: never expires

    def proto(self) -> Message:
        return tokens_pb2.CreateTokenRequest(
            role=self.role,
            unit=self.unit,
            name=self.name,
            description=self.description,
            expires_in_seconds=self.expires_in_seconds,
        )
