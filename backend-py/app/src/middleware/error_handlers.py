"""One error format for the whole API: ``{"error", "message", "request_id"}``."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.domain.errors import DomainError
from src.infra.logging import request_id_var

logger = logging.getLogger(__name__)


def error_response(
    status_code: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response carrying the request id."""
    return JSONResponse(
        {**body, "request_id": request_id_var.get()},
        status_code=status_code,
        headers=headers,
    )


async def handle_domain_error(_: Request, exc: Exception) -> JSONResponse:
    """Render any :class:`DomainError` with its own status and headers."""
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for this type
    if exc.status_code >= 500:
        logger.warning("dependency failure: %s", exc.message, extra={"code": exc.code})
    return error_response(exc.status_code, exc.body(), exc.headers)


async def handle_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 with the list of invalid fields."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return error_response(
        422,
        {
            "error": "validation_error",
            "message": f"{where}: {first['msg']}" if where else str(first["msg"]),
            "detail": errors,
        },
    )


async def handle_http_error(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (404 route, 405 method) in the same format."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    phrase = HTTPStatus(exc.status_code).phrase
    return error_response(
        exc.status_code,
        {"error": phrase.lower().replace(" ", "_"), "message": str(exc.detail)},
        dict(exc.headers or {}),
    )


async def handle_database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    """503 when the database cannot be reached; nothing was committed."""
    logger.warning("database unavailable: %s", type(exc).__name__)
    return error_response(
        503,
        {
            "error": "database_unavailable",
            "message": "The database is unavailable; try again shortly.",
        },
        {"Retry-After": "5"},
    )


async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Connection-level driver errors are 503; anything else is a bug (500)."""
    assert isinstance(exc, DBAPIError)  # noqa: S101
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return await handle_database_unavailable(request, exc)
    return await handle_unexpected_error(request, exc)


async def handle_unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    """500 without internals; the traceback goes to the log."""
    logger.error("unhandled error", exc_info=exc)
    return error_response(
        500, {"error": "internal_error", "message": "An unexpected error occurred."}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(PoolTimeoutError, handle_database_unavailable)
    app.add_exception_handler(DBAPIError, handle_database_error)
    app.add_exception_handler(Exception, handle_unexpected_error)
