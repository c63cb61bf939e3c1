"""Documents as their owner sees them: create, list, read, delete.

Runs in the user's transaction, so row-level security decides what exists;
the ownership filters here make the intent explicit and give clean 404s.
"""

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col

from src.domain.entity.models import Documents, UserChats

# Lists and status reads never need the (possibly large) text or file.
_WITHOUT_CONTENT = (
    defer(cast("QueryableAttribute[Any]", Documents.content), raiseload=True),
    defer(cast("QueryableAttribute[Any]", Documents.original), raiseload=True),
)


class DocumentGateway:
    """Reads and writes ``documents`` rows in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(  # noqa: PLR0913 - one keyword per column a user may set
        self,
        *,
        owner_id: uuid.UUID | None,
        title: str,
        content: str,
        visibility: str,
        chat_room_id: int | None = None,
        source: str | None = None,
        mime_type: str = "text/plain",
        metadata: dict[str, Any] | None = None,
        original: bytes | None = None,
        original_sha256: str | None = None,
    ) -> Documents:
        """Insert a pending document (the trigger hashes it and wakes the worker).

        An uploaded file to parse comes as ``original`` with empty ``content``.
        """
        statement = (
            insert(Documents)
            .values(
                owner_id=owner_id,
                title=title,
                content=content,
                visibility=visibility,
                chat_room_id=chat_room_id,
                source=source,
                mime_type=mime_type,
                metadata_=metadata or {},
                original=original,
                original_sha256=original_sha256,
            )
            .returning(Documents)
        )
        return (await self._session.scalars(statement)).one()

    async def find_same_content(
        self,
        *,
        owner_id: uuid.UUID,
        content_hash: str,
        visibility: str,
        chat_room_id: int | None,
    ) -> Documents | None:
        """The owner's document with this exact content and placement, if any."""
        return await self._find_same(
            col(Documents.content_hash) == content_hash,
            owner_id=owner_id,
            visibility=visibility,
            chat_room_id=chat_room_id,
        )

    async def find_same_file(
        self,
        *,
        owner_id: uuid.UUID,
        original_sha256: str,
        visibility: str,
        chat_room_id: int | None,
    ) -> Documents | None:
        """The owner's document uploaded from this exact file to this place."""
        return await self._find_same(
            col(Documents.original_sha256) == original_sha256,
            owner_id=owner_id,
            visibility=visibility,
            chat_room_id=chat_room_id,
        )

    async def _find_same(
        self,
        same: ColumnElement[bool],
        *,
        owner_id: uuid.UUID,
        visibility: str,
        chat_room_id: int | None,
    ) -> Documents | None:
        statement = (
            select(Documents)
            .options(*_WITHOUT_CONTENT)
            .where(
                same,
                col(Documents.owner_id) == owner_id,
                col(Documents.visibility) == visibility,
                col(Documents.chat_room_id).is_not_distinct_from(chat_room_id),
            )
            .order_by(col(Documents.id))
            .limit(1)
        )
        return (await self._session.scalars(statement)).first()

    async def list_owned(
        self, *, owner_id: uuid.UUID, limit: int, offset: int = 0
    ) -> Sequence[Documents]:
        """The owner's documents, newest first, without their content."""
        statement = (
            select(Documents)
            .options(*_WITHOUT_CONTENT)
            .where(col(Documents.owner_id) == owner_id)
            .order_by(col(Documents.id).desc())
            .limit(limit)
            .offset(offset)
        )
        return (await self._session.scalars(statement)).all()

    async def get_visible(self, document_id: int) -> Documents | None:
        """A document the caller may read (own, shared, or of their rooms)."""
        statement = (
            select(Documents)
            .options(*_WITHOUT_CONTENT)
            .where(col(Documents.id) == document_id)
        )
        return (await self._session.scalars(statement)).first()

    async def delete_owned(self, *, document_id: int, owner_id: uuid.UUID) -> bool:
        """Delete the owner's document and (by cascade) its chunks."""
        statement = (
            delete(Documents)
            .where(
                col(Documents.id) == document_id, col(Documents.owner_id) == owner_id
            )
            .returning(col(Documents.id))
        )
        return (await self._session.execute(statement)).first() is not None

    async def is_room_member(self, chat_room_id: int) -> bool:
        """Whether the caller belongs to the room (the check RLS makes on insert).

        The caller's own membership row, read under row-level security.
        """
        statement = select(
            exists().where(
                col(UserChats.chat_room_id) == chat_room_id,
                col(UserChats.user_id) == func.auth.uid(),
            )
        )
        return bool((await self._session.execute(statement)).scalar_one())
