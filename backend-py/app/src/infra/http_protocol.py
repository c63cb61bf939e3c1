"""uvicorn's httptools protocol with bounded request headers (431).

httptools keeps every header in memory and has no limit of its own (h11's
``h11_max_incomplete_event_size`` answers 400). This protocol counts the bytes
of a request's head while they arrive and answers 431 as soon as they pass
``MAX_HEADER_BYTES``, before the app runs. The body-limit middleware checks the
same bound again for servers that do not use this protocol.

It also tells the app when the server starts shutting down
(:func:`~src.infra.server_shutdown.server_shutting_down`), so that streams
that never end by themselves end then, not when the grace period runs out.
"""

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from src.infra.server_shutdown import server_shutting_down
from src.settings import get_settings

_STATUS_LINE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


def headers_too_large_response(max_bytes: int) -> bytes:
    """The whole 431 response, in the API's JSON error format."""
    body = json.dumps(
        {
            "error": "request_header_fields_too_large",
            "message": f"request headers are limited to {max_bytes} bytes",
            "request_id": None,
        }
    ).encode()
    head = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return _STATUS_LINE + head + body


class BoundedHeadersProtocol(HttpToolsProtocol):
    """Refuses a request whose head (target and headers) passes the limit."""

    max_head_bytes: int | None = None
    """The limit; ``MAX_HEADER_BYTES`` from the settings when None."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start counting for the connection's first request."""
        self._limit = self.max_head_bytes or get_settings().max_header_bytes
        self._in_head = False
        self._head_bytes = 0
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        """A request's head starts."""
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """The head is whole: the app may run."""
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Parse; answer 431 when the head so far is over the limit."""
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # The parser holds every byte of an unfinished head (a partial header
        # included), and this chunk ended inside the head.
        self._head_bytes += len(data)
        if self._head_bytes > self._limit:
            self._in_head = False
            self.transport.write(headers_too_large_response(self._limit))
            self.transport.close()

    def shutdown(self) -> None:
        """The server shuts down: the app ends its endless streams, then uvicorn's."""
        server_shutting_down()
        super().shutdown()
