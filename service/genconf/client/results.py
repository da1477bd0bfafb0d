"""What the client's calls return: a unit's `Config` with exact JSON types (a
write's `WriteResult` is the domain's, `genconf.domain.results`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genconf.v1 import types_pb2
from genconf.wire import from_struct


@dataclass(frozen=True)
class Config:
    """A unit's effective config with exact JSON types."""

    unit: str
    application: str
    branch: str
    config: Mapping[str, Any]
    hash: str
    app_version: int
    revision: int

    @classmethod
    def from_proto(cls, msg: types_pb2.Config) -> Config:
        return cls(
            unit=msg.unit,
            application=msg.application,
            branch=msg.branch,
            config=json.loads(msg.config_json) if msg.config_json else from_struct(msg.config),
            hash=msg.hash,
            app_version=msg.app_version,
            revision=msg.revision,
        )
