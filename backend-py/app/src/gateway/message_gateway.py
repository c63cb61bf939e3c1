"""Messages of chat rooms."""

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, true
from sqlalchemy import select as select_columns
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from src.domain.entity.models import GeneralUsers, Messages, UserChats, VirtualUsers


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A message as the prompt's history needs it: who said what, and its status."""

    role: str
    content: str
    status: str
    sender_name: str | None


@dataclass(frozen=True)
class Answer:
    """An AI persona's answer to save in a room."""

    chat_room_id: int
    content: str
    sender_virtual_user_id: int | None
    metadata: Mapping[str, Any]


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

    async def save_question(
        self, *, chat_room_id: int, sender_user_id: uuid.UUID, content: str
    ) -> int:
        """Save a person's message in a room and return its id."""
        return await self._insert(
            chat_room_id=chat_room_id,
            role="user",
            content=content,
            sender_user_id=sender_user_id,
            metadata={},
        )

    async def save_answer(self, answer: Answer) -> int:
        """Save an AI persona's complete answer and return its id.

        Members may not write AI messages (row-level security): call this in
        a service transaction, for a room whose membership the turn checked.
        """
        return await self._insert(
            chat_room_id=answer.chat_room_id,
            role="assistant",
            content=answer.content,
            sender_virtual_user_id=answer.sender_virtual_user_id,
            metadata=dict(answer.metadata),
        )

    async def history(
        self, chat_room_id: int, *, before: int | None, limit: int
    ) -> list[HistoryEntry]:
        """The ``limit`` messages before message ``before``, oldest first."""
        params: dict[str, Any] = {"room_id": chat_room_id, "limit": limit}
        statement = _HISTORY
        if before is not None:
            statement = _HISTORY_BEFORE
            params["before"] = before
        rows = (await self.session.execute(statement, params)).all()
        return [HistoryEntry(*row) for row in reversed(rows)]

    async def _insert(self, **values: Any) -> int:
        return int((await self.session.execute(_INSERT, values)).scalar_one())

    async def page(
        self, chat_room_id: int, *, before: int | None, limit: int
    ) -> list[MessageView]:
        """Up to ``limit`` messages older than ``before``, oldest to newest."""
        statement = (
            _VIEWS.where(_MESSAGES.c.chat_room_id == chat_room_id)
            .order_by(_MESSAGES.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(_MESSAGES.c.id < before)
        return list(reversed(await self._views(statement)))

    async def view(self, message_id: int) -> MessageView | None:
        """One message with its sender's name, if the caller may read it."""
        row = (
            await self.session.execute(_VIEW_BY_ID, {"message_id": message_id})
        ).first()
        return _view_of_row(row) if row is not None else None

    async def _views(self, statement: Any) -> list[MessageView]:
        rows = (await self.session.execute(statement)).all()
        return [_view_of_row(row) for row in rows]


_MESSAGES = Messages.metadata.tables["messages"]
"""The table itself: its ``metadata`` column keeps its SQL name here."""

_SENDER_NAME = func.coalesce(
    func.nullif(col(GeneralUsers.display_name), literal_column("''")),
    col(GeneralUsers.account_name),
    col(VirtualUsers.name),
)
"""Who wrote a message: a person's display name (their handle when it is
empty), or the persona's name."""

# Statements of every chat turn, built once and bound per call.
_INSERT = insert(_MESSAGES).returning(_MESSAGES.c.id)
"""A message; its columns are those of the values given."""

_HISTORY = (
    select_columns(
        col(Messages.role), col(Messages.content), col(Messages.status), _SENDER_NAME
    )
    .outerjoin(GeneralUsers, col(GeneralUsers.id) == col(Messages.sender_user_id))
    .outerjoin(
        VirtualUsers, col(VirtualUsers.id) == col(Messages.sender_virtual_user_id)
    )
    .where(col(Messages.chat_room_id) == bindparam("room_id"))
    .order_by(col(Messages.id).desc())
    .limit(bindparam("limit"))
)
"""A room's latest messages, newest first: who said what."""

_HISTORY_BEFORE = _HISTORY.where(col(Messages.id) < bindparam("before"))


UserRead = Callable[..., Awaitable[Sequence[Sequence[Any]]]]
"""Runs one read-only query (``$1``-style SQL, then its arguments) as the caller,
under their row-level security, and returns its rows: ``Database.user_read``
with the caller's claims."""


class MessageReader:
    """Reads messages as the caller, each read its own short transaction.

    For the many small reads of live room events: one message for each member's
    stream, each under that member's row-level security, without a session;
    and a reconnecting stream's replay.
    """

    def __init__(self, read: UserRead) -> None:
        self.read = read

    async def view(self, message_id: int) -> MessageView | None:
        """One message with its sender's name, if the caller may read it."""
        rows = await self.read(VIEW_BY_ID_SQL, message_id)
        return _view_of_row(rows[0]) if rows else None

    async def missed(
        self, chat_room_id: int, *, after: int, limit: int
    ) -> list[MessageView] | None:
        """Up to ``limit`` messages newer than ``after``, oldest first.

        None when the caller is not a member of the room: one read answers
        both.
        """
        rows = await self.read(MISSED_SQL, chat_room_id, after, limit)
        if not rows:
            return None
        return [_view_of_row(row) for row in rows if row[0] is not None]


_VIEWS = (
    select_columns(
        _MESSAGES.c.id,
        _MESSAGES.c.chat_room_id,
        _MESSAGES.c.role,
        _MESSAGES.c.content,
        _MESSAGES.c.status,
        _MESSAGES.c.metadata,
        _MESSAGES.c.sender_user_id,
        _MESSAGES.c.sender_virtual_user_id,
        _SENDER_NAME,
        _MESSAGES.c.created_at,
    )
    .outerjoin(GeneralUsers, col(GeneralUsers.id) == _MESSAGES.c.sender_user_id)
    .outerjoin(VirtualUsers, col(VirtualUsers.id) == _MESSAGES.c.sender_virtual_user_id)
)
"""Messages' fields in :class:`MessageView`'s order (each reader filters them)."""

_VIEW_BY_ID = _VIEWS.where(_MESSAGES.c.id == bindparam("message_id"))
"""One message's fields, in :class:`MessageView`'s order (columns, no entity)."""

VIEW_BY_ID_SQL = str(_VIEW_BY_ID.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]
""":data:`_VIEW_BY_ID` as asyncpg runs it (``$1``: the message id)."""


_MEMBER = (
    select_columns(literal_column("1").label("member"))
    .select_from(UserChats)
    .where(
        col(UserChats.chat_room_id) == bindparam("room_id"),
        col(UserChats.user_id) == func.auth.uid(),
    )
    .subquery("member")
)
_MISSED_ONLY = (
    _VIEWS.where(
        _MESSAGES.c.chat_room_id == bindparam("room_id"),
        _MESSAGES.c.id > bindparam("after"),
    )
    .order_by(_MESSAGES.c.id)
    .limit(bindparam("limit"))
    .lateral("missed")
)
_MISSED = (
    select_columns(_MISSED_ONLY).select_from(_MEMBER).outerjoin(_MISSED_ONLY, true())
)
"""A room's messages after one, oldest first, for a member: no row for anyone
else, one row of NULLs for a member who missed nothing."""

MISSED_SQL = str(_MISSED.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]
""":data:`_MISSED` as asyncpg runs it (``$1``: the room, ``$2``: after, ``$3``:
the limit)."""


def _view_of_row(row: Sequence[Any]) -> MessageView:
    (id_, room, role, content, status, metadata, user, persona, name, at) = row
    return MessageView(
        id=id_,
        chat_room_id=room,
        role=role,
        content=content,
        status=status,
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
        sender_user_id=user,
        sender_virtual_user_id=persona,
        sender_name=name,
        created_at=at,
    )
