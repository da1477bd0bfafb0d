"""Export and import of a model: applications with their whole history, as records."""

from __future__ import annotations

from genconf.store.core import StoreCore


class TransferWrites(StoreCore):
    """Export (reads) and import (writes) of applications, units, branches and history."""
