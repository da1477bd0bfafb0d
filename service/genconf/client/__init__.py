"""The Python client: `Client` (async) and `SyncClient` (blocking), same method names.

It stands alone: importing it loads no pymongo and no server module (tests/test_layers.py).
"""

from genconf.client.core import Client, Config, SyncClient, WriteResult
from genconf.errors import ClientError, TooOld

__all__ = ["Client", "ClientError", "Config", "SyncClient", "TooOld", "WriteResult"]
