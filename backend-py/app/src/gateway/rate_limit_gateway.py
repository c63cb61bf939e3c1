"""Per-user rate limits, kept in Postgres so that every API process shares them.

A token bucket per user and limit: ``per_minute`` tokens of burst, refilled
continuously at ``per_minute / 60`` per second. A request takes one token with
one upsert (``private.rate_limit_buckets``), in autocommit: concurrent requests
of one user queue on their row for that statement only. Without a token the
request is refused with the seconds until the next one (``Retry-After``).
"""

import math
import uuid
from collections.abc import Callable

from sqlalchemy import text

from src.domain.errors import RateLimitedError
from src.infra.db_client import Database

SECONDS_PER_MINUTE = 60.0

# One statement: the bucket refilled for the time since its last use, then one
# token taken when there is one. ``granted`` says whether it was.
_TAKE_TOKEN = text("""
with now as (
  select coalesce(cast(:now_s as float8),
                  extract(epoch from clock_timestamp())::float8) as s
)
insert into private.rate_limit_buckets as b
  (user_id, bucket, tokens, updated_at_s, granted)
select cast(:user_id as uuid), cast(:bucket as text),
       cast(:capacity as float8) - 1, now.s, true
  from now
on conflict (user_id, bucket) do update set
  tokens = least(:capacity, b.tokens
             + greatest(0, excluded.updated_at_s - b.updated_at_s) * :refill)
           - case when least(:capacity, b.tokens
                    + greatest(0, excluded.updated_at_s - b.updated_at_s) * :refill)
                  >= 1 then 1 else 0 end,
  updated_at_s = greatest(b.updated_at_s, excluded.updated_at_s),
  granted = least(:capacity, b.tokens
              + greatest(0, excluded.updated_at_s - b.updated_at_s) * :refill) >= 1
returning granted, tokens
""")


class RateLimitGateway:
    """Takes tokens of users' buckets; built once at start-up."""

    def __init__(
        self, database: Database, clock: Callable[[], float] | None = None
    ) -> None:
        """Use ``database``; the time is the database's unless ``clock`` is given.

        Args:
            database: The database holding the buckets.
            clock: Seconds since the epoch (tests pass a fake one).
        """
        self._database = database
        self._clock = clock

    async def take(
        self, user_id: uuid.UUID, *, bucket: str, per_minute: int, what: str
    ) -> None:
        """Take one token of ``user_id``'s ``bucket``.

        Args:
            user_id: The caller.
            bucket: Which limit (``chat``, ``ingestion``).
            per_minute: Requests allowed per minute (also the burst).
            what: What is limited, for the error message (``chat messages``).

        Raises:
            RateLimitedError: No token left; ``Retry-After`` says when one is
                back (429).
        """
        refill = per_minute / SECONDS_PER_MINUTE
        params = {
            "now_s": self._clock() if self._clock is not None else None,
            "user_id": user_id,
            "bucket": bucket,
            "capacity": float(per_minute),
            "refill": refill,
        }
        async with self._database.service_statement() as session:
            granted, tokens = (await session.execute(_TAKE_TOKEN, params)).one()
        if not granted:
            raise RateLimitedError(
                f"Too many {what}: at most {per_minute} per minute. Try again later.",
                retry_after_s=max(1, math.ceil((1.0 - tokens) / refill)),
            )
