"""Messages of chat rooms."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import GeneralUsers, Messages, VirtualUsers


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
    ) -> Messages:
        """Insert one message and return it (with its id and created_at)."""
        statement = (
            insert(Messages)
            .values(
                chat_room_id=chat_room_id,
                role=role,
                content=content,
                sender_user_id=sender_user_id,
                sender_virtual_user_id=sender_virtual_user_id,
                status=status,
                metadata_=metadata or {},
            )
            .returning(Messages)
        )
        return (await self.session.scalars(statement)).one()

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
