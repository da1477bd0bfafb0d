import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from genconf.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutSize(_message.Message):
    __slots__ = ("units", "percent")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    units: int
    percent: float
    def __init__(self, units: _Optional[int] = ..., percent: _Optional[float] = ...) -> None: ...

class StartRolloutRequest(_message.Message):
    __slots__ = ("branch", "application", "steps", "bake_seconds", "max_failed", "on_failure", "commit", "selector", "reason", "created_by")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BAKE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    branch: str
    application: str
    steps: _containers.RepeatedCompositeFieldContainer[RolloutSize]
    bake_seconds: float
    max_failed: RolloutSize
    on_failure: str
    commit: bool
    selector: str
    reason: str
    created_by: str
    def __init__(self, branch: _Optional[str] = ..., application: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RolloutSize, _Mapping]]] = ..., bake_seconds: _Optional[float] = ..., max_failed: _Optional[_Union[RolloutSize, _Mapping]] = ..., on_failure: _Optional[str] = ..., commit: _Optional[bool] = ..., selector: _Optional[str] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("branch", "min_revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    min_revision: int
    def __init__(self, branch: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("application", "min_revision")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    application: str
    min_revision: int
    def __init__(self, application: _Optional[str] = ..., min_revision: _Optional[int] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "revision")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    revision: int
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class PauseRolloutRequest(_message.Message):
    __slots__ = ("branch", "reason", "created_by")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    branch: str
    reason: str
    created_by: str
    def __init__(self, branch: _Optional[str] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ...) -> None: ...

class ResumeRolloutRequest(_message.Message):
    __slots__ = ("branch", "reason", "created_by")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    branch: str
    reason: str
    created_by: str
    def __init__(self, branch: _Optional[str] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ...) -> None: ...

class AbortRolloutRequest(_message.Message):
    __slots__ = ("branch", "reason", "created_by")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    branch: str
    reason: str
    created_by: str
    def __init__(self, branch: _Optional[str] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ...) -> None: ...

class RolloutTransition(_message.Message):
    __slots__ = ("at", "by", "to", "step", "why", "epoch", "tracked")
    AT_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRACKED_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    by: str
    to: str
    step: int
    why: str
    epoch: int
    tracked: int
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., by: _Optional[str] = ..., to: _Optional[str] = ..., step: _Optional[int] = ..., why: _Optional[str] = ..., epoch: _Optional[int] = ..., tracked: _Optional[int] = ..., **kwargs) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("branch", "application", "steps", "bake_seconds", "max_failed", "on_failure", "commit", "selector", "state", "step", "phase", "bake_until", "reason", "failed", "skipped", "transitions", "created_by", "on_behalf_of", "authenticated", "created_at", "updated_at", "note", "tracking", "behind", "candidates", "step_size")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BAKE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    BAKE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    BEHIND_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    application: str
    steps: _containers.RepeatedCompositeFieldContainer[RolloutSize]
    bake_seconds: float
    max_failed: RolloutSize
    on_failure: str
    commit: bool
    selector: str
    state: str
    step: int
    phase: str
    bake_until: _timestamp_pb2.Timestamp
    reason: str
    failed: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.ScalarMap[str, str]
    transitions: _containers.RepeatedCompositeFieldContainer[RolloutTransition]
    created_by: str
    on_behalf_of: str
    authenticated: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    note: str
    tracking: _containers.RepeatedScalarFieldContainer[str]
    behind: _containers.RepeatedScalarFieldContainer[str]
    candidates: int
    step_size: int
    def __init__(self, branch: _Optional[str] = ..., application: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RolloutSize, _Mapping]]] = ..., bake_seconds: _Optional[float] = ..., max_failed: _Optional[_Union[RolloutSize, _Mapping]] = ..., on_failure: _Optional[str] = ..., commit: _Optional[bool] = ..., selector: _Optional[str] = ..., state: _Optional[str] = ..., step: _Optional[int] = ..., phase: _Optional[str] = ..., bake_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., failed: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Mapping[str, str]] = ..., transitions: _Optional[_Iterable[_Union[RolloutTransition, _Mapping]]] = ..., created_by: _Optional[str] = ..., on_behalf_of: _Optional[str] = ..., authenticated: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., tracking: _Optional[_Iterable[str]] = ..., behind: _Optional[_Iterable[str]] = ..., candidates: _Optional[int] = ..., step_size: _Optional[int] = ...) -> None: ...
