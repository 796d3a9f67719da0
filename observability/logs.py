"""Log lines: JSON, one object a line, each with the request's correlation id (WATCHWORD_LOG_FORMAT=json, the
default outside demo mode), or the short human-readable lines `make run` prints in demo mode (text).

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, `correlation_id` when the line was logged
for a request, and `exception` when there was one: only what the message already said, nothing more (secrets are
kept out of messages where they are written, never filtered here).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from observability.correlation import current

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation_id = current()
        if correlation_id is not None:
            line["correlation_id"] = correlation_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str, stream: TextIO = sys.stderr) -> None:
    """Send the root logger's lines to `stream` as JSON (`log_format` "json") or as text; replaces its handlers."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
