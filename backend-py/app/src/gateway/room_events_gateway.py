"""Room events: subscribe to a room's notifications, publish an answer's progress.

A thin view of the process's :class:`~src.infra.room_events.RoomEventHub`
(built once in the runtime), cheap to build per request.
"""

import asyncio
import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

from src.infra.room_events import CLOSED, RoomEventHub, Subscription

TOKEN_CHARS = 2000
"""The most characters of answer text in one notification (NOTIFY's limit)."""

__all__ = ["CLOSED", "RoomEventsGateway", "Subscription", "TokenPublisher"]


class RoomEventsGateway:
    """Subscriptions to rooms' events and the ``answer.*`` notifications."""

    def __init__(self, hub: RoomEventHub, *, token_interval_s: float) -> None:
        self.hub = hub
        self.token_interval_s = token_interval_s

    def check_capacity(self, user_id: uuid.UUID) -> None:
        """Raise ``TooManyStreamsError`` when the user may open no more streams."""
        self.hub.check_capacity(user_id)

    def subscribe(
        self, room_id: int, user_id: uuid.UUID
    ) -> AbstractAsyncContextManager[Subscription]:
        """The room's notifications for one stream, while the block runs."""
        return self.hub.subscribe(room_id, user_id)

    async def publish(self, room_id: int, kind: str, data: dict[str, Any]) -> None:
        """Send an event of ``kind`` about the room to every replica's streams."""
        await self.hub.publish({"r": room_id, "k": kind, **data})

    def tokens(self, room_id: int, reply_to: int) -> "TokenPublisher":
        """A publisher of an answer's tokens, gathered ``token_interval_s``."""
        return TokenPublisher(self, room_id, reply_to)


class TokenPublisher:
    """Gathers an answer's deltas and publishes them as ``answer.token`` events."""

    def __init__(self, events: RoomEventsGateway, room_id: int, reply_to: int) -> None:
        self.events = events
        self.room_id = room_id
        self.reply_to = reply_to
        self._pending: list[str] = []
        self._since = asyncio.get_running_loop().time()

    async def add(self, delta: str) -> None:
        """Gather a delta; publish what gathered once the interval has passed."""
        self._pending.append(delta)
        now = asyncio.get_running_loop().time()
        if now - self._since >= self.events.token_interval_s:
            await self.flush()

    async def flush(self) -> None:
        """Publish what gathered (in pieces that fit a notification)."""
        text = "".join(self._pending)
        self._pending.clear()
        self._since = asyncio.get_running_loop().time()
        for start in range(0, len(text), TOKEN_CHARS):
            await self.events.publish(
                self.room_id,
                "answer.token",
                {"reply_to": self.reply_to, "delta": text[start : start + TOKEN_CHARS]},
            )
