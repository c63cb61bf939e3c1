"""A pooler in session mode that drops startup parameters, as Supavisor does.

Supavisor opens its server connection with a startup message of its own: the
user, the database, ``application_name`` and the ``search_path`` of the
client's ``options`` (``lib/supavisor/db_handler.ex``, ``send_startup``);
every other parameter the client sent is lost. This proxy does the same, then
passes the bytes through both ways.
"""

import asyncio
import contextlib
import struct
from pathlib import Path

from sqlalchemy.engine import make_url

_SSL_REQUEST = 80877103
_KEPT = ("user", "database", "application_name")


def _parameters(payload: bytes) -> dict[str, str]:
    fields = payload[4:].split(b"\0")
    pairs = zip(fields[::2], fields[1::2], strict=False)
    return {k.decode(): v.decode() for k, v in pairs if k}


def _startup(parameters: dict[str, str]) -> bytes:
    body = struct.pack("!I", 196608)
    for name in _KEPT:
        if name in parameters:
            body += name.encode() + b"\0" + parameters[name].encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


class DroppingPooler:
    """Listens on 127.0.0.1 in front of the database at ``database_url``."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        host = str(url.query.get("host") or url.host or "127.0.0.1")
        self._socket: Path | None = None
        if host.startswith("/"):
            self._socket = next(
                p for p in Path(host).glob(".s.PGSQL.*") if p.suffix != ".lock"
            )
        self._host, self._port = host, url.port or 5432
        self._server: asyncio.Server | None = None
        self.startups: list[dict[str, str]] = []
        """The startup parameters clients sent (before dropping)."""

    def url_for(self, database_url: str) -> str:
        """``database_url`` going through the pooler instead."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        url = make_url(database_url).difference_update_query(["host"])
        return url.set(host="127.0.0.1", port=port).render_as_string(False)

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._socket is not None:
            return await asyncio.open_unix_connection(str(self._socket))
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            payload = await reader.readexactly(length - 4)
            if struct.unpack("!I", payload[:4])[0] != _SSL_REQUEST:
                break
            writer.write(b"N")
        parameters = _parameters(payload)
        self.startups.append(parameters)
        up_reader, up_writer = await self._upstream()
        up_writer.write(_startup(parameters))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def __aenter__(self) -> "DroppingPooler":
        """Start listening."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stop listening."""
        assert self._server is not None
        self._server.close()
