"""Request limits as plain ASGI middleware: headers, body size, time and type.

Headers over their limit are 431, a body over its size 413, one that does not
arrive in time 408, and a body that is not JSON 415.

Headers together (names, values and the target) are at most
``MAX_HEADER_BYTES``; the served app refuses them earlier still, while they
arrive (:mod:`src.infra.http_protocol`).

Every request body is at most ``MAX_REQUEST_BYTES``, except a multipart upload
to an upload route (``POST /api/documents``): its whole body is at most
``MAX_UPLOAD_BYTES`` plus room for the form's other fields and boundaries (the
controller checks the file itself against ``MAX_UPLOAD_BYTES``). A declared
``Content-Length`` over the limit is refused before anything is read; a body
without one (chunked) is counted while it is read and refused as soon as it
passes the limit.

The whole body is read here, before the app sees the request, and must arrive
within ``BODY_READ_TIMEOUT_S`` (else 408). So a route's dependencies (the
request's transaction among them) run only once its body is in memory: a
client that trickles its body holds a socket, never a pooled connection.

The API reads JSON bodies only (and multipart on the upload routes): a body of
another media type is refused with 415 instead of FastAPI's 422 "Input should
be a valid dictionary", which tells the client nothing about the real mistake.
"""

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.domain.errors import (
    BadRequestError,
    DomainError,
    HeadersTooLargeError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)
from src.middleware.error_handlers import error_response
from src.settings import Settings

MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Room for an upload's form fields and part headers beside the file."""

UPLOAD_ROUTES = frozenset({("POST", "/api/documents")})
"""The routes (method, path) that take a ``multipart/form-data`` file upload."""

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class _BodyHeaders:
    content_length: str | None
    media_type: str
    chunked: bool

    @classmethod
    def of(cls, scope: Scope) -> "_BodyHeaders":
        values = {
            name: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"content-length", b"content-type", b"transfer-encoding")
        }
        media_type = values.get(b"content-type", "").split(";")[0].strip().lower()
        return cls(
            content_length=values.get(b"content-length"),
            media_type=media_type,
            chunked=b"transfer-encoding" in values,
        )


def is_json(media_type: str) -> bool:
    """Whether FastAPI parses a body of this media type as JSON."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


@dataclass(frozen=True)
class _Limit:
    bytes: int
    message: str


class RequestBodyMiddleware:
    """Enforces the body size limits and the JSON-only rule (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        upload_routes: frozenset[tuple[str, str]] = UPLOAD_ROUTES,
    ) -> None:
        """Wrap ``app``.

        Args:
            app: The ASGI app.
            settings: The limits: ``MAX_REQUEST_BYTES``, ``MAX_UPLOAD_BYTES``,
                ``MAX_HEADER_BYTES`` and ``BODY_READ_TIMEOUT_S``.
            upload_routes: The (method, path) pairs that take multipart uploads.
        """
        self.app = app
        self.upload_routes = upload_routes
        self.max_header_bytes = settings.max_header_bytes
        self.body_read_timeout_s = settings.body_read_timeout_s
        self._request_limit = _Limit(
            settings.max_request_bytes,
            f"request bodies are limited to {settings.max_request_bytes} bytes",
        )
        self._upload_limit = _Limit(
            settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
            f"files are limited to {settings.max_upload_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        try:
            _check_header_size(scope, self.max_header_bytes)
            headers = _BodyHeaders.of(scope)
            upload_route = (method, scope["path"]) in self.upload_routes
            is_upload = upload_route and headers.media_type == _MULTIPART
            limit = self._upload_limit if is_upload else self._request_limit
            has_body = _check(method, headers, limit, upload_route=upload_route)
            if has_body or method in _METHODS_WITH_BODY:
                body = await _read_body(receive, limit, self.body_read_timeout_s)
                if body is None:
                    return  # the client went away: nobody to answer
                receive = _replaying(body, receive)
        except DomainError as exc:
            await _refuse(exc, scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _refuse(exc: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the error and close: the rest of the request is not read."""
    headers = {**exc.headers, "Connection": "close"}
    await error_response(exc.status_code, exc.body(), headers)(scope, receive, send)


def _check_header_size(scope: Scope, max_bytes: int) -> None:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
    size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > max_bytes:
        raise HeadersTooLargeError(f"request headers are limited to {max_bytes} bytes")


def _check(
    method: str, headers: _BodyHeaders, limit: _Limit, *, upload_route: bool
) -> bool:
    """Whether the request has a body; raises when it is refused up front."""
    declared = _declared_length(headers.content_length)
    if declared is not None and declared > limit.bytes:
        raise PayloadTooLargeError(limit.message)
    has_body = (declared or 0) > 0 or (declared is None and headers.chunked)
    if has_body and method in _METHODS_WITH_BODY:
        _check_media_type(headers.media_type, is_upload_route=upload_route)
    return has_body


def _declared_length(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise BadRequestError("Content-Length must be a non-negative integer")
    return int(digits)


def _check_media_type(media_type: str, *, is_upload_route: bool) -> None:
    if is_json(media_type):
        return
    if is_upload_route:
        if media_type == _MULTIPART:
            return
        raise UnsupportedMediaTypeError(
            "send application/json or a multipart/form-data file upload"
        )
    shown = media_type or "no Content-Type"
    raise UnsupportedMediaTypeError(f"send the body as application/json (got {shown})")


async def _read_body(receive: Receive, limit: _Limit, timeout_s: float) -> bytes | None:
    """The whole body, or None when the client disconnects first.

    Raises:
        PayloadTooLargeError: The body passed ``limit``.
        RequestTimeoutError: The body did not arrive within ``timeout_s``.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await _collect(receive, limit)
    except TimeoutError as exc:
        raise RequestTimeoutError(
            f"the request body did not arrive within {timeout_s:g} s"
        ) from exc


async def _collect(receive: Receive, limit: _Limit) -> bytes | None:
    chunks: list[bytes] = []
    received = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return None
        chunk = event.get("body", b"")
        received += len(chunk)
        if received > limit.bytes:
            raise PayloadTooLargeError(limit.message)
        chunks.append(chunk)
        if not event.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the read body once, then waits on the client."""
    pending: Message | None = {"type": "http.request", "body": body, "more_body": False}

    async def replay() -> Message:
        nonlocal pending
        if pending is None:
            return await receive()
        event, pending = pending, None
        return event

    return replay
