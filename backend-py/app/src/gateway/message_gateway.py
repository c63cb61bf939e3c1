"""Messages of chat rooms."""

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.knowledge import RetrievedChunk
from src.domain.entity.models import GeneralUsers, Messages, VirtualUsers
from src.gateway.chat_room_gateway import TurnRoom
from src.gateway.embeddings_gateway import full_text_query, retrieved_chunk
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
    """A user message saved in a room, with what answering it needs.

    ``id`` is None when nothing was saved: the room has another persona than
    the one asked for.
    """

    id: int | None
    room: TurnRoom
    history: list[HistoryEntry]
    sources: list[RetrievedChunk]


@dataclass(frozen=True)
class UserTurn:
    """A user's message for a room they are in, with its retrieval query.

    ``claims`` are the user's JWT claims (the turn runs as that user);
    ``embedding`` is the message's, None when it could not be computed (then
    nothing is retrieved).
    """

    claims: Mapping[str, Any]
    chat_room_id: int
    content: str
    virtual_user_id: int | None
    embedding: Sequence[float] | None


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

    async def create_answers(self, answers: Sequence[Answer]) -> list[int]:
        """Insert AI answers with one statement; their ids, in the same order.

        The rows are inserted in the order given (the select is ordered), and
        each takes the next id of the table's identity in turn, so sorting the
        returned ids puts them in that order.
        """
        rows = await _INSERT_ANSWERS.fetch(
            self.session,
            {
                "rooms": [a.chat_room_id for a in answers],
                "contents": [a.content for a in answers],
                # The engine's jsonb codec takes the document as JSON text.
                "metadata": [json.dumps(a.metadata) for a in answers],
                "personas": [a.sender_virtual_user_id for a in answers],
            },
        )
        return sorted(int(row[0]) for row in rows)

    async def post_turns(
        self,
        turns: Sequence[UserTurn],
        *,
        history: int,
        search: Mapping[str, Any],
    ) -> list[PostedMessage | None]:
        """Save users' messages in rooms they are in, and retrieve for them.

        One call of ``public.post_chat_turns``: for each turn, in order, as
        its user (row-level security applies), it finds the room and its
        answering persona (the room's, else its creator's preferred one, else
        the admins' default), saves the message there unless the room has
        another persona than the turn's ``virtual_user_id``, reads the
        ``history`` messages before it and runs the hybrid search with the
        turn's embedding and ``search`` (``embeddings_gateway.search_settings``).
        One round trip, in autocommit (:meth:`Database.statement`): the turns
        commit together.

        Returns:
            For each turn, in order, what was saved; None when the room does
            not exist or the user is not in it (nothing was saved).
        """
        rows = await _POST_CHAT_TURNS.fetch(
            self.session,
            dict(search)
            | {
                "claims": [json.dumps(turn.claims) for turn in turns],
                "rooms": [turn.chat_room_id for turn in turns],
                "contents": [turn.content for turn in turns],
                "personas": [turn.virtual_user_id for turn in turns],
                # A tuple, not a list: asyncpg reads a list as an array's row.
                "embeddings": [
                    None if turn.embedding is None else tuple(turn.embedding)
                    for turn in turns
                ],
                "queries": [
                    None if turn.embedding is None else full_text_query(turn.content)
                    for turn in turns
                ],
                "limit": history,
            },
        )
        by_turn: list[list[Any]] = [[] for _ in turns]
        for row in rows:
            by_turn[row["turn"] - 1].append(row)
        return [_posted(turn_rows) if turn_rows else None for turn_rows in by_turn]

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
# Many answers in one statement: see MessageGateway.create_answers.
_INSERT_ANSWERS = DriverStatement.of(
    text("""
insert into public.messages
  (chat_room_id, role, content, status, metadata, sender_virtual_user_id)
select answer.room, 'assistant', answer.content, 'complete',
       cast(answer.metadata as jsonb), answer.persona
  from unnest(
    cast(:rooms as bigint[]), cast(:contents as text[]),
    cast(:metadata as text[]), cast(:personas as bigint[])
  ) with ordinality as answer(room, content, metadata, persona, position)
 order by answer.position
returning id
""")
)
# The turns of several users: see MessageGateway.post_turns.
_POST_CHAT_TURNS = DriverStatement.of(
    text("""
select turn, chat_room_id, virtual_user_id, persona_id, persona_name,
       system_prompt, model, temperature, max_tokens, message_id, role,
       content, status, sender_name, chunk_id, document_id, title,
       heading_path, score
  from public.post_chat_turns(
    cast(:claims as text[]), cast(:rooms as bigint[]),
    cast(:contents as text[]), cast(:personas as bigint[]),
    cast(:embeddings as extensions.vector[]), cast(:queries as text[]),
    cast(:limit as integer), cast(:model as text),
    cast(:ts_config as regconfig), cast(:k as integer),
    cast(:candidates as integer), cast(:text_scan_limit as integer),
    cast(:vector_weight as float8), cast(:text_weight as float8),
    cast(:rrf_k as integer)
  )
""")
)
_TURN_ROOM_COLUMNS = len(fields(TurnRoom))


def _posted(rows: list[Any]) -> PostedMessage:
    """A turn's rows: its room first, then the history, then the sources."""
    first = tuple(rows[0])[1:]  # after the turn's position
    return PostedMessage(
        id=first[_TURN_ROOM_COLUMNS],
        room=TurnRoom(*first[:_TURN_ROOM_COLUMNS]),
        history=[
            HistoryEntry(row["role"], row["content"], row["status"], row["sender_name"])
            for row in reversed(rows)
            if row["role"] is not None
        ],
        sources=[retrieved_chunk(row) for row in rows if row["chunk_id"] is not None],
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
