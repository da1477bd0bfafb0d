from genconf.v1 import types_pb2 as _types_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetConfigRequest(_message.Message):
    __slots__ = ("unit", "min_revision")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    unit: str
    min_revision: int
    def __init__(self, unit: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class WatchConfigRequest(_message.Message):
    __slots__ = ("unit", "known_hash", "min_revision")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_HASH_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    unit: str
    known_hash: str
    min_revision: int
    def __init__(self, unit: _Optional[str] = ..., known_hash: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class Bookmark(_message.Message):
    __slots__ = ("revision", "hash")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    revision: int
    hash: str
    def __init__(self, revision: _Optional[int] = ..., hash: _Optional[str] = ...) -> None: ...

class WatchConfigResponse(_message.Message):
    __slots__ = ("config", "bookmark")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BOOKMARK_FIELD_NUMBER: _ClassVar[int]
    config: _types_pb2.Config
    bookmark: Bookmark
    def __init__(self, config: _Optional[_Union[_types_pb2.Config, _Mapping]] = ..., bookmark: _Optional[_Union[Bookmark, _Mapping]] = ...) -> None: ...

class ReportAppliedRequest(_message.Message):
    __slots__ = ("unit", "hash", "ok", "message", "health", "health_message")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    unit: str
    hash: str
    ok: bool
    message: str
    health: _types_pb2.Health
    health_message: str
    def __init__(self, unit: _Optional[str] = ..., hash: _Optional[str] = ..., ok: _Optional[bool] = ..., message: _Optional[str] = ..., health: _Optional[_Union[_types_pb2.Health, str]] = ..., health_message: _Optional[str] = ...) -> None: ...
