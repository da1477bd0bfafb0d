"""The Python client: `Client` (async) and `SyncClient` (blocking), same method names.

    channel.py   the channel: TLS, bearer token, replicas behind one target
    status.py    a gRPC status -> ClientError or its typed subclass (one place)
    requests.py  values checked and encoded for requests
    results.py   Config (WriteResult is the domain's: genconf.domain.results)
    aio.py       the async Client
    transfer.py  export and import (mixed into Client)
    sync.py      the blocking SyncClient

It stands alone: importing it loads no pymongo and no server module (tests/test_layers.py).
"""

from genconf.client.aio import Client
from genconf.client.results import Config
from genconf.client.sync import SyncClient
from genconf.domain.results import WriteResult
from genconf.domain.values import ABSENT
from genconf.errors import ClientError, TooOld

__all__ = [
    "ABSENT",  # in an `expect`: the key has no value
    "Client",
    "ClientError",
    "Config",
    "SyncClient",
    "TooOld",
    "WriteResult",
]
