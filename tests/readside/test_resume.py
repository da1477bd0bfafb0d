"""Resume state and error classification (`genconf.readside.resume`): pure, no mongod."""

from __future__ import annotations

import pytest
from bson import Timestamp
from pymongo.errors import AutoReconnect, NetworkTimeout, NotPrimaryError, OperationFailure

from genconf.readside.resume import (
    AfterClusterTime,
    Recovery,
    ResumeToken,
    is_resumable,
    recovery_for,
    token_revision,
)

TOKEN = {"_data": "8265F1A2B3000000012B0229296E04"}


@pytest.mark.parametrize(
    ("error", "recovery"),
    [
        (AutoReconnect("connection reset"), Recovery.RESUME),
        (NetworkTimeout("timed out"), Recovery.RESUME),
        (NotPrimaryError("not primary"), Recovery.RESUME),
        (OperationFailure("interrupted", code=11601), Recovery.RESUME),
        (OperationFailure("history lost", code=286), Recovery.RELOAD),
        (OperationFailure("invalidated by a drop", code=280), Recovery.RELOAD),
        (OperationFailure("bad token", code=260), Recovery.RELOAD),
        (OperationFailure("capped position lost", code=136), Recovery.RELOAD),
        (OperationFailure("the resume token was not found", code=1), Recovery.RELOAD),
        (OperationFailure("too large", code=10334), Recovery.SKIP_UNREADABLE),
        (
            OperationFailure("too large", code=1, details={"codeName": "BSONObjectTooLarge"}),
            Recovery.SKIP_UNREADABLE,
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Recovery) else type(v).__name__,
)
def test_recovery_for(error: BaseException, recovery: Recovery) -> None:
    assert recovery_for(error) is recovery
    assert is_resumable(error) == (recovery is Recovery.RESUME)


def test_a_resume_point_is_what_the_next_open_is_given() -> None:
    assert ResumeToken(TOKEN).open_options() == {"resume_after": TOKEN}
    after = AfterClusterTime(Timestamp(1_700_000_000, 7))
    assert after.open_options() == {"start_at_operation_time": Timestamp(1_700_000_000, 8)}
    assert ResumeToken(TOKEN) == ResumeToken(dict(TOKEN))  # a value, compared as one


def test_token_revision_reads_the_cluster_time() -> None:
    assert token_revision(TOKEN) == (0x65F1A2B3 << 32) | 1
    assert token_revision(None) is None
    assert token_revision({"_data": "not a token"}) is None
