"""A TCP server that answers every connection as a Postgres still starting up.

It speaks just enough of the protocol: it refuses TLS, reads the startup
message and sends the error a real server sends while it starts or recovers
(SQLSTATE 57P03, ``CannotConnectNowError`` in asyncpg), then hangs up.
"""

import asyncio
import struct

_SSL_REQUEST = 80877103
_STARTING_UP = b"".join(
    (
        b"SFATAL\0VFATAL\0",
        b"C57P03\0",
        b"Mthe database system is starting up\0",
        b"\0",
    )
)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            payload = await reader.readexactly(length - 4)
            if struct.unpack("!I", payload[:4])[0] != _SSL_REQUEST:
                break
            writer.write(b"N")  # no TLS: go on in plain text
        writer.write(b"E" + struct.pack("!I", len(_STARTING_UP) + 4) + _STARTING_UP)
        await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


class StartingPostgres:
    """Serve on a free port of 127.0.0.1 (use as ``async with``)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """A ``DATABASE_URL`` pointing at it."""
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/postgres"

    async def __aenter__(self) -> "StartingPostgres":
        """Start listening."""
        self._server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stop listening."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
