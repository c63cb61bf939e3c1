"""One error format for the whole API: ``{"error", "message", "request_id"}``."""

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import (
    DBAPIError,
    EmulatedDBAPIException,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.domain.errors import AuthenticationError, DomainError
from src.infra.db_client import UNAVAILABLE_SQLSTATE_CLASSES
from src.infra.logging import request_id_var
from src.middleware.auth_middleware import bearer_token

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response (documented on every route).

    Attributes:
        error: A stable machine-readable code (``not_found``, ``rate_limited``).
        message: A sentence for people.
        request_id: The ``X-Request-ID`` of the request, for the logs.
        detail: The invalid fields, on validation errors.
    """

    error: str
    message: str
    request_id: str | None
    detail: list[dict[str, Any]] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused"},
    "5XX": {"model": ErrorBody, "description": "A dependency failed, or a bug"},
}
"""The error responses every route may give, for the OpenAPI document."""


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
    message = str(exc.detail)
    if exc.__cause__ is not None:
        message = _BODY_FAILURES.get(type(exc.__cause__), message)
    return error_response(
        exc.status_code,
        {"error": phrase.lower().replace(" ", "_"), "message": message},
        dict(exc.headers or {}),
    )


_BODY_FAILURES: dict[type[BaseException], str] = {
    UnicodeDecodeError: "The body is not valid UTF-8.",
    RecursionError: "The JSON body nests too deeply.",
}
"""Why FastAPI could not read a JSON body, for its generic 400."""


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


def means_unavailable(sqlstate: object) -> bool:
    """Whether a SQLSTATE says the database cannot serve now (not a bug)."""
    return isinstance(sqlstate, str) and sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES


FOREIGN_KEY_VIOLATION = "23503"


def _sqlstate(exc: Exception) -> object:
    cause = getattr(exc, "orig", None) or exc
    return getattr(exc, "sqlstate", None) or getattr(cause, "sqlstate", None)


async def _deleted_caller(request: Request, exc: Exception) -> JSONResponse | None:
    """401 "unknown user" when a foreign-key violation is the caller's deletion.

    The API trusts a known user's id for a while (``KnownUserCache``); a user
    deleted meanwhile makes their next write refer to a missing row. Only then
    is the caller looked up again (one round trip, on this error only).
    """
    if _sqlstate(exc) != FOREIGN_KEY_VIOLATION:
        return None
    state = request.app.state
    try:
        token = bearer_token(request.headers.get("authorization"))
        user = await state.token_verifier.verify(token)
        await state.current_user_gateway.recheck(user.id)
    except AuthenticationError as refused:
        return await handle_domain_error(request, refused)
    except DomainError:
        return None  # no valid caller: the violation is not about them
    return None


async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Connection-level driver errors are 503; anything else is a bug (500)."""
    assert isinstance(exc, DBAPIError)  # noqa: S101
    if deleted := await _deleted_caller(request, exc):
        return deleted
    if (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or means_unavailable(getattr(exc.orig, "sqlstate", None))
    ):
        return await handle_database_unavailable(request, exc)
    return await handle_unexpected_error(request, exc)


async def handle_driver_error(request: Request, exc: Exception) -> JSONResponse:
    """The driver's own errors, raised while connecting (SQLAlchemy wraps the rest).

    asyncpg's errors come bare, or in SQLAlchemy's emulated DBAPI errors
    when a connection is taken from the pool outside a session (the chat
    turn's statements). A refused or dropped connection, or a server that is
    starting, recovering or full (``CannotConnectNowError``, SQLSTATE 57P03),
    is 503; anything else is a bug (500).
    """
    if deleted := await _deleted_caller(request, exc):
        return deleted
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError | asyncpg.InterfaceError) or means_unavailable(
        _sqlstate(exc)
    ):
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
    app.add_exception_handler(OSError, handle_driver_error)
    app.add_exception_handler(asyncpg.PostgresError, handle_driver_error)
    app.add_exception_handler(asyncpg.InterfaceError, handle_driver_error)
    app.add_exception_handler(EmulatedDBAPIException, handle_driver_error)
    app.add_exception_handler(Exception, handle_unexpected_error)
