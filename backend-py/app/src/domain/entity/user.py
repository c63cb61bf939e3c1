"""The authenticated caller, and the ``/api/me`` request and response models."""

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from src.domain.entity.request import RequestModel, RowId


@dataclass(frozen=True)
class CurrentUser:
    """A user whose token was verified (signature, exp, aud, iss, sub, role).

    Attributes:
        id: ``sub`` of the token, the ``auth.users`` id.
        email: The token's email claim, when present.
        role: The Postgres role the token names (``authenticated``).
        is_anonymous: Whether the user signed in anonymously.
        claims: Every verified claim; set as ``request.jwt.claims`` for RLS.
    """

    id: uuid.UUID
    email: str | None
    role: str
    is_anonymous: bool = False
    claims: dict[str, Any] = field(default_factory=dict)


ACCOUNT_NAME_PATTERN = re.compile(r"^[a-z0-9_]{3,32}$")
LANGUAGE_TAG_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
ACCOUNT_NAME_RULE = "account_name must be 3-32 characters of a-z, 0-9 and _"


def _valid_account_name(value: str) -> str:
    name = value.strip().lower()
    if not ACCOUNT_NAME_PATTERN.fullmatch(name):
        raise ValueError(ACCOUNT_NAME_RULE)
    return name


AccountName = Annotated[str, AfterValidator(_valid_account_name)]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class ProfileOut(BaseModel):
    """The caller's preferences (``user_profiles``)."""

    # Fields with a default are still sent: required in the response schema.
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    default_virtual_user_id: int | None = None
    preferred_language: str | None = None
    bio: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class MeOut(BaseModel):
    """``GET /api/me``: the caller's general user and profile."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str | None
    display_name: str
    account_name: str
    avatar_url: str | None
    created_at: datetime
    updated_at: datetime
    profile: ProfileOut


class MeUpdate(RequestModel):
    """``PATCH /api/me``: only the fields sent change; null clears a nullable one."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | SkipJsonSchema[None] = None
    account_name: AccountName | SkipJsonSchema[None] = None
    avatar_url: HttpUrl | None = None
    default_virtual_user_id: RowId | None = None
    preferred_language: str | None = Field(
        default=None, pattern=LANGUAGE_TAG_PATTERN, max_length=35
    )
    bio: str | None = Field(default=None, max_length=2000)
    settings: dict[str, Any] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _required_fields_are_not_null(self) -> Self:
        for name in ("display_name", "account_name", "settings"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def general_user_changes(self) -> dict[str, Any]:
        """The ``general_users`` columns to set."""
        return self.model_dump(
            include={"display_name", "account_name", "avatar_url"},
            exclude_unset=True,
            mode="json",
        )

    def profile_changes(self) -> dict[str, Any]:
        """The ``user_profiles`` columns to set."""
        return self.model_dump(
            include={
                "default_virtual_user_id",
                "preferred_language",
                "bio",
                "settings",
            },
            exclude_unset=True,
        )
