"""genconf: configuration for fleets of application units.

Data flows one way: store -> change stream -> multiwatcher -> cache -> api.
"""

from genconf.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    GenconfError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unavailable,
    VersionMismatch,
)

__all__ = [
    "AlreadyExists",
    "Conflict",
    "FailedPrecondition",
    "GenconfError",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "Unavailable",
    "VersionMismatch",
]
