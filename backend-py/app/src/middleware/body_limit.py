"""Request bodies: a size limit (413) and JSON only (415), as plain ASGI middleware.

Every request body is at most ``MAX_REQUEST_BYTES``, except a multipart upload
to an upload route (``POST /api/documents``): its whole body is at most
``MAX_UPLOAD_BYTES`` plus room for the form's other fields and boundaries (the
controller checks the file itself against ``MAX_UPLOAD_BYTES``). A declared
``Content-Length`` over the limit is refused before anything is read; a body
without one (chunked) is counted while the app reads it and refused as soon as
it passes the limit, so neither memory nor the upload's temporary file can grow
past it.

The API reads JSON bodies only (and multipart on the upload routes): a body of
another media type is refused with 415 instead of FastAPI's 422 "Input should
be a valid dictionary", which tells the client nothing about the real mistake.
"""

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.domain.errors import (
    BadRequestError,
    DomainError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from src.middleware.error_handlers import RequestBodyTooLarge, error_response

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
        max_request_bytes: int,
        max_upload_bytes: int,
        upload_routes: frozenset[tuple[str, str]] = UPLOAD_ROUTES,
    ) -> None:
        """Wrap ``app``.

        Args:
            app: The ASGI app.
            max_request_bytes: The largest body of any request.
            max_upload_bytes: The largest file of a multipart upload.
            upload_routes: The (method, path) pairs that take multipart uploads.
        """
        self.app = app
        self.upload_routes = upload_routes
        self._request_limit = _Limit(
            max_request_bytes,
            f"request bodies are limited to {max_request_bytes} bytes",
        )
        self._upload_limit = _Limit(
            max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
            f"files are limited to {max_upload_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = _BodyHeaders.of(scope)
        upload_route = (method, scope["path"]) in self.upload_routes
        is_upload = upload_route and headers.media_type == _MULTIPART
        limit = self._upload_limit if is_upload else self._request_limit
        try:
            has_body = _check(method, headers, limit, upload_route=upload_route)
        except DomainError as exc:
            await error_response(exc.status_code, exc.body())(scope, receive, send)
            return
        if has_body or method in _METHODS_WITH_BODY:
            receive = _counting(receive, limit)
        await self.app(scope, receive, send)


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


def _counting(receive: Receive, limit: _Limit) -> Receive:
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        event = await receive()
        if event["type"] == "http.request":
            received += len(event.get("body", b""))
            if received > limit.bytes:
                raise RequestBodyTooLarge(limit.message)
        return event

    return receive_within_limit
