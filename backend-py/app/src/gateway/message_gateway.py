"""Messages of chat rooms."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, insert
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import GeneralUsers, Messages, VirtualUsers


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A message as the prompt's history needs it: who said what, and its status."""

    role: str
    content: str
    status: str
    sender_name: str | None


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

        A Core insert returning only the id: the chat turn's hot path needs
        nothing else, and an ORM entity would cost a load of every column.
        """
        params = {
            "chat_room_id": chat_room_id,
            "role": role,
            "content": content,
            "sender_user_id": sender_user_id,
            "sender_virtual_user_id": sender_virtual_user_id,
            "status": status,
            "metadata": metadata or {},
        }
        return int((await self.session.execute(_INSERT_MESSAGE, params)).scalar_one())

    async def history(
        self, chat_room_id: int, *, before: int, limit: int
    ) -> list[HistoryEntry]:
        """The ``limit`` messages before ``before``, oldest first, for a prompt.

        Only the columns a prompt uses (no metadata, which holds the sources
        of every answer and is the bulk of a row).
        """
        rows = (
            await self.session.execute(
                _HISTORY, {"room_id": chat_room_id, "before": before, "limit": limit}
            )
        ).all()
        return [
            HistoryEntry(role, content, status, display or account or persona)
            for role, content, status, display, account, persona in reversed(rows)
        ]

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
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
_HISTORY = (
    select_columns(
        _MESSAGES.c.role,
        _MESSAGES.c.content,
        _MESSAGES.c.status,
        _USERS.c.display_name,
        _USERS.c.account_name,
        _PERSONAS.c.name,
    )
    .select_from(
        _MESSAGES.outerjoin(
            _USERS, _USERS.c.id == _MESSAGES.c.sender_user_id
        ).outerjoin(_PERSONAS, _PERSONAS.c.id == _MESSAGES.c.sender_virtual_user_id)
    )
    .where(
        _MESSAGES.c.chat_room_id == bindparam("room_id"),
        _MESSAGES.c.id < bindparam("before"),
    )
    .order_by(_MESSAGES.c.id.desc())
    # Rendered inline: with a known LIMIT, Postgres plans this in half the time.
    .limit(bindparam("limit", type_=Integer, literal_execute=True))
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
