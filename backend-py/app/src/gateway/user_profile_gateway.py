"""The caller's ``general_users`` and ``user_profiles`` rows, read and changed as them.

Runs on the request's user transaction: row-level security lets a user update
only their own rows and choose only personas they can see.
"""

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from src.domain.entity.models import GeneralUsers, UserProfiles, VirtualUsers
from src.domain.errors import ConflictError, NotFoundError

ACCOUNT_NAME_CONSTRAINT = "general_users_account_name_key"


class UserProfileGateway:
    """Reads and updates one user's general user and profile."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_general_user(self, user_id: uuid.UUID) -> GeneralUsers:
        """The user's ``general_users`` row.

        Raises:
            NotFoundError: There is no such row.
        """
        statement = select(GeneralUsers).where(col(GeneralUsers.id) == user_id)
        row = (await self.session.scalars(statement)).first()
        if row is None:
            raise NotFoundError("User not found")
        return row

    async def get_profile(self, user_id: uuid.UUID) -> UserProfiles | None:
        """The user's ``user_profiles`` row, when it exists."""
        statement = select(UserProfiles).where(col(UserProfiles.user_id) == user_id)
        return (await self.session.scalars(statement)).first()

    async def persona_is_visible(self, persona_id: int) -> bool:
        """Whether the caller may use this persona (row-level security decides)."""
        statement = select(col(VirtualUsers.id)).where(
            col(VirtualUsers.id) == persona_id
        )
        return (await self.session.scalars(statement)).first() is not None

    async def update_general_user(
        self, user_id: uuid.UUID, changes: dict[str, Any]
    ) -> None:
        """Set columns of the user's ``general_users`` row.

        Raises:
            ConflictError: The account name belongs to another user.
        """
        statement = (
            update(GeneralUsers)
            .where(col(GeneralUsers.id) == user_id)
            .values(**changes)
        )
        try:
            async with self.session.begin_nested():
                await self.session.execute(statement)
        except IntegrityError as exc:
            if _violated_constraint(exc) == ACCOUNT_NAME_CONSTRAINT:
                raise ConflictError(
                    f"The account name {changes['account_name']!r} is already taken"
                ) from exc
            raise

    async def update_profile(self, user_id: uuid.UUID, changes: dict[str, Any]) -> None:
        """Set columns of the user's ``user_profiles`` row.

        Raises:
            NotFoundError: The user has no profile row.
        """
        statement = (
            update(UserProfiles)
            .where(col(UserProfiles.user_id) == user_id)
            .values(**changes)
            .returning(col(UserProfiles.user_id))
        )
        if (await self.session.scalars(statement)).first() is None:
            raise NotFoundError("Profile not found")


def _violated_constraint(exc: IntegrityError) -> str | None:
    # SQLAlchemy wraps asyncpg's error, which names the constraint.
    driver_error = getattr(exc.orig, "__cause__", None)
    return getattr(driver_error, "constraint_name", None)
