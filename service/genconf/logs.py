"""Process logging: readable lines on a terminal, or one JSON object per line.

JSON lines (``--log-format json``) are for log shippers: each record carries its
time (UTC, ISO 8601), level, logger, message, and the exception if any. Values
of config keys are never logged anywhere, so secrets cannot leak through logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Final

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_line(
    message: str,
    *,
    level: str = "info",
    logger: str = "genconf",
    created: float | None = None,
    **fields: Any,
) -> str:
    """One JSON log line, as `JsonFormatter` writes them: also for what a server
    prints on stdout (the demo banner, the ready line) and its last error under
    ``--log-format json``, so a log shipper reads every line it gets."""
    at = dt.datetime.fromtimestamp(created, dt.UTC) if created else dt.datetime.now(dt.UTC)
    entry = {
        "time": at.isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
        **fields,
    }
    return json.dumps(entry, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {"exception": self.formatException(record.exc_info)} if record.exc_info else {}
        return json_line(
            record.getMessage(),
            level=record.levelname.lower(),
            logger=record.name,
            created=record.created,
            **extra,
        )


def setup_logging(level: str = "info", fmt: str = "text", *, fallback: int = logging.INFO) -> None:
    """Configure the root logger once, on stderr (stdout stays for command output);
    ``fallback`` is the level when ``level`` names none."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), fallback))
