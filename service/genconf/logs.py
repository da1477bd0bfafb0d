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
from typing import Final

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", *, fallback: int = logging.INFO) -> None:
    """Configure the root logger once, on stderr (stdout stays for command output);
    ``fallback`` is the level when ``level`` names none."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), fallback))
