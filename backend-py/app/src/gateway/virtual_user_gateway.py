"""AI personas (``virtual_users``): the admins' and the user's own."""

import uuid
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import UserProfiles, VirtualUsers
from src.domain.errors import NotFoundError
from src.gateway.chat_room_gateway import JoinedRoom


class VirtualUserGateway:
    """Personas visible to the caller (RLS: admin-provided ones and their own)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_visible(self, user_id: uuid.UUID) -> list[VirtualUsers]:
        """Admin personas (the default first), then the user's own."""
        statement = (
            select(VirtualUsers)
            .where(
                (col(VirtualUsers.owner_id).is_(None))
                | (col(VirtualUsers.owner_id) == user_id)
            )
            .order_by(
                col(VirtualUsers.owner_id).is_not(None),
                col(VirtualUsers.is_default).desc(),
                col(VirtualUsers.name),
                col(VirtualUsers.id),
            )
        )
        return list((await self.session.scalars(statement)).all())

    async def get(self, persona_id: int) -> VirtualUsers | None:
        """A persona the caller can read (RLS: admin, own, or their room's)."""
        params = {"persona_id": persona_id}
        return (await self.session.scalars(_PERSONA, params)).first()

    async def get_visible(
        self, persona_id: int, user_id: uuid.UUID
    ) -> VirtualUsers | None:
        """A persona the user may pick for a new room (admin or own), or None."""
        statement = select(VirtualUsers).where(
            col(VirtualUsers.id) == persona_id,
            (col(VirtualUsers.owner_id).is_(None))
            | (col(VirtualUsers.owner_id) == user_id),
        )
        return (await self.session.scalars(statement)).first()

    async def for_new_room(
        self, persona_id: int | None, user_id: uuid.UUID
    ) -> VirtualUsers | None:
        """The persona a new room gets: the one asked for, else the default.

        The default is the user's preferred persona, else the admins' default,
        else none (the built-in assistant answers).

        Raises:
            NotFoundError: The persona asked for is neither an admin's nor the
                user's own.
        """
        if persona_id is None:
            return await self._default_of(user_id)
        persona = await self.get_visible(persona_id, user_id)
        if persona is None:
            raise NotFoundError(f"Virtual user {persona_id} not found")
        return persona

    async def answering_in(self, joined: JoinedRoom) -> VirtualUsers | None:
        """The persona that answers in a room (read with it by the room gateway).

        The room's own; for a room without one (its persona was deleted), its
        creator's preferred persona, else the admins' default; else none.
        """
        if joined.persona is not None:
            return joined.persona
        return await self._default_of(joined.room.created_by)

    async def _default_of(self, user_id: uuid.UUID | None) -> VirtualUsers | None:
        """The user's preferred persona, else the admins' default, in one query."""
        params = {"user_id": user_id}
        return (await self.session.scalars(_DEFAULT_OF, params)).first()

    async def create(
        self, *, owner_id: uuid.UUID, fields: dict[str, Any]
    ) -> VirtualUsers:
        """A persona owned by ``owner_id``."""
        statement = (
            insert(VirtualUsers)
            .values(owner_id=owner_id, **fields)
            .returning(VirtualUsers)
        )
        return (await self.session.scalars(statement)).one()

    async def update(self, persona_id: int, changes: dict[str, Any]) -> VirtualUsers:
        """Apply ``changes`` and return the persona."""
        statement = (
            update(VirtualUsers)
            .where(col(VirtualUsers.id) == persona_id)
            .values(**changes)
            .returning(VirtualUsers)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one()

    async def delete(self, persona_id: int) -> None:
        """Delete a persona; rooms using it fall back to the default."""
        await self.session.execute(
            delete(VirtualUsers).where(col(VirtualUsers.id) == persona_id)
        )


# Statements of every chat turn, built once and bound per call.
_PERSONA = select(VirtualUsers).where(col(VirtualUsers.id) == bindparam("persona_id"))

_PREFERRED = (
    select(col(UserProfiles.default_virtual_user_id))
    .where(col(UserProfiles.user_id) == bindparam("user_id"))
    .scalar_subquery()
)
_ADMIN_DEFAULT = col(VirtualUsers.is_default) & col(VirtualUsers.owner_id).is_(None)
_DEFAULT_OF = (
    select(VirtualUsers)
    .where((col(VirtualUsers.id) == _PREFERRED) | _ADMIN_DEFAULT)
    .order_by(_ADMIN_DEFAULT)  # false first: the preferred one wins
    .limit(1)
)
"""The user's preferred persona, else the admins' default."""
