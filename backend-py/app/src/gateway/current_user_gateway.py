"""Makes sure the verified caller has a ``general_users`` row.

Users who signed up before the ``on_auth_user_created`` trigger existed (or whose
provisioning failed) get their rows on their first request. Ids already seen are
kept in a short-lived in-process cache so this is not a round trip per request.
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import func, select

from src.domain.errors import AuthenticationError
from src.infra.db_client import Database

KNOWN_USER_TTL_S = 60.0
"""How long a user id stays known without a look in the database (a write that
finds the user deleted checks again at once, see ``recheck``)."""

KNOWN_USER_MAX_ENTRIES = 10_000


class KnownUserCache:
    """User ids known to have a ``general_users`` row, each for ``ttl_s``.

    Bounded: when full, the oldest entry is dropped.
    """

    def __init__(
        self,
        *,
        ttl_s: float = KNOWN_USER_TTL_S,
        max_entries: int = KNOWN_USER_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[uuid.UUID, float] = OrderedDict()

    def __contains__(self, user_id: object) -> bool:
        expiry = self._expiry.get(user_id) if isinstance(user_id, uuid.UUID) else None
        return expiry is not None and expiry > self._clock()

    def add(self, user_id: uuid.UUID) -> None:
        """Remember ``user_id`` for the cache's TTL."""
        self._expiry.pop(user_id, None)
        self._expiry[user_id] = self._clock() + self._ttl_s
        while len(self._expiry) > self._max_entries:
            self._expiry.popitem(last=False)

    def discard(self, user_id: uuid.UUID) -> None:
        """Forget ``user_id``: its next request checks the database again."""
        self._expiry.pop(user_id, None)


class CurrentUserGateway:
    """Ensures the caller's ``general_users`` row; built once at start-up."""

    def __init__(self, database: Database, known_users: KnownUserCache) -> None:
        self._database = database
        self.known_users = known_users

    async def ensure_exists(self, user_id: uuid.UUID) -> None:
        """Create the caller's ``general_users`` row if it is missing.

        Runs ``public.ensure_general_user`` in a service transaction (the
        function is not callable by ``authenticated``).

        Raises:
            AuthenticationError: ``user_id`` is not in ``auth.users``.
        """
        if user_id in self.known_users:
            return
        async with self._database.service_transaction() as session:
            exists = await session.scalar(
                select(func.public.ensure_general_user(user_id))
            )
        if not exists:
            raise AuthenticationError("unknown user")
        self.known_users.add(user_id)

    async def recheck(self, user_id: uuid.UUID) -> None:
        """Check again, in the database, that the caller still exists.

        Called when a write refers to the caller's id and the database says it
        is gone (a foreign-key violation): a user deleted while their id was
        cached is then refused at once, not when the cache entry expires.

        Raises:
            AuthenticationError: ``user_id`` is no longer in ``auth.users``.
        """
        self.known_users.discard(user_id)
        await self.ensure_exists(user_id)
