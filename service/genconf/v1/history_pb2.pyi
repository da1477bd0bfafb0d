import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from genconf.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListVersionsRequest(_message.Message):
    __slots__ = ("application", "limit", "since_version", "before_version")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    application: str
    limit: int
    since_version: int
    before_version: int
    def __init__(self, application: _Optional[str] = ..., limit: _Optional[int] = ..., since_version: _Optional[int] = ..., before_version: _Optional[int] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "more", "current_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_types_pb2.Version]
    more: bool
    current_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[_types_pb2.Version, _Mapping]]] = ..., more: _Optional[bool] = ..., current_version: _Optional[int] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("application", "version", "label")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    label: str
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class LatestVersionRequest(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: str
    def __init__(self, application: _Optional[str] = ...) -> None: ...

class LatestVersionResponse(_message.Message):
    __slots__ = ("application", "version", "label", "label_version")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    label: str
    label_version: int
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., label_version: _Optional[int] = ...) -> None: ...

class DiffVersionsRequest(_message.Message):
    __slots__ = ("application", "from_version", "to_version", "from_label", "to_label")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_LABEL_FIELD_NUMBER: _ClassVar[int]
    TO_LABEL_FIELD_NUMBER: _ClassVar[int]
    application: str
    from_version: int
    to_version: int
    from_label: str
    to_label: str
    def __init__(self, application: _Optional[str] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ..., from_label: _Optional[str] = ..., to_label: _Optional[str] = ...) -> None: ...

class DiffVersionsResponse(_message.Message):
    __slots__ = ("application", "from_version", "to_version", "entries", "secret_keys", "from_label", "to_label", "added", "removed", "changed", "summary")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEYS_FIELD_NUMBER: _ClassVar[int]
    FROM_LABEL_FIELD_NUMBER: _ClassVar[int]
    TO_LABEL_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    application: str
    from_version: int
    to_version: int
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.DiffEntry]
    secret_keys: _containers.RepeatedScalarFieldContainer[str]
    from_label: str
    to_label: str
    added: int
    removed: int
    changed: int
    summary: str
    def __init__(self, application: _Optional[str] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[_types_pb2.DiffEntry, _Mapping]]] = ..., secret_keys: _Optional[_Iterable[str]] = ..., from_label: _Optional[str] = ..., to_label: _Optional[str] = ..., added: _Optional[int] = ..., removed: _Optional[int] = ..., changed: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("application", "to_version", "expected_version", "reason", "created_by", "to_label", "metadata")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    TO_LABEL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    application: str
    to_version: int
    expected_version: int
    reason: str
    created_by: str
    to_label: str
    metadata: _struct_pb2.Struct
    def __init__(self, application: _Optional[str] = ..., to_version: _Optional[int] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., to_label: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TagVersionRequest(_message.Message):
    __slots__ = ("application", "version", "label", "version_label")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_LABEL_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    label: str
    version_label: str
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., version_label: _Optional[str] = ...) -> None: ...

class BumpVersionRequest(_message.Message):
    __slots__ = ("application", "part", "version", "version_label")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_LABEL_FIELD_NUMBER: _ClassVar[int]
    application: str
    part: str
    version: int
    version_label: str
    def __init__(self, application: _Optional[str] = ..., part: _Optional[str] = ..., version: _Optional[int] = ..., version_label: _Optional[str] = ...) -> None: ...

class LabelResponse(_message.Message):
    __slots__ = ("application", "version", "label", "revision")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    application: str
    version: int
    label: str
    revision: int
    def __init__(self, application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class KeyHistoryRequest(_message.Message):
    __slots__ = ("application", "key", "limit", "before_version", "before_label")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_LABEL_FIELD_NUMBER: _ClassVar[int]
    application: str
    key: str
    limit: int
    before_version: int
    before_label: str
    def __init__(self, application: _Optional[str] = ..., key: _Optional[str] = ..., limit: _Optional[int] = ..., before_version: _Optional[int] = ..., before_label: _Optional[str] = ...) -> None: ...

class KeyHistoryEntry(_message.Message):
    __slots__ = ("version", "has_value", "value", "is_default", "created_by", "timestamp", "reason", "generation", "secret")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    version: int
    has_value: bool
    value: _struct_pb2.Value
    is_default: bool
    created_by: str
    timestamp: _timestamp_pb2.Timestamp
    reason: str
    generation: int
    secret: bool
    def __init__(self, version: _Optional[int] = ..., has_value: _Optional[bool] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., is_default: _Optional[bool] = ..., created_by: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., generation: _Optional[int] = ..., secret: _Optional[bool] = ...) -> None: ...

class KeyHistoryResponse(_message.Message):
    __slots__ = ("application", "key", "entries", "more")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    application: str
    key: str
    entries: _containers.RepeatedCompositeFieldContainer[KeyHistoryEntry]
    more: bool
    def __init__(self, application: _Optional[str] = ..., key: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[KeyHistoryEntry, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class ListGenerationsRequest(_message.Message):
    __slots__ = ("limit", "since", "application", "before")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    limit: int
    since: int
    application: str
    before: int
    def __init__(self, limit: _Optional[int] = ..., since: _Optional[int] = ..., application: _Optional[str] = ..., before: _Optional[int] = ...) -> None: ...

class ListGenerationsResponse(_message.Message):
    __slots__ = ("generations", "more")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[_types_pb2.Generation]
    more: bool
    def __init__(self, generations: _Optional[_Iterable[_Union[_types_pb2.Generation, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class GetGenerationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class RevertGenerationRequest(_message.Message):
    __slots__ = ("id", "force", "reason", "created_by", "application", "version", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    force: bool
    reason: str
    created_by: str
    application: str
    version: int
    label: str
    def __init__(self, id: _Optional[int] = ..., force: _Optional[bool] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., application: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...
