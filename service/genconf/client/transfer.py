"""The client's calls of TransferService: export and import a model."""

from __future__ import annotations


class TransferCalls:
    """Export and import, mixed into `genconf.client.aio.Client`."""
