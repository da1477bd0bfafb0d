import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Health(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_UNKNOWN: _ClassVar[Health]
    HEALTH_HEALTHY: _ClassVar[Health]
    HEALTH_UNHEALTHY: _ClassVar[Health]
HEALTH_UNKNOWN: Health
HEALTH_HEALTHY: Health
HEALTH_UNHEALTHY: Health

class OptionSchema(_message.Message):
    __slots__ = ("type", "default", "description", "secret")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    type: str
    default: _struct_pb2.Value
    description: str
    secret: bool
    def __init__(self, type: _Optional[str] = ..., default: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., description: _Optional[str] = ..., secret: _Optional[bool] = ...) -> None: ...

class Application(_message.Message):
    __slots__ = ("name", "charm", "schema", "settings", "effective", "version", "units", "uid")
    class SchemaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: OptionSchema
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[OptionSchema, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHARM_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    name: str
    charm: str
    schema: _containers.MessageMap[str, OptionSchema]
    settings: _struct_pb2.Struct
    effective: _struct_pb2.Struct
    version: int
    units: _containers.RepeatedScalarFieldContainer[str]
    uid: str
    def __init__(self, name: _Optional[str] = ..., charm: _Optional[str] = ..., schema: _Optional[_Mapping[str, OptionSchema]] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., effective: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[int] = ..., units: _Optional[_Iterable[str]] = ..., uid: _Optional[str] = ...) -> None: ...

class AppliedReport(_message.Message):
    __slots__ = ("hash", "ok", "message", "at", "health", "health_message", "health_since")
    HASH_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_SINCE_FIELD_NUMBER: _ClassVar[int]
    hash: str
    ok: bool
    message: str
    at: _timestamp_pb2.Timestamp
    health: Health
    health_message: str
    health_since: _timestamp_pb2.Timestamp
    def __init__(self, hash: _Optional[str] = ..., ok: _Optional[bool] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., health: _Optional[_Union[Health, str]] = ..., health_message: _Optional[str] = ..., health_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Unit(_message.Message):
    __slots__ = ("name", "application", "branch", "applied", "uid", "application_uid", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_UID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    application: str
    branch: str
    applied: AppliedReport
    uid: str
    application_uid: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., application: _Optional[str] = ..., branch: _Optional[str] = ..., applied: _Optional[_Union[AppliedReport, _Mapping]] = ..., uid: _Optional[str] = ..., application_uid: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BranchChange(_message.Message):
    __slots__ = ("key", "op", "value", "has_from")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HAS_FROM_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    key: str
    op: str
    value: _struct_pb2.Value
    has_from: bool
    def __init__(self, key: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., has_from: _Optional[bool] = ..., **kwargs) -> None: ...

class ApplicationChanges(_message.Message):
    __slots__ = ("application", "changes")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    application: str
    changes: _containers.RepeatedCompositeFieldContainer[BranchChange]
    def __init__(self, application: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[BranchChange, _Mapping]]] = ...) -> None: ...

class UnitApplied(_message.Message):
    __slots__ = ("unit", "hash", "applied", "report")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    unit: str
    hash: str
    applied: bool
    report: AppliedReport
    def __init__(self, unit: _Optional[str] = ..., hash: _Optional[str] = ..., applied: _Optional[bool] = ..., report: _Optional[_Union[AppliedReport, _Mapping]] = ...) -> None: ...

class Branch(_message.Message):
    __slots__ = ("name", "created_by", "created_at", "track_applications", "changes", "units", "applied", "on_behalf_of", "authenticated", "cohorts", "expires_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRACK_APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    track_applications: _containers.RepeatedScalarFieldContainer[str]
    changes: _containers.RepeatedCompositeFieldContainer[ApplicationChanges]
    units: _containers.RepeatedScalarFieldContainer[str]
    applied: _containers.RepeatedCompositeFieldContainer[UnitApplied]
    on_behalf_of: str
    authenticated: bool
    cohorts: _containers.RepeatedCompositeFieldContainer[Cohort]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., track_applications: _Optional[_Iterable[str]] = ..., changes: _Optional[_Iterable[_Union[ApplicationChanges, _Mapping]]] = ..., units: _Optional[_Iterable[str]] = ..., applied: _Optional[_Iterable[_Union[UnitApplied, _Mapping]]] = ..., on_behalf_of: _Optional[str] = ..., authenticated: _Optional[bool] = ..., cohorts: _Optional[_Iterable[_Union[Cohort, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Cohort(_message.Message):
    __slots__ = ("application", "percent", "selector")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    application: str
    percent: float
    selector: str
    def __init__(self, application: _Optional[str] = ..., percent: _Optional[float] = ..., selector: _Optional[str] = ...) -> None: ...

class KeyChange(_message.Message):
    __slots__ = ("key", "has_from", "has_to", "to")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HAS_FROM_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    HAS_TO_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    key: str
    has_from: bool
    has_to: bool
    to: _struct_pb2.Value
    def __init__(self, key: _Optional[str] = ..., has_from: _Optional[bool] = ..., has_to: _Optional[bool] = ..., to: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., **kwargs) -> None: ...

class ApplicationKeyChanges(_message.Message):
    __slots__ = ("application", "changes", "secret_keys")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEYS_FIELD_NUMBER: _ClassVar[int]
    application: str
    changes: _containers.RepeatedCompositeFieldContainer[KeyChange]
    secret_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, application: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[KeyChange, _Mapping]]] = ..., secret_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("id", "kind", "branch", "changes", "created_by", "created_at", "reason", "versions", "on_behalf_of", "authenticated", "application_uids")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ApplicationUidsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_UIDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    branch: str
    changes: _containers.RepeatedCompositeFieldContainer[ApplicationKeyChanges]
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    reason: str
    versions: _containers.ScalarMap[str, int]
    on_behalf_of: str
    authenticated: bool
    application_uids: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., branch: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[ApplicationKeyChanges, _Mapping]]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., versions: _Optional[_Mapping[str, int]] = ..., on_behalf_of: _Optional[str] = ..., authenticated: _Optional[bool] = ..., application_uids: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DiffEntry(_message.Message):
    __slots__ = ("path", "kind", "has_old", "old", "has_new", "new", "text_diff")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HAS_OLD_FIELD_NUMBER: _ClassVar[int]
    OLD_FIELD_NUMBER: _ClassVar[int]
    HAS_NEW_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    TEXT_DIFF_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    has_old: bool
    old: _struct_pb2.Value
    has_new: bool
    new: _struct_pb2.Value
    text_diff: str
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., has_old: _Optional[bool] = ..., old: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., has_new: _Optional[bool] = ..., new: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., text_diff: _Optional[str] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("application", "version", "settings", "timestamp", "reason", "created_by", "metadata", "previous_version", "generation", "tags", "on_behalf_of", "authenticated", "secret_keys")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEYS_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    settings: _struct_pb2.Struct
    timestamp: _timestamp_pb2.Timestamp
    reason: str
    created_by: str
    metadata: _struct_pb2.Struct
    previous_version: int
    generation: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    on_behalf_of: str
    authenticated: bool
    secret_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., previous_version: _Optional[int] = ..., generation: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., on_behalf_of: _Optional[str] = ..., authenticated: _Optional[bool] = ..., secret_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("unit", "application", "branch", "config", "config_json", "hash", "app_version", "revision")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    unit: str
    application: str
    branch: str
    config: _struct_pb2.Struct
    config_json: str
    hash: str
    app_version: int
    revision: int
    def __init__(self, unit: _Optional[str] = ..., application: _Optional[str] = ..., branch: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_json: _Optional[str] = ..., hash: _Optional[str] = ..., app_version: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("revision", "generation", "versions", "units", "skipped")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    revision: int
    generation: int
    versions: _containers.ScalarMap[str, int]
    units: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.ScalarMap[str, str]
    def __init__(self, revision: _Optional[int] = ..., generation: _Optional[int] = ..., versions: _Optional[_Mapping[str, int]] = ..., units: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ConflictDetail(_message.Message):
    __slots__ = ("application", "key", "current", "proposed")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    application: str
    key: str
    current: str
    proposed: str
    def __init__(self, application: _Optional[str] = ..., key: _Optional[str] = ..., current: _Optional[str] = ..., proposed: _Optional[str] = ..., **kwargs) -> None: ...

class ExpectedValue(_message.Message):
    __slots__ = ("value", "absent")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ABSENT_FIELD_NUMBER: _ClassVar[int]
    value: _struct_pb2.Value
    absent: bool
    def __init__(self, value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., absent: _Optional[bool] = ...) -> None: ...

class KeyMismatch(_message.Message):
    __slots__ = ("application", "key", "expected", "actual", "branch")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    application: str
    key: str
    expected: str
    actual: str
    branch: str
    def __init__(self, application: _Optional[str] = ..., key: _Optional[str] = ..., expected: _Optional[str] = ..., actual: _Optional[str] = ..., branch: _Optional[str] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("code", "expected_version", "actual_version", "conflicts", "units", "mismatches")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    code: str
    expected_version: int
    actual_version: int
    conflicts: _containers.RepeatedCompositeFieldContainer[ConflictDetail]
    units: _containers.RepeatedScalarFieldContainer[str]
    mismatches: _containers.RepeatedCompositeFieldContainer[KeyMismatch]
    def __init__(self, code: _Optional[str] = ..., expected_version: _Optional[int] = ..., actual_version: _Optional[int] = ..., conflicts: _Optional[_Iterable[_Union[ConflictDetail, _Mapping]]] = ..., units: _Optional[_Iterable[str]] = ..., mismatches: _Optional[_Iterable[_Union[KeyMismatch, _Mapping]]] = ...) -> None: ...
