"""Room events across API replicas: one Postgres ``LISTEN`` per process.

The database sends a small ``NOTIFY room_events`` (ids only) when a message is
saved, a member joins or leaves, or a room changes (migration
``20261207000100_rooms_for_people``); the process writing an answer publishes
``answer.*`` events on the same channel. :class:`RoomEventHub` holds one
connection per process, opened on first use: it listens on the channel and
hands each notification to the queues of the streams open on that room in
this process; it also sends this process's ``answer.*`` notifications.

When the listening connection is lost, every open subscription ends (its
stream closes, and the client reconnects with ``Last-Event-ID``, which replays
the messages it missed); the next subscription connects again. So does every
subscription when the server starts shutting down (:meth:`RoomEventHub.end_all`):
the client reconnects to another replica, or to this one once restarted.
"""

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from src.domain.errors import TooManyStreamsError
from src.infra.db_client import Database, libpq_url
from src.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "room_events"
MAX_PAYLOAD_BYTES = 7900
"""NOTIFY payloads are limited to 8000 bytes."""

CLOSED: dict[str, Any] = {"k": "closed"}
"""Put in a subscription's queue when the hub loses its connection, or the
server shuts down."""


@dataclass(eq=False)
class Subscription:
    """One open stream's queue of a room's notifications."""

    room_id: int
    user_id: uuid.UUID
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


class RoomEventHub:
    """The process's one ``LISTEN room_events`` connection and its fan-out."""

    def __init__(self, dsn: str, *, max_streams_per_user: int) -> None:
        """Take where to connect and the per-user bound on open streams.

        Args:
            dsn: A libpq URL of the database.
            max_streams_per_user: Streams one user may hold open in this process.
        """
        self.dsn = dsn
        self.max_streams_per_user = max_streams_per_user
        self._connection: Any = None
        self._connect_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._rooms: defaultdict[int, set[Subscription]] = defaultdict(set)
        self._per_user: defaultdict[uuid.UUID, int] = defaultdict(int)

    @classmethod
    def for_database(cls, database: Database, settings: Settings) -> "RoomEventHub":
        """The hub of the app's database (it connects on first use)."""
        url = database.engine.url.render_as_string(hide_password=False)
        return cls(
            libpq_url(url),
            max_streams_per_user=settings.room_events_max_streams_per_user,
        )

    def check_capacity(self, user_id: uuid.UUID) -> None:
        """Refuse a new stream for a user who holds as many as allowed.

        Raises:
            TooManyStreamsError: The user holds ``max_streams_per_user`` streams.
        """
        if self._per_user[user_id] >= self.max_streams_per_user:
            raise TooManyStreamsError(
                f"At most {self.max_streams_per_user} open event streams per user"
            )

    @asynccontextmanager
    async def subscribe(
        self, room_id: int, user_id: uuid.UUID
    ) -> AsyncIterator[Subscription]:
        """Receive the room's notifications until the block ends.

        Raises:
            TooManyStreamsError: The user holds ``max_streams_per_user`` streams.
        """
        self.check_capacity(user_id)
        await self._connected()
        subscription = Subscription(room_id, user_id)
        self._per_user[user_id] += 1
        self._rooms[room_id].add(subscription)
        try:
            yield subscription
        finally:
            self._rooms[room_id].discard(subscription)
            if not self._rooms[room_id]:
                del self._rooms[room_id]
            self._per_user[user_id] -= 1
            if not self._per_user[user_id]:
                del self._per_user[user_id]

    async def publish(self, payload: dict[str, Any]) -> None:
        """Send a notification to every replica (this one included)."""
        text = json.dumps(payload, separators=(",", ":"))
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError("a room event payload is over the NOTIFY limit")
        connection = await self._connected()
        async with self._send_lock:
            await connection.execute(
                "select pg_catalog.pg_notify($1, $2)", CHANNEL, text
            )

    def end_all(self) -> None:
        """End every open subscription (the server is shutting down).

        The connection stays open for the answers still being written.
        """
        self._close_all()

    def open_streams(self) -> int:
        """How many streams are subscribed in this process."""
        return sum(len(subs) for subs in self._rooms.values())

    async def aclose(self) -> None:
        """End every subscription and close the connection."""
        connection, self._connection = self._connection, None
        self._close_all()
        if connection is not None and not connection.is_closed():
            await connection.close()

    async def _connected(self) -> Any:
        async with self._connect_lock:
            if self._connection is None or self._connection.is_closed():
                connection = await asyncpg.connect(self.dsn)
                await connection.add_listener(CHANNEL, self._on_notification)
                connection.add_termination_listener(self._on_lost)
                self._connection = connection
            return self._connection

    def _on_notification(
        self, _connection: Any, _pid: int, _channel: str, payload: str
    ) -> None:
        try:
            event = json.loads(payload)
            room_id = int(event["r"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed room event", extra={"payload": payload})
            return
        for subscription in self._rooms.get(room_id, ()):
            subscription.queue.put_nowait(event)

    def _on_lost(self, _connection: Any) -> None:
        logger.warning("room events: the listening connection was lost")
        self._connection = None
        self._close_all()

    def _close_all(self) -> None:
        for subscriptions in self._rooms.values():
            for subscription in subscriptions:
                subscription.queue.put_nowait(CLOSED)
