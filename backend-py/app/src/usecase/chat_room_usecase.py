"""Rooms, members and history: who may see and change what.

Membership decides existence: a room the caller is not in is 404, exactly like a
missing one. Among members, only the owner renames, deletes or adds people (403).
Row-level security enforces the same rules again in Postgres.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from src.domain.entity.chat import (
    MemberAdd,
    MessageOut,
    MessagePage,
    PersonaSummary,
    RoomCreate,
    RoomMember,
    RoomOut,
    RoomUpdate,
    Sender,
    Source,
)
from src.domain.entity.user import CurrentUser
from src.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
)
from src.gateway.chat_room_gateway import ChatRoomGateway, JoinedRoom, RoomView
from src.gateway.message_gateway import MessageGateway, MessageView
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.settings import Settings


def room_out(view: RoomView, members: Sequence[Any] | None = None) -> RoomOut:
    """The API shape of a room."""
    room = view.room
    persona = (
        PersonaSummary(id=room.virtual_user_id, name=view.persona_name)
        if room.virtual_user_id is not None and view.persona_name is not None
        else None
    )
    return RoomOut(
        id=room.id,
        title=room.title,
        created_by=room.created_by,
        virtual_user=persona,
        created_at=room.created_at,
        updated_at=room.updated_at,
        last_message_at=view.last_message_at,
        last_message_preview=view.last_message_preview,
        members=[RoomMember.model_validate(m, from_attributes=True) for m in members]
        if members is not None
        else None,
        ai_replies=room.ai_replies,
    )


def message_out(message: MessageView) -> MessageOut:
    """The API shape of a message, with its sender and sources."""
    if message.role == "user":
        sender = Sender(
            kind="user",
            id=str(message.sender_user_id) if message.sender_user_id else None,
            name=message.sender_name,
        )
    elif message.role == "assistant":
        sender = Sender(
            kind="virtual_user",
            id=str(message.sender_virtual_user_id)
            if message.sender_virtual_user_id
            else None,
            name=message.sender_name,
        )
    else:
        sender = Sender(kind="system", id=None, name=None)
    raw_sources = message.metadata.get("sources") or []
    return MessageOut(
        id=message.id,
        chat_room_id=message.chat_room_id,
        role=message.role,
        content=message.content,
        status=message.status,
        sender=sender,
        sources=[Source.model_validate(s) for s in raw_sources],
        created_at=message.created_at,
    )


async def open_room(  # noqa: PLR0913 - keyword-only, what a new room takes
    *,
    rooms: ChatRoomGateway,
    personas: VirtualUserGateway,
    owner_id: uuid.UUID,
    title: str,
    persona_id: int | None,
    settings: Settings,
) -> JoinedRoom:
    """A new room owned by ``owner_id``, with its persona (see ``for_new_room``).

    Raises:
        UnprocessableError: The user owns as many rooms as allowed
            (``MAX_ROOMS_PER_USER``).
        NotFoundError: The persona asked for is not one the user may pick.
    """
    limit = settings.max_rooms_per_user
    if await rooms.count_owned(owner_id) >= limit:
        raise UnprocessableError(f"You have reached the limit of {limit} rooms")
    persona = await personas.for_new_room(persona_id, owner_id)
    room = await rooms.create(
        title=title,
        owner_id=owner_id,
        virtual_user_id=persona.id if persona is not None else None,
    )
    return JoinedRoom(room=room, persona=persona)


class ChatRoomUseCase:
    """Room management for one caller inside the request's transaction."""

    def __init__(
        self,
        *,
        user: CurrentUser,
        rooms: ChatRoomGateway,
        personas: VirtualUserGateway,
        messages: MessageGateway,
        settings: Settings,
    ) -> None:
        self.user = user
        self.rooms = rooms
        self.personas = personas
        self.messages = messages
        self.settings = settings

    async def list_rooms(self, limit: int) -> list[RoomOut]:
        """The caller's rooms, newest activity first."""
        views = await self.rooms.list_for_user(self.user.id, limit)
        return [room_out(view) for view in views]

    async def create(self, body: RoomCreate) -> RoomOut:
        """A new room owned by the caller."""
        opened = await open_room(
            rooms=self.rooms,
            personas=self.personas,
            owner_id=self.user.id,
            title=body.title,
            persona_id=body.virtual_user_id,
            settings=self.settings,
        )
        return await self.get(opened.room.id)

    async def get(self, room_id: int) -> RoomOut:
        """A room with its members."""
        view = await self.rooms.get_for_member(room_id, self.user.id)
        return room_out(view, await self.rooms.members(room_id))

    async def update(self, room_id: int, body: RoomUpdate) -> RoomOut:
        """Rename, change the persona or ``ai_replies`` (owner only)."""
        await self._owned_room(room_id, "rename or change")
        changes = body.changes()
        if changes.get("virtual_user_id") is not None:
            await self.personas.for_new_room(changes["virtual_user_id"], self.user.id)
        if changes:
            await self.rooms.update(room_id, changes)
        return await self.get(room_id)

    async def delete(self, room_id: int) -> None:
        """Delete the room and its messages (owner only)."""
        await self._owned_room(room_id, "delete")
        await self.rooms.delete(room_id)

    async def add_member(self, room_id: int, body: MemberAdd) -> RoomOut:
        """Add a user by id or account name (owner only)."""
        await self._owned_room(room_id, "add members to")
        user_id = await self.rooms.find_user_id(
            user_id=body.user_id, account_name=body.account_name
        )
        if not await self.rooms.add_member(room_id, user_id):
            raise ConflictError("That user is already a member of this room")
        return await self.get(room_id)

    async def remove_member(self, room_id: int, user_id: uuid.UUID) -> None:
        """The owner removes a member, or a member leaves."""
        view = await self.rooms.get_for_member(room_id, self.user.id)
        is_owner = view.room.created_by == self.user.id
        if user_id != self.user.id and not is_owner:
            raise ForbiddenError("Only the room's owner can remove other members")
        if user_id == view.room.created_by:
            raise UnprocessableError(
                "The owner cannot leave their own room; delete it instead"
            )
        if not await self.rooms.remove_member(room_id, user_id):
            raise NotFoundError("That user is not a member of this room")

    async def history(
        self, room_id: int, *, before: int | None, limit: int
    ) -> MessagePage:
        """A page of the room's messages, oldest to newest."""
        await self.rooms.get_for_member(room_id, self.user.id)
        page = await self.messages.page(room_id, before=before, limit=limit)
        next_before = page[0].id if len(page) == limit else None
        return MessagePage(
            messages=[message_out(m) for m in page], next_before=next_before
        )

    async def _owned_room(self, room_id: int, action: str) -> RoomView:
        view = await self.rooms.get_for_member(room_id, self.user.id)
        if view.room.created_by != self.user.id:
            raise ForbiddenError(f"Only the room's owner can {action} this room")
        return view
