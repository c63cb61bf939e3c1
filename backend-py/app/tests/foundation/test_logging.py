import json
import logging
import sys

from src.infra.logging import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    request_id_var,
)


def make_record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "hello %s", ("x",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_request_id_and_extras() -> None:
    token = request_id_var.set("req-1")
    try:
        line = JsonFormatter().format(make_record(status=201))
    finally:
        request_id_var.reset(token)
    payload = json.loads(line)
    assert payload["message"] == "hello x"
    assert payload["request_id"] == "req-1"
    assert payload["status"] == 201
    assert payload["level"] == "INFO"


def test_json_lines_include_exceptions() -> None:
    record = make_record()
    try:
        int("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    payload = json.loads(JsonFormatter().format(record))
    assert "ValueError: invalid literal" in payload["exc_info"]


def test_text_lines_name_the_request() -> None:
    token = request_id_var.set("req-2")
    try:
        line = TextFormatter("%(message)s").format(make_record())
    finally:
        request_id_var.reset(token)
    assert line == "hello x [request_id=req-2]"
    assert TextFormatter("%(message)s").format(make_record()) == "hello x"


def test_one_access_logger_and_no_per_call_client_lines() -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.NullHandler())  # as uvicorn's own config does
    configure_logging("INFO")
    assert not access.hasHandlers()  # uvicorn then writes no access line
    assert logging.getLogger("uvicorn.error").propagate
    for name in ("httpx", "httpx2"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
    configure_logging("DEBUG")
    assert logging.getLogger("httpx2").isEnabledFor(logging.INFO)
    configure_logging("WARNING")
    assert not logging.getLogger("httpx").isEnabledFor(logging.WARNING - 1)
