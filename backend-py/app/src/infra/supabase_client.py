"""supabase-py where the Supabase API is the right tool: the Auth admin API.

Used by ``make token`` against a real project (``SUPABASE_URL`` and
``SUPABASE_SERVICE_ROLE_KEY`` set): users are created by Supabase Auth itself
instead of by writing to ``auth.users``. Request handling never calls it; tokens
are verified locally (:mod:`src.middleware.auth_middleware`).
"""

import itertools
import uuid

from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from src.settings import Settings

USERS_PER_PAGE = 200
EMAIL_TAKEN_STATUS = 422


class SupabaseAdmin:
    """Auth admin calls with the service role key (server side only)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> "SupabaseAdmin | None":
        """The admin client, or None unless the URL and service role key are set."""
        key = settings.supabase_service_role_key
        if not settings.supabase_url or key is None:
            return None
        options = ClientOptions(auto_refresh_token=False, persist_session=False)
        client = create_client(settings.supabase_url, key.get_secret_value(), options)
        return cls(client)

    def ensure_user(self, email: str) -> uuid.UUID:
        """The id of the user with ``email``, created (email confirmed) if missing.

        Raises:
            AuthApiError: Supabase Auth refused for another reason.
        """
        email = email.strip().lower()
        try:
            response = self._client.auth.admin.create_user(
                {"email": email, "email_confirm": True}
            )
        except AuthApiError as exc:
            existing = (
                self.find_user(email) if exc.status == EMAIL_TAKEN_STATUS else None
            )
            if existing is None:
                raise
            return existing
        return uuid.UUID(response.user.id)

    def find_user(self, email: str) -> uuid.UUID | None:
        """The id of the user with ``email``, looked up page by page."""
        wanted = email.lower()
        for page in itertools.count(1):
            users = self._client.auth.admin.list_users(
                page=page, per_page=USERS_PER_PAGE
            )
            found = next(
                (u.id for u in users if (u.email or "").lower() == wanted), None
            )
            if found is not None or len(users) < USERS_PER_PAGE:
                return None if found is None else uuid.UUID(found)
        return None  # pragma: no cover - itertools.count never ends
