"""Structured logging: one JSON object a line, with the request id on each."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with its ``extra`` fields and the request id."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS:
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """A readable single-line format for terminals, with the request id."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as text."""
        line = super().format(record)
        request_id = request_id_var.get()
        return f"{line} [request_id={request_id}]" if request_id else line


PER_CALL_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2")
"""HTTP clients that log a line per call at INFO (the OpenAI SDK runs on
``httpx2``, Supabase and JWKS fetches on ``httpx``): quiet unless ``LOG_LEVEL``
is ``DEBUG``."""


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send every logger's records to stderr in the chosen format.

    One line per request: ``RequestContextMiddleware`` writes it, so uvicorn's
    own access log stays off (it would add a second), and so do the per-call
    lines of the HTTP client the model providers use, below ``DEBUG``.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn logs access lines only when this logger has a handler somewhere.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    quiet = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in PER_CALL_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
