"""Rooms, their members, their history, people's messages and live events."""

import json
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    Header,
    Path,
    Query,
    Response,
    status,
)
from fastapi.responses import StreamingResponse

from src.controller.chat_controller import (
    SSE_HEADERS,
    ChatUseCaseDep,
)
from src.controller.dependencies import (
    CurrentUserDep,
    DatabaseDep,
    PageLimitDep,
    RoomEventsDep,
    SettingsDep,
    UserSessionDep,
)
from src.domain.entity.chat import (
    MemberAdd,
    MessageOut,
    MessagePage,
    RoomCreate,
    RoomMessageCreate,
    RoomOut,
    RoomUpdate,
)
from src.domain.entity.request import MAX_ROW_ID
from src.gateway.chat_room_gateway import ChatRoomGateway
from src.gateway.message_gateway import MessageGateway, MessageReader
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.middleware.error_handlers import ErrorBody
from src.usecase.chat_room_usecase import ChatRoomUseCase
from src.usecase.room_events_usecase import RoomEvent, RoomEventsUseCase
from src.usecase.room_post_usecase import RoomPostUseCase

router = APIRouter(prefix="/api/chat-rooms", tags=["chat rooms"])

RoomId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def chat_room_use_case(
    user: CurrentUserDep, session: UserSessionDep, settings: SettingsDep
) -> ChatRoomUseCase:
    """The room use case on the request's transaction."""
    return ChatRoomUseCase(
        user=user,
        rooms=ChatRoomGateway(session),
        personas=VirtualUserGateway(session),
        messages=MessageGateway(session),
        settings=settings,
    )


RoomUseCaseDep = Annotated[ChatRoomUseCase, Depends(chat_room_use_case)]


def room_post_use_case(turns: ChatUseCaseDep) -> RoomPostUseCase:
    """Room posts of the caller; a called persona answers as a chat turn."""
    return RoomPostUseCase(turns)


RoomPostUseCaseDep = Annotated[RoomPostUseCase, Depends(room_post_use_case)]


@router.get("")
async def list_rooms(use_case: RoomUseCaseDep, limit: PageLimitDep) -> list[RoomOut]:
    """The caller's rooms, newest activity first, with a last-message preview."""
    return await use_case.list_rooms(limit)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_room(body: RoomCreate, use_case: RoomUseCaseDep) -> RoomOut:
    """Create a room owned by the caller."""
    return await use_case.create(body)


@router.get("/{room_id}")
async def get_room(room_id: RoomId, use_case: RoomUseCaseDep) -> RoomOut:
    """A room with its members (404 unless the caller is one)."""
    return await use_case.get(room_id)


@router.patch("/{room_id}")
async def update_room(
    room_id: RoomId, body: RoomUpdate, use_case: RoomUseCaseDep
) -> RoomOut:
    """Rename a room, change its persona or its ``ai_replies`` (owner only)."""
    return await use_case.update(room_id, body)


