"""A member's live view of a room: its events, from a reconnect's replay on.

Events, each with an ``id``:

* ``message``: a saved message (a person's or the persona's), as the history
  API shows it, read back under the member's own row-level security;
* ``answer.started``, ``answer.token`` (``delta``), ``answer.failed``: the
  persona's answer as it is written, by whichever replica writes it;
* ``member.joined``, ``member.left`` (``user_id``), ``room.updated``.

A ``message`` event's id is the message id; any other event's id is
``<last message id>-<n>``. A client that reconnects with ``Last-Event-ID``
first gets the messages after the one that id names (at most
``MAX_PAGE_SIZE``; older ones are in the history API), then live events.

The stream ends after a ``member.left`` naming the member themself (removed,
left, or the room deleted): they receive nothing more of the room. It also
ends, with a last comment and no event, when this replica loses its
connection to the database or starts shutting down; the client reconnects
with ``Last-Event-ID``.

A read the database cannot serve now (no pooled connection freed up in
time, a lost connection, a timeout) never breaks the stream mid-response: it
ends with a ``reconnect`` event (``reason``: the error's code) that asks the
client to reconnect after ``RECONNECT_AFTER_MS`` (the SSE ``retry`` field,
which ``EventSource`` obeys by itself); its id keeps the last message sent,
so the reconnect's replay brings the message that could not be read, and
everything after it. A browser's ``EventSource`` does all of this unaided.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from src.domain.entity.user import CurrentUser
from src.domain.errors import ServiceUnavailableError
from src.gateway.chat_room_gateway import ChatRoomGateway
from src.gateway.message_gateway import MessageReader
from src.gateway.room_events_gateway import CLOSED, RoomEventsGateway, Subscription
from src.settings import Settings
from src.usecase.chat_room_usecase import message_out
from src.usecase.chat_usecase import Transaction

_KEY_NAMES = {"u": "user_id"}
"""Short keys of the notifications, as the events name them."""


RECONNECT_AFTER_MS = 2000
"""How long a client waits before reconnecting after a ``reconnect`` event."""


@dataclass(frozen=True)
class RoomEvent:
    """One event of a room's stream; ``event`` empty for a keep-alive.

    ``retry_ms``: the reconnection delay the client should take from now on.
    """

    event: str
    data: dict[str, Any]
    id: str
    retry_ms: int | None = None


KEEP_ALIVE = RoomEvent("", {}, "")
RECONNECT = RoomEvent("", {"comment": "reconnect with Last-Event-ID"}, "")
"""The last of a stream that this replica ends (a comment, like keep-alives)."""


@dataclass
class _Cursor:
    """The last message id a stream has sent, and events sent since."""

    message_id: int
    since: int = field(default=0)

    def message(self, message_id: int) -> str:
        self.message_id, self.since = message_id, 0
        return str(message_id)

    def other(self) -> str:
        self.since += 1
        return f"{self.message_id}-{self.since}"


def last_message_id(last_event_id: str | None) -> int | None:
    """The message id a ``Last-Event-ID`` names (its part before ``-``)."""
    if not last_event_id:
        return None
    return int(last_event_id.split("-", 1)[0])


class RoomEventsUseCase:
    """The events of one room for one member, while they remain a member."""

    def __init__(
        self,
        *,
        user: CurrentUser,
        as_caller: Transaction,
        messages: MessageReader,
        events: RoomEventsGateway,
        settings: Settings,
    ) -> None:
        """Take the caller, their transactions and reads, the events, the settings."""
        self.user = user
        self.as_caller = as_caller
        self.messages = messages
        self.events = events
        self.settings = settings

    async def check(self, room_id: int) -> None:
        """Refuse a stream before it starts.

        Raises:
            NotFoundError: The room does not exist for the caller.
            TooManyStreamsError: The caller holds as many streams as allowed.
        """
        async with self.as_caller() as session:
            await ChatRoomGateway(session).joined(room_id, self.user.id)
        self.events.check_capacity(self.user.id)

    async def stream(
        self, room_id: int, last_event_id: str | None
    ) -> AsyncIterator[RoomEvent]:
        """The room's events: the replay after ``last_event_id``, then live ones.

        Yields :data:`KEEP_ALIVE` once subscribed, and after
        ``ROOM_EVENTS_KEEPALIVE_S`` of silence.
        """
        after = last_message_id(last_event_id)
        cursor = _Cursor(after or 0)
        async with self.events.subscribe(room_id, self.user.id) as subscription:
            yield KEEP_ALIVE  # subscribed: nothing from here on is missed
            try:
                async for event in self._events(room_id, after, subscription, cursor):
                    yield event
            except ServiceUnavailableError as exc:  # the response has started
                yield RoomEvent(
                    "reconnect",
                    {"chat_room_id": room_id, "reason": exc.code},
                    cursor.other(),
                    retry_ms=RECONNECT_AFTER_MS,
                )

    async def _events(
        self,
        room_id: int,
        after: int | None,
        subscription: Subscription,
        cursor: _Cursor,
    ) -> AsyncIterator[RoomEvent]:
        """The replay, then live events; raises when the database fails a read."""
        replay = await self._replay(room_id, after, cursor)
        if replay is None:  # no longer a member
            yield RoomEvent("member.left", self._left(room_id), cursor.other())
            return
        for event in replay:
            yield event
        async for event in self._live(subscription, cursor):
            yield event

    async def _replay(
        self, room_id: int, after: int | None, cursor: _Cursor
    ) -> list[RoomEvent] | None:
        """The messages after ``after``; None when the caller is not a member.

        One read as the caller: a read the database cannot serve raises
        ``ServiceUnavailableError``, as the live reads do.
        """
        limit = self.settings.max_page_size if after is not None else 0
        missed = await self.messages.missed(room_id, after=after or 0, limit=limit)
        if missed is None:
            return None
        return [
            RoomEvent(
                "message", message_out(m).model_dump(mode="json"), cursor.message(m.id)
            )
            for m in missed
        ]

    async def _live(
        self, subscription: Subscription, cursor: _Cursor
    ) -> AsyncIterator[RoomEvent]:
        keepalive_s = self.settings.room_events_keepalive_s
        while True:
            note = await _next(subscription, keepalive_s)
            if note is CLOSED:
                yield RECONNECT
                return
            event = await self._event(note, cursor)
            if event is not None:
                yield event
            if self._ends(note):
                return

    def _ends(self, note: dict[str, Any] | None) -> bool:
        """Whether ``note`` says the caller left the room."""
        return (
            note is not None
            and note["k"] == "member.left"
            and note.get("u") == str(self.user.id)
        )

    async def _event(
        self, note: dict[str, Any] | None, cursor: _Cursor
    ) -> RoomEvent | None:
        if note is None:
            return KEEP_ALIVE
        kind = str(note["k"])
        if kind != "message":
            data = {"chat_room_id": note["r"]} | {
                _KEY_NAMES.get(k, k): v for k, v in note.items() if k not in ("r", "k")
            }
            return RoomEvent(kind, data, cursor.other())
        message_id = int(note["id"])
        if message_id <= cursor.message_id:  # sent by the replay already
            return None
        message = await self.messages.view(message_id)
        if message is None:  # not readable by this member (any more)
            return None
        data = message_out(message).model_dump(mode="json")
        return RoomEvent("message", data, cursor.message(message_id))

    def _left(self, room_id: int) -> dict[str, Any]:
        return {"chat_room_id": room_id, "user_id": str(self.user.id)}


async def _next(subscription: Subscription, timeout_s: float) -> dict[str, Any] | None:
    """The next notification, or None after ``timeout_s`` of silence.

    ``asyncio.timeout``, not ``wait_for`` (a task per wait before Python 3.12).
    """
    queue = subscription.queue
    if not queue.empty():
        return queue.get_nowait()
    try:
        async with asyncio.timeout(timeout_s):
            return await queue.get()
    except TimeoutError:
        return None
