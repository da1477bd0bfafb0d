"""Export and import of a model: applications with their whole history, as the
records of `genconf.domain.transfer` (docs/export-format.md).

Export (`genconf.store.transfer_export`) reads at one snapshot and streams;
import (`genconf.store.transfer_import`) stages and checks the whole stream
before it writes, then writes in a few transactions whose commits feed the
change stream like any other write.
"""

from __future__ import annotations

from genconf.store.transfer_export import TransferExport
from genconf.store.transfer_import import ImportStep, TransferImport

__all__ = ["ImportStep", "TransferWrites"]


class TransferWrites(TransferExport, TransferImport):
    """Export (reads) and import (writes) of applications, units, branches and history."""
