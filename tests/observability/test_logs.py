"""Log lines as JSON: one object a line, with the request's correlation id when there is one."""

from __future__ import annotations

import io
import json
import logging

from observability.correlation import correlated
from observability.logs import configure_logging


def test_each_line_is_one_json_object_with_the_requests_correlation_id() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json", stream=out)
        log = logging.getLogger("watchword.test")
        log.info("outside any request")
        with correlated() as turn:
            log.warning("inside a turn: %s", "multi\nline")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("it failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert "correlation_id" not in first and first["message"] == "outside any request"
    assert second == {"time": second["time"], "level": "WARNING", "logger": "watchword.test",
                      "message": "inside a turn: multi\nline", "correlation_id": turn}
    assert third["correlation_id"] == turn and "ValueError: boom" in third["exception"]


def test_text_lines_stay_as_demo_mode_prints_them() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "text", stream=out)
        logging.getLogger("watchword.test").info("hello")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert out.getvalue().rstrip().endswith("INFO watchword.test: hello")