@router.delete("/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_room(room_id: RoomId, use_case: RoomUseCaseDep) -> Response:
    """Delete a room and its messages (owner only)."""
    await use_case.delete(room_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{room_id}/members", status_code=status.HTTP_201_CREATED)
async def add_member(
    room_id: RoomId, body: MemberAdd, use_case: RoomUseCaseDep
) -> RoomOut:
    """Add a user by id or account name (owner only)."""
    return await use_case.add_member(room_id, body)


@router.delete("/{room_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    room_id: RoomId, user_id: uuid.UUID, use_case: RoomUseCaseDep
) -> Response:
    """The owner removes a member, or a member leaves."""
    await use_case.remove_member(room_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{room_id}/messages")
async def list_messages(
    room_id: RoomId,
    use_case: RoomUseCaseDep,
    limit: PageLimitDep,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="a message id")
    ] = None,
) -> MessagePage:
    """History, oldest to newest; pass ``next_before`` as ``before`` for older."""
    return await use_case.history(room_id, before=before, limit=limit)


POST_DESCRIPTION = """\
Post the caller's message to the room (members only; 404 otherwise). The answer
is the saved message, as the history shows it.

**When the persona answers.** A message that mentions the room's persona by
name, `@` then its name (case-insensitive, not inside a word: `@Ada,` and
`hi @ada` call Ada, `mail@ada` and `@Adam` do not), or every message when the
room's `ai_replies` is `always`. A room with `ai_replies` null answers every
message while it has one member, and only mentions once it has more.

The answer is written after this response, as a chat turn (retrieval over the
room's documents and the caller's own and shared ones); members see it on
`GET /api/chat-rooms/{id}/events`: `answer.started`, `answer.token`, then
the saved answer as a `message`, or `answer.failed`.
"""


@router.post(
    "/{room_id}/messages",
    status_code=status.HTTP_201_CREATED,
    description=POST_DESCRIPTION,
    responses={
        429: {"model": ErrorBody, "description": "Over RATE_LIMIT_CHAT_PER_MINUTE"}
    },
)
async def post_message(
    room_id: RoomId,
    body: RoomMessageCreate,
    use_case: RoomPostUseCaseDep,
    events: RoomEventsDep,
    background: BackgroundTasks,
) -> MessageOut:
    """Post a message to a room; the persona answers when called."""
    post = await use_case.post(room_id, body.content)
    if post.call is not None:
        background.add_task(use_case.answer, post.call, events)
    return post.message


def room_events_use_case(
    user: CurrentUserDep,
    database: DatabaseDep,
    events: RoomEventsDep,
    settings: SettingsDep,
) -> RoomEventsUseCase:
    """A member's events use case; it opens its own short transactions."""
    return RoomEventsUseCase(
        user=user,
        as_caller=partial(database.user_transaction, user.claims),
        messages=MessageReader(partial(database.user_read, user.claims)),
        events=events,
        settings=settings,
    )


RoomEventsUseCaseDep = Annotated[RoomEventsUseCase, Depends(room_events_use_case)]

EVENTS_DESCRIPTION = """\
Server-sent events of the room, for a member (404 otherwise): `message` (a
saved message, as the history shows it), `answer.started`, `answer.token`
(`delta`), `answer.failed`, `member.joined`, `member.left`, `room.updated`.
Every event has an `id`; reconnect with `Last-Event-ID` to get the messages
sent since (up to MAX_PAGE_SIZE) before live events. A comment line is sent
once the stream is subscribed (nothing posted after it is missed), and after
ROOM_EVENTS_KEEPALIVE_S of silence. The stream ends after `member.left`
naming the caller, and (after a comment) when the server shuts down:
reconnect with `Last-Event-ID`. At most ROOM_EVENTS_MAX_STREAMS_PER_USER
streams per user and API process (429 past it).

When the database cannot serve a read the stream needs (the server is at
capacity, or the database is briefly unavailable), the stream does not break:
it ends with a `reconnect` event (`reason`: `server_busy` or
`service_unavailable`) carrying an SSE `retry` delay; its id keeps the last
message delivered, so reconnecting with `Last-Event-ID` after that delay
replays the message that could not be read and everything since. Browsers'
`EventSource` does this by itself.
"""


@router.get(
    "/{room_id}/events",
    response_class=StreamingResponse,
    description=EVENTS_DESCRIPTION,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"model": ErrorBody, "description": "Too many open streams"},
    },
)
async def room_events(
    room_id: RoomId,
    use_case: RoomEventsUseCaseDep,
    last_event_id: Annotated[
        str | None, Header(pattern=r"^[0-9]{1,18}(-[0-9]{1,18})?$")
    ] = None,
) -> StreamingResponse:
    """The room's live events, for as long as the caller remains a member.

    A read the database cannot serve now ends the stream with a ``reconnect``
    event and an SSE ``retry`` delay instead of breaking the response: the
    client reconnects with ``Last-Event-ID`` and the replay brings what it
    missed (see ``EVENTS_DESCRIPTION``).
    """
    await use_case.check(room_id)
    return StreamingResponse(
        _room_sse(use_case.stream(room_id, last_event_id)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _room_sse(events: AsyncIterator[RoomEvent]) -> AsyncIterator[str]:
    async for event in events:
        if not event.event:  # a comment
            yield f": {event.data.get('comment', 'keep-alive')}\n\n"
            continue
        data = json.dumps(event.data)
        retry = f"retry: {event.retry_ms}\n" if event.retry_ms is not None else ""
        yield f"{retry}id: {event.id}\nevent: {event.event}\ndata: {data}\n\n"
