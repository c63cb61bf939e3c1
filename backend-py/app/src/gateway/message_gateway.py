"""Messages of chat rooms."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, literal, true
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import GeneralUsers, Messages, VirtualUsers
from src.domain.errors import NotFoundError
from src.gateway.chat_room_gateway import TURN_ROOM, TurnRoom
from src.infra.db_client import DriverStatement


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A message as the prompt's history needs it: who said what, and its status."""

    role: str
    content: str
    status: str
    sender_name: str | None


@dataclass(frozen=True)
class PostedMessage:
    """A user message saved in a room, with what answering it needs."""

    id: int
    room: TurnRoom
    history: list[HistoryEntry]


@dataclass(frozen=True)
class MessageView:
    """A message with its sender's display name."""

    id: int
    chat_room_id: int
    role: str
    content: str
    status: str
    metadata: dict[str, Any]
    sender_user_id: uuid.UUID | None
    sender_virtual_user_id: int | None
    sender_name: str | None
    created_at: datetime


class MessageGateway:
    """Writes messages and reads a room's history."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(  # noqa: PLR0913 - one column each
        self,
        *,
        chat_room_id: int,
        role: str,
        content: str,
        sender_user_id: uuid.UUID | None = None,
        sender_virtual_user_id: int | None = None,
        status: str = "complete",
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Insert one message and return its id.

        An insert returning only the id, run by the driver: the chat turn's
        hot path (saving the answer) needs nothing else, and an ORM entity
        would cost a load of every column.
        """
        params = {
            "chat_room_id": chat_room_id,
            "role": role,
            "content": content,
            "sender_user_id": sender_user_id,
            "sender_virtual_user_id": sender_virtual_user_id,
            "status": status,
            # The engine's jsonb codec takes the document as JSON text.
            "metadata": json.dumps(metadata or {}),
        }
        rows = await _INSERT_MESSAGE.fetch(self.session, params)
        return int(rows[0][0])

    async def post_in_room(
        self, *, chat_room_id: int, user_id: uuid.UUID, content: str, history: int
    ) -> PostedMessage:
        """Save the user's message in a room they are in, in one statement.

        The statement finds the room and its answering persona (the room's,
        else its creator's preferred one, else the admins' default), inserts
        the message there and reads the ``history`` messages before it: one
        round trip for what takes three apart, on the chat turn's hot path.

        Raises:
            NotFoundError: No such room, or the user is not in it.
        """
        params = {
            "room_id": chat_room_id,
            "user_id": user_id,
            "content": content,
            "limit": history,
        }
        rows = await _POST_IN_ROOM.fetch(self.session, params)
        if not rows:
            raise NotFoundError(f"Chat room {chat_room_id} not found")
        first = tuple(rows[0])
        return PostedMessage(
            id=first[_TURN_ROOM_COLUMNS],
            room=TurnRoom(*first[:_TURN_ROOM_COLUMNS]),
            history=[
                HistoryEntry(role, content, status, sender_name)
                for *_, role, content, status, sender_name in reversed(rows)
                if role is not None
            ],
        )

    async def page(
        self, chat_room_id: int, *, before: int | None, limit: int
    ) -> list[MessageView]:
        """Up to ``limit`` messages older than ``before``, oldest to newest."""
        statement = (
            select(
                Messages,
                col(GeneralUsers.display_name),
                col(GeneralUsers.account_name),
                col(VirtualUsers.name),
            )
            .outerjoin(
                GeneralUsers, col(GeneralUsers.id) == col(Messages.sender_user_id)
            )
            .outerjoin(
                VirtualUsers,
                col(VirtualUsers.id) == col(Messages.sender_virtual_user_id),
            )
            .where(col(Messages.chat_room_id) == chat_room_id)
            .order_by(col(Messages.id).desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(col(Messages.id) < before)
        rows = (await self.session.execute(statement)).all()
        return [
            _view(message, display or account or persona)
            for message, display, account, persona in reversed(rows)
        ]


_MESSAGES = Messages.metadata.tables["messages"]
_USERS = Messages.metadata.tables["general_users"]
_PERSONAS = Messages.metadata.tables["virtual_users"]
# Core statements on the tables, built once: no ORM entity to load per row.
_INSERT_MESSAGE = DriverStatement.of(
    insert(_MESSAGES)
    .values(
        {
            name: bindparam(name, type_=_MESSAGES.c[name].type)
            for name in (
                "chat_room_id",
                "role",
                "content",
                "sender_user_id",
                "sender_virtual_user_id",
                "status",
                "metadata",
            )
        }
    )
    .returning(_MESSAGES.c.id)
)
# One statement for a turn in an existing room: the room (only if the caller
# is a member, with its persona), the inserted message's id, and the messages
# before it. Every part of a statement sees the same snapshot, so the history
# never includes the message the statement inserts.
_TURN_ROOM_COLUMNS = len(TURN_ROOM.selected_columns)
_ROOM = TURN_ROOM.cte("room")
_POSTED = (
    insert(_MESSAGES)
    .from_select(
        ["chat_room_id", "role", "content", "sender_user_id"],
        select_columns(
            _ROOM.c.id,
            literal("user"),
            bindparam("content", type_=_MESSAGES.c.content.type),
            bindparam("user_id", type_=_MESSAGES.c.sender_user_id.type),
        ),
    )
    .returning(_MESSAGES.c.id)
    .cte("posted")
)
_SENDER = _USERS.alias("sender")
_SENDER_PERSONA = _PERSONAS.alias("sender_persona")
_RECENT = (
    select_columns(
        _MESSAGES.c.role,
        _MESSAGES.c.content,
        _MESSAGES.c.status,
        func.coalesce(
            _SENDER.c.display_name, _SENDER.c.account_name, _SENDER_PERSONA.c.name
        ).label("sender_name"),
    )
    .select_from(
        _MESSAGES.outerjoin(
            _SENDER, _SENDER.c.id == _MESSAGES.c.sender_user_id
        ).outerjoin(
            _SENDER_PERSONA,
            _SENDER_PERSONA.c.id == _MESSAGES.c.sender_virtual_user_id,
        )
    )
    .where(_MESSAGES.c.chat_room_id == _ROOM.c.id)
    .order_by(_MESSAGES.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
    .lateral("recent")
)
_POST_IN_ROOM = DriverStatement.of(
    select_columns(
        *_ROOM.c,
        _POSTED.c.id.label("message_id"),
        _RECENT.c.role,
        _RECENT.c.content,
        _RECENT.c.status,
        _RECENT.c.sender_name,
    ).select_from(_ROOM.join(_POSTED, true()).outerjoin(_RECENT, true()))
)


def _view(message: Messages, sender_name: str | None) -> MessageView:
    return MessageView(
        id=message.id,
        chat_room_id=message.chat_room_id,
        role=message.role,
        content=message.content,
        status=message.status,
        metadata=dict(message.metadata_) if isinstance(message.metadata_, dict) else {},
        sender_user_id=message.sender_user_id,
        sender_virtual_user_id=message.sender_virtual_user_id,
        sender_name=sender_name,
        created_at=message.created_at,
    )
