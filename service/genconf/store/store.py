"""The `Store`: MongoDB writes and the few direct queries the write side needs.

Every change to the model is one MongoDB transaction. The store is composed of
one mixin per concern over `StoreCore` (`genconf.store.core`), which owns the
database and the transaction plumbing (`genconf.store.mongo`); the documents it
writes are drawn in `genconf.store.documents`.
"""

from __future__ import annotations

from genconf.store.applications import ApplicationWrites
from genconf.store.branches import BranchWrites
from genconf.store.history_writes import HistoryWrites
from genconf.store.labels import LabelWrites
from genconf.store.master import MasterWrites
from genconf.store.reports import ReportWrites
from genconf.store.tokens import TokenWrites
from genconf.store.transfer import TransferWrites


class Store(
    ApplicationWrites,
    MasterWrites,
    BranchWrites,
    LabelWrites,
    HistoryWrites,
    TokenWrites,
    ReportWrites,
    TransferWrites,
):
    """MongoDB writes and the few direct queries the write side needs.

    Each public write runs in one transaction (snapshot read concern, majority
    write concern), validates first and raises a `GenconfError` before writing
    anything, so a rejected request leaves the database unchanged.
    """
