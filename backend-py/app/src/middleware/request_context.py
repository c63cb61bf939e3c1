"""Request ids, access logs and the last-resort 500, as plain ASGI middleware."""

import logging
import re
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.infra.logging import request_id_var
from src.middleware.error_handlers import handle_unexpected_error

logger = logging.getLogger("src.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``, taken from the client if sane).

    The id is on every log line written while the request runs, in the
    response header and in error bodies; one access log line is written per
    request. An unhandled exception becomes the project's 500 here, inside the
    request's context, so even that response carries its request id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_ID.match(incoming) else None
        request_id = request_id or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        response = _ResponseSend(send, request_id)
        try:
            await self._run(scope, receive, response)
        finally:
            logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                response.status,
                extra={
                    "status": response.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _run(self, scope: Scope, receive: Receive, send: "_ResponseSend") -> None:
        """Run the app; an exception before the response started is a 500."""
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if send.started:
                raise
            response = await handle_unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


class _ResponseSend:
    """The one ``send`` wrapper of a request (a body chunk passes one layer).

    Adds the request id to the response's headers and notes its status.
    """

    __slots__ = ("request_id", "send", "started", "status")

    def __init__(self, send: Send, request_id: str) -> None:
        self.send = send
        self.request_id = request_id
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        """Send ``message``; the response's start gets the id header."""
        if not self.started and message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self.request_id.encode()))
            message["headers"] = headers
        await self.send(message)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
