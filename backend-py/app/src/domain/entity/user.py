"""The authenticated caller, as verified from a Supabase access token."""

import uuid
from dataclasses import dataclass, field
from typing import Any


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
