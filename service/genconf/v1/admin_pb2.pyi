from genconf.v1 import rollout_pb2 as _rollout_pb2
from genconf.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SnapshotResponse(_message.Message):
    __slots__ = ("applications", "units", "branches", "last_generation", "revision", "rollouts")
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    LAST_GENERATION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[_types_pb2.Application]
    units: _containers.RepeatedCompositeFieldContainer[_types_pb2.Unit]
    branches: _containers.RepeatedCompositeFieldContainer[_types_pb2.Branch]
    last_generation: int
    revision: int
    rollouts: _containers.RepeatedCompositeFieldContainer[_rollout_pb2.Rollout]
    def __init__(self, applications: _Optional[_Iterable[_Union[_types_pb2.Application, _Mapping]]] = ..., units: _Optional[_Iterable[_Union[_types_pb2.Unit, _Mapping]]] = ..., branches: _Optional[_Iterable[_Union[_types_pb2.Branch, _Mapping]]] = ..., last_generation: _Optional[int] = ..., revision: _Optional[int] = ..., rollouts: _Optional[_Iterable[_Union[_rollout_pb2.Rollout, _Mapping]]] = ...) -> None: ...

class WatchDeltasRequest(_message.Message):
    __slots__ = ("since_revision", "kinds", "applications")
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    since_revision: int
    kinds: _containers.RepeatedScalarFieldContainer[str]
    applications: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, since_revision: _Optional[int] = ..., kinds: _Optional[_Iterable[str]] = ..., applications: _Optional[_Iterable[str]] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("kind", "key", "removed", "application", "unit", "branch", "generation", "rollout")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    key: str
    removed: bool
    application: _types_pb2.Application
    unit: _types_pb2.Unit
    branch: _types_pb2.Branch
    generation: _types_pb2.Generation
    rollout: _rollout_pb2.Rollout
    def __init__(self, kind: _Optional[str] = ..., key: _Optional[str] = ..., removed: _Optional[bool] = ..., application: _Optional[_Union[_types_pb2.Application, _Mapping]] = ..., unit: _Optional[_Union[_types_pb2.Unit, _Mapping]] = ..., branch: _Optional[_Union[_types_pb2.Branch, _Mapping]] = ..., generation: _Optional[_Union[_types_pb2.Generation, _Mapping]] = ..., rollout: _Optional[_Union[_rollout_pb2.Rollout, _Mapping]] = ...) -> None: ...

class DeltaBatch(_message.Message):
    __slots__ = ("revision", "deltas")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    revision: int
    deltas: _containers.RepeatedCompositeFieldContainer[Delta]
    def __init__(self, revision: _Optional[int] = ..., deltas: _Optional[_Iterable[_Union[Delta, _Mapping]]] = ...) -> None: ...
