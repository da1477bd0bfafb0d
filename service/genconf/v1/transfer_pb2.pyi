from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportRequest(_message.Message):
    __slots__ = ("applications",)
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, applications: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportRecord(_message.Message):
    __slots__ = ("kind", "json", "continued")
    KIND_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    CONTINUED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    json: str
    continued: bool
    def __init__(self, kind: _Optional[str] = ..., json: _Optional[str] = ..., continued: _Optional[bool] = ...) -> None: ...

class ImportOptions(_message.Message):
    __slots__ = ("renumber_generations",)
    RENUMBER_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    renumber_generations: bool
    def __init__(self, renumber_generations: _Optional[bool] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("options", "record")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    options: ImportOptions
    record: ExportRecord
    def __init__(self, options: _Optional[_Union[ImportOptions, _Mapping]] = ..., record: _Optional[_Union[ExportRecord, _Mapping]] = ...) -> None: ...

class ImportProgress(_message.Message):
    __slots__ = ("applications", "branches", "units", "versions", "generations", "revision", "done", "records", "renumbered_first", "renumbered_last", "ready", "refused")
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    RENUMBERED_FIRST_FIELD_NUMBER: _ClassVar[int]
    RENUMBERED_LAST_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedScalarFieldContainer[str]
    branches: _containers.RepeatedScalarFieldContainer[str]
    units: int
    versions: int
    generations: int
    revision: int
    done: bool
    records: int
    renumbered_first: int
    renumbered_last: int
    ready: bool
    refused: str
    def __init__(self, applications: _Optional[_Iterable[str]] = ..., branches: _Optional[_Iterable[str]] = ..., units: _Optional[int] = ..., versions: _Optional[int] = ..., generations: _Optional[int] = ..., revision: _Optional[int] = ..., done: _Optional[bool] = ..., records: _Optional[int] = ..., renumbered_first: _Optional[int] = ..., renumbered_last: _Optional[int] = ..., ready: _Optional[bool] = ..., refused: _Optional[str] = ...) -> None: ...
