from google.protobuf import struct_pb2 as _struct_pb2
from genconf.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateApplicationRequest(_message.Message):
    __slots__ = ("name", "charm", "schema", "units", "created_by", "settings", "reason", "metadata", "open")
    class SchemaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.OptionSchema
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.OptionSchema, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHARM_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    charm: str
    schema: _containers.MessageMap[str, _types_pb2.OptionSchema]
    units: int
    created_by: str
    settings: _struct_pb2.Struct
    reason: str
    metadata: _struct_pb2.Struct
    open: bool
    def __init__(self, name: _Optional[str] = ..., charm: _Optional[str] = ..., schema: _Optional[_Mapping[str, _types_pb2.OptionSchema]] = ..., units: _Optional[int] = ..., created_by: _Optional[str] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., open: _Optional[bool] = ...) -> None: ...

class UpdateApplicationRequest(_message.Message):
    __slots__ = ("name", "charm", "schema", "replace_schema")
    class SchemaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.OptionSchema
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.OptionSchema, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHARM_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REPLACE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    charm: str
    schema: _containers.MessageMap[str, _types_pb2.OptionSchema]
    replace_schema: bool
    def __init__(self, name: _Optional[str] = ..., charm: _Optional[str] = ..., schema: _Optional[_Mapping[str, _types_pb2.OptionSchema]] = ..., replace_schema: _Optional[bool] = ...) -> None: ...

class RemoveApplicationRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class GetApplicationRequest(_message.Message):
    __slots__ = ("name", "min_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_revision: int
    def __init__(self, name: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class ListApplicationsRequest(_message.Message):
    __slots__ = ("min_revision",)
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    min_revision: int
    def __init__(self, min_revision: _Optional[int] = ...) -> None: ...

class ListApplicationsResponse(_message.Message):
    __slots__ = ("applications", "revision")
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[_types_pb2.Application]
    revision: int
    def __init__(self, applications: _Optional[_Iterable[_Union[_types_pb2.Application, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class AddUnitsRequest(_message.Message):
    __slots__ = ("application", "count", "names", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    application: str
    count: int
    names: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, application: _Optional[str] = ..., count: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RemoveUnitRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LabelUnitRequest(_message.Message):
    __slots__ = ("unit", "set", "remove")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    unit: str
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unit: _Optional[str] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class ListUnitsRequest(_message.Message):
    __slots__ = ("application", "min_revision")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    application: str
    min_revision: int
    def __init__(self, application: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class ListUnitsResponse(_message.Message):
    __slots__ = ("units", "revision")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    units: _containers.RepeatedCompositeFieldContainer[_types_pb2.Unit]
    revision: int
    def __init__(self, units: _Optional[_Iterable[_Union[_types_pb2.Unit, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class SetConfigRequest(_message.Message):
    __slots__ = ("application", "set", "unset", "expected_version", "reason", "created_by", "metadata", "replace", "expect")
    class ExpectEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ExpectedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ExpectedValue, _Mapping]] = ...) -> None: ...
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    UNSET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    application: str
    set: _struct_pb2.Struct
    unset: _containers.RepeatedScalarFieldContainer[str]
    expected_version: int
    reason: str
    created_by: str
    metadata: _struct_pb2.Struct
    replace: bool
    expect: _containers.MessageMap[str, _types_pb2.ExpectedValue]
    def __init__(self, application: _Optional[str] = ..., set: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., unset: _Optional[_Iterable[str]] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., replace: _Optional[bool] = ..., expect: _Optional[_Mapping[str, _types_pb2.ExpectedValue]] = ...) -> None: ...

class PatchConfigRequest(_message.Message):
    __slots__ = ("application", "key", "diff", "branch", "expected_version", "reason", "created_by", "metadata")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    application: str
    key: str
    diff: str
    branch: str
    expected_version: int
    reason: str
    created_by: str
    metadata: _struct_pb2.Struct
    def __init__(self, application: _Optional[str] = ..., key: _Optional[str] = ..., diff: _Optional[str] = ..., branch: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AddBranchRequest(_message.Message):
    __slots__ = ("name", "created_by", "expires_in_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_by: str
    expires_in_seconds: int
    def __init__(self, name: _Optional[str] = ..., created_by: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class TrackBranchRequest(_message.Message):
    __slots__ = ("branch", "units", "applications", "count", "application", "percent", "selector")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    branch: str
    units: _containers.RepeatedScalarFieldContainer[str]
    applications: _containers.RepeatedScalarFieldContainer[str]
    count: int
    application: str
    percent: float
    selector: str
    def __init__(self, branch: _Optional[str] = ..., units: _Optional[_Iterable[str]] = ..., applications: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., application: _Optional[str] = ..., percent: _Optional[float] = ..., selector: _Optional[str] = ...) -> None: ...

class UntrackBranchRequest(_message.Message):
    __slots__ = ("branch", "units", "applications")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    branch: str
    units: _containers.RepeatedScalarFieldContainer[str]
    applications: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, branch: _Optional[str] = ..., units: _Optional[_Iterable[str]] = ..., applications: _Optional[_Iterable[str]] = ...) -> None: ...

class SetBranchConfigRequest(_message.Message):
    __slots__ = ("branch", "application", "set", "unset", "expect")
    class ExpectEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ExpectedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ExpectedValue, _Mapping]] = ...) -> None: ...
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    UNSET_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    branch: str
    application: str
    set: _struct_pb2.Struct
    unset: _containers.RepeatedScalarFieldContainer[str]
    expect: _containers.MessageMap[str, _types_pb2.ExpectedValue]
    def __init__(self, branch: _Optional[str] = ..., application: _Optional[str] = ..., set: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., unset: _Optional[_Iterable[str]] = ..., expect: _Optional[_Mapping[str, _types_pb2.ExpectedValue]] = ...) -> None: ...

class DiffBranchRequest(_message.Message):
    __slots__ = ("branch", "min_revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    min_revision: int
    def __init__(self, branch: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class ApplicationDiff(_message.Message):
    __slots__ = ("application", "entries", "conflicts")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    application: str
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.DiffEntry]
    conflicts: _containers.RepeatedCompositeFieldContainer[_types_pb2.ConflictDetail]
    def __init__(self, application: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[_types_pb2.DiffEntry, _Mapping]]] = ..., conflicts: _Optional[_Iterable[_Union[_types_pb2.ConflictDetail, _Mapping]]] = ...) -> None: ...

class DiffBranchResponse(_message.Message):
    __slots__ = ("branch", "applications", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    applications: _containers.RepeatedCompositeFieldContainer[ApplicationDiff]
    revision: int
    def __init__(self, branch: _Optional[str] = ..., applications: _Optional[_Iterable[_Union[ApplicationDiff, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class CommitBranchRequest(_message.Message):
    __slots__ = ("branch", "force", "created_by", "reason", "metadata", "require_applied")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_APPLIED_FIELD_NUMBER: _ClassVar[int]
    branch: str
    force: bool
    created_by: str
    reason: str
    metadata: _struct_pb2.Struct
    require_applied: bool
    def __init__(self, branch: _Optional[str] = ..., force: _Optional[bool] = ..., created_by: _Optional[str] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., require_applied: _Optional[bool] = ...) -> None: ...

class AbortBranchRequest(_message.Message):
    __slots__ = ("branch", "force")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    force: bool
    def __init__(self, branch: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RebaseBranchRequest(_message.Message):
    __slots__ = ("name", "keys", "applications")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    applications: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., applications: _Optional[_Iterable[str]] = ...) -> None: ...

class DropBranchKeyRequest(_message.Message):
    __slots__ = ("name", "application", "key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    application: str
    key: str
    def __init__(self, name: _Optional[str] = ..., application: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ListBranchesRequest(_message.Message):
    __slots__ = ("min_revision",)
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    min_revision: int
    def __init__(self, min_revision: _Optional[int] = ...) -> None: ...

class ListBranchesResponse(_message.Message):
    __slots__ = ("branches", "revision")
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branches: _containers.RepeatedCompositeFieldContainer[_types_pb2.Branch]
    revision: int
    def __init__(self, branches: _Optional[_Iterable[_Union[_types_pb2.Branch, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetBranchRequest(_message.Message):
    __slots__ = ("name", "min_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_revision: int
    def __init__(self, name: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("application", "min_revision")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    application: str
    min_revision: int
    def __init__(self, application: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class UnitStatus(_message.Message):
    __slots__ = ("unit", "branch", "state", "report")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    unit: str
    branch: str
    state: str
    report: _types_pb2.AppliedReport
    def __init__(self, unit: _Optional[str] = ..., branch: _Optional[str] = ..., state: _Optional[str] = ..., report: _Optional[_Union[_types_pb2.AppliedReport, _Mapping]] = ...) -> None: ...

class BranchInFlight(_message.Message):
    __slots__ = ("branch", "units", "keys")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    branch: str
    units: int
    keys: int
    def __init__(self, branch: _Optional[str] = ..., units: _Optional[int] = ..., keys: _Optional[int] = ...) -> None: ...

class ApplicationStatus(_message.Message):
    __slots__ = ("application", "version", "label", "branches", "current", "behind", "failed", "unreported", "units")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    BEHIND_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    UNREPORTED_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    label: str
    branches: _containers.RepeatedCompositeFieldContainer[BranchInFlight]
    current: int
    behind: int
    failed: int
    unreported: int
    units: _containers.RepeatedCompositeFieldContainer[UnitStatus]
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., branches: _Optional[_Iterable[_Union[BranchInFlight, _Mapping]]] = ..., current: _Optional[int] = ..., behind: _Optional[int] = ..., failed: _Optional[int] = ..., unreported: _Optional[int] = ..., units: _Optional[_Iterable[_Union[UnitStatus, _Mapping]]] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("applications", "revision")
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[ApplicationStatus]
    revision: int
    def __init__(self, applications: _Optional[_Iterable[_Union[ApplicationStatus, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...
