"""Chat rooms and their membership (``chat_rooms``, ``user_chats``)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    true,
    update,
)
from sqlalchemy import select as select_columns
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import (
    ChatRooms,
    GeneralUsers,
    Messages,
    UserChats,
    VirtualUsers,
)
from src.domain.errors import NotFoundError

PREVIEW_CHARS = 120


@dataclass(frozen=True)
class RoomView:
    """A room with its persona's name and its last message's time and start."""

    room: ChatRooms
    persona_name: str | None
    last_message_at: datetime | None = None
    last_message_preview: str | None = None


# The room's newest message, through messages_chat_room_id_id_idx (one index
# probe per room): its time and, for lists, the start of its text.
_LAST_MESSAGE = (
    select_columns(
        col(Messages.created_at).label("at"),
        func.left(col(Messages.content), PREVIEW_CHARS).label("preview"),
    )
    .where(col(Messages.chat_room_id) == col(ChatRooms.id))
    .order_by(col(Messages.id).desc())
    .limit(1)
    .lateral("last_message")
)


@dataclass(frozen=True)
class JoinedRoom:
    """A room the caller is in, with its own persona if they may read it."""

    room: ChatRooms
    persona: VirtualUsers | None


# The turn's room check with its persona, built once (every chat message).
_JOINED = (
    select(ChatRooms, VirtualUsers)
    .join(UserChats, col(UserChats.chat_room_id) == col(ChatRooms.id))
    .outerjoin(VirtualUsers, col(VirtualUsers.id) == col(ChatRooms.virtual_user_id))
    .where(
        col(ChatRooms.id) == bindparam("room_id"),
        col(UserChats.user_id) == bindparam("user_id"),
    )
)


class ChatRoomGateway:
    """Reads and writes rooms; the caller's membership decides what exists."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_for_member(self, room_id: int, user_id: uuid.UUID) -> RoomView:
        """The room, if ``user_id`` is a member; 404 otherwise (even if it exists).

        Raises:
            NotFoundError: No such room, or the user is not in it.
        """
        statement = (
            select(ChatRooms, col(VirtualUsers.name), _LAST_MESSAGE.c.at)
            .join(UserChats, col(UserChats.chat_room_id) == col(ChatRooms.id))
            .outerjoin(
                VirtualUsers, col(VirtualUsers.id) == col(ChatRooms.virtual_user_id)
            )
            .outerjoin(_LAST_MESSAGE, true())
            .where(col(ChatRooms.id) == room_id, col(UserChats.user_id) == user_id)
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            raise NotFoundError(f"Chat room {room_id} not found")
        return RoomView(room=row[0], persona_name=row[1], last_message_at=row[2])

    async def joined(self, room_id: int, user_id: uuid.UUID) -> JoinedRoom:
        """The room and its persona, if ``user_id`` is a member (one statement).

        Raises:
            NotFoundError: No such room, or the user is not in it.
        """
        params = {"room_id": room_id, "user_id": user_id}
        row = (await self.session.execute(_JOINED, params)).first()
        if row is None:
            raise NotFoundError(f"Chat room {room_id} not found")
        return JoinedRoom(room=row[0], persona=row[1])

    async def list_for_user(self, user_id: uuid.UUID, limit: int) -> list[RoomView]:
        """The user's rooms, newest activity first, with a last-message preview."""
        statement = (
            select(
                ChatRooms,
                col(VirtualUsers.name),
                _LAST_MESSAGE.c.at,
                _LAST_MESSAGE.c.preview,
            )
            .join(UserChats, col(UserChats.chat_room_id) == col(ChatRooms.id))
            .outerjoin(
                VirtualUsers, col(VirtualUsers.id) == col(ChatRooms.virtual_user_id)
            )
            .outerjoin(_LAST_MESSAGE, true())
            .where(col(UserChats.user_id) == user_id)
            .order_by(
                func.coalesce(_LAST_MESSAGE.c.at, col(ChatRooms.created_at)).desc(),
                col(ChatRooms.id).desc(),
            )
            .limit(limit)
        )
        rows = (await self.session.execute(statement)).all()
        return [
            RoomView(
                room=r[0],
                persona_name=r[1],
                last_message_at=r[2],
                last_message_preview=r[3],
            )
            for r in rows
        ]

    async def member_count(self, room_id: int) -> int:
        """How many people are in the room."""
        statement = select(func.count()).where(col(UserChats.chat_room_id) == room_id)
        return int((await self.session.execute(statement)).scalar_one())

    async def count_owned(self, user_id: uuid.UUID) -> int:
        """How many rooms the user created."""
        statement = select(func.count()).where(col(ChatRooms.created_by) == user_id)
        return int((await self.session.execute(statement)).scalar_one())

    async def create(
        self, *, title: str, owner_id: uuid.UUID, virtual_user_id: int | None
    ) -> ChatRooms:
        """A new room with its owner as the first member."""
        room = (
            await self.session.scalars(
                insert(ChatRooms)
                .values(
                    title=title, created_by=owner_id, virtual_user_id=virtual_user_id
                )
                .returning(ChatRooms)
            )
        ).one()
        await self.session.execute(
            insert(UserChats).values(
                chat_room_id=room.id, user_id=owner_id, role="owner"
            )
        )
        return room

    async def update(self, room_id: int, changes: dict[str, Any]) -> ChatRooms:
        """Apply ``changes`` to the room and return it."""
        statement = (
            update(ChatRooms)
            .where(col(ChatRooms.id) == room_id)
            .values(**changes)
            .returning(ChatRooms)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one()

    async def delete(self, room_id: int) -> None:
        """Delete the room; its messages and memberships go by cascade."""
        await self.session.execute(
            delete(ChatRooms).where(col(ChatRooms.id) == room_id)
        )

    async def members(
        self, room_id: int
    ) -> list[Row[uuid.UUID, str, str, str, datetime]]:
        """The room's human members, owner first."""
        statement = (
            select_columns(
                col(UserChats.user_id),
                col(GeneralUsers.account_name),
                col(GeneralUsers.display_name),
                col(UserChats.role),
                col(UserChats.joined_at),
            )
            .join(GeneralUsers, col(GeneralUsers.id) == col(UserChats.user_id))
            .where(col(UserChats.chat_room_id) == room_id)
            .order_by(
                col(UserChats.role).desc(),
                col(UserChats.joined_at),
                col(UserChats.user_id),
            )
        )
        return list((await self.session.execute(statement)).all())

    async def add_member(self, room_id: int, user_id: uuid.UUID) -> bool:
        """Add a member; False when they already are one."""
        statement = (
            pg_insert(UserChats)
            .values(chat_room_id=room_id, user_id=user_id, role="member")
            .on_conflict_do_nothing()
            .returning(col(UserChats.user_id))
        )
        return (await self.session.execute(statement)).first() is not None

    async def remove_member(self, room_id: int, user_id: uuid.UUID) -> bool:
        """Remove a membership; False when there was none."""
        statement = (
            delete(UserChats)
            .where(
                and_(
                    col(UserChats.chat_room_id) == room_id,
                    col(UserChats.user_id) == user_id,
                )
            )
            .returning(col(UserChats.user_id))
        )
        return (await self.session.execute(statement)).first() is not None

    async def find_user_id(
        self, *, user_id: uuid.UUID | None, account_name: str | None
    ) -> uuid.UUID:
        """The id of an existing user, by id or account name.

        Raises:
            NotFoundError: No such user.
        """
        condition = (
            col(GeneralUsers.id) == user_id
            if user_id is not None
            else col(GeneralUsers.account_name) == (account_name or "").lower()
        )
        found = (
            await self.session.execute(select(col(GeneralUsers.id)).where(condition))
        ).first()
        if found is None:
            raise NotFoundError("User not found")
        return uuid.UUID(str(found[0]))
