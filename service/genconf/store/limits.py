"""Size limits checked where a document is written, so no change event outgrows MongoDB.

A change event carries the document after the write (``fullDocument``) and, for
an update, the fields it set (``updateDescription``); MongoDB refuses to return
an event over 16 MB, and a stream that meets one cannot move past it. Each
document genconf writes is therefore bounded so that its largest event stays
well under 16 MB:

    application  <= MAX_APPLICATION_BYTES   event <= 2x (post-image + $set settings)
    branch       <= MAX_BRANCH_BYTES        event <= 2x
    generation   <= MAX_GENERATION_BYTES    event  = 1x (inserted once, never updated)
    version      settings of one application, so <= MAX_APPLICATION_BYTES

Free text (reasons, names) is bounded too: it is stored in every version and
generation, and travels in every feed message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import bson

from genconf.errors import InvalidArgument

MIB: Final = 1024 * 1024
MAX_APPLICATION_BYTES: Final = 4 * MIB
MAX_BRANCH_BYTES: Final = 4 * MIB
MAX_GENERATION_BYTES: Final = 12 * MIB
MAX_REASON_CHARS: Final = 1024
MAX_NAME_CHARS: Final = 256  # created_by (charm names: domain.names, 63)
MAX_DESCRIPTION_CHARS: Final = 1024  # a schema option's description


def bson_size(doc: Mapping[str, Any]) -> int:
    return len(bson.encode(doc))


def check_document(what: str, doc: Mapping[str, Any], limit: int, advice: str) -> None:
    """Refuse a document that would be larger than ``limit`` bytes as BSON."""
    size = bson_size(doc)
    if size > limit:
        mib = f" ({limit // MIB} MiB)" if limit % MIB == 0 else ""
        raise InvalidArgument(
            f"{what} would be {size:,} bytes; the limit is {limit:,} bytes{mib}. {advice}"
        )


def check_text(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} is {len(value):,} characters; the limit is {limit:,}: shorten it"
        )
    return value
