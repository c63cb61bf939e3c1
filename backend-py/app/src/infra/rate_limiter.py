"""Per-user rate limits for chat and ingestion, in memory, per process.

Why in memory and not in Postgres:

* **Cost.** The check runs on every chat turn, the hottest path of the API. A
  token bucket in a dict is a few dictionary operations with no ``await``; a
  counter row in Postgres is an extra round trip and an ``UPDATE`` per request,
  and concurrent requests of one user queue on that row's lock.
* **Purpose.** The limits protect the LLM and embedding budgets and the worker
  from one user's flood; they are not a billing quota. Being approximate is
  acceptable, being slow or being one more thing that fails when the database
  is down is not (a 503 from the limiter would hide the real answer).
* **Trade-off, accepted.** Each process keeps its own buckets: with ``WORKERS``
  processes a user may get up to ``WORKERS`` times the limit (connections, not
  users, are spread over workers), and a restart forgets the buckets. When one
  exact limit across processes or hosts matters, enforce it in front of the API
  (the gateway or reverse proxy) or move :class:`RateLimiter` onto a shared store;
  the dependency that calls it would not change.

The algorithm is a token bucket per user: ``per_minute`` tokens of burst,
refilled continuously at ``per_minute / 60`` per second. A request takes one
token; without one it is refused with the seconds until the next token
(``Retry-After``). Memory is bounded: buckets are kept in least-recently-used
order, those idle long enough to be full again are dropped (a full bucket is
the same as no bucket), and at most ``max_users`` are kept (the oldest goes
first). Every step is O(1) amortised.
"""

import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from starlette.applications import Starlette

from src.domain.errors import RateLimitedError
from src.settings import Settings

DEFAULT_MAX_USERS = 100_000
"""Buckets kept per limiter; about 100 bytes each."""

SECONDS_PER_MINUTE = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


class RateLimiter:
    """A token bucket per user: ``per_minute`` requests of burst, then a steady rate.

    Not thread-safe, and needs not be: it is used from the event loop only and
    :meth:`acquire` never awaits, so concurrent requests cannot interleave in it.
    """

    def __init__(
        self,
        *,
        name: str,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = DEFAULT_MAX_USERS,
    ) -> None:
        """Create an empty limiter.

        Args:
            name: What is limited, for the error message (``chat messages``).
            per_minute: Requests a user may make per minute (also the burst).
            clock: Seconds from a monotonic clock (tests pass a fake one).
            max_users: The most buckets kept at once.
        """
        if per_minute < 1 or max_users < 1:
            raise ValueError("per_minute and max_users must be at least 1")
        self.name = name
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / SECONDS_PER_MINUTE
        self.max_users = max_users
        self._clock = clock
        self._buckets: OrderedDict[uuid.UUID, _Bucket] = OrderedDict()

    def acquire(self, user_id: uuid.UUID) -> None:
        """Take one token of ``user_id``'s bucket.

        Raises:
            RateLimitedError: The bucket is empty; ``Retry-After`` says when a
                token is back (429).
        """
        now = self._clock()
        self._forget_full_buckets(now)
        bucket = self._bucket(user_id, now)
        if bucket.tokens < 1.0:
            raise RateLimitedError(
                f"Too many {self.name}: at most {int(self.capacity)} per minute. "
                "Try again later.",
                retry_after_s=self._seconds_until_a_token(bucket),
            )
        bucket.tokens -= 1.0

    def tracked_users(self) -> int:
        """How many buckets are held (the rest are full)."""
        return len(self._buckets)

    def _bucket(self, user_id: uuid.UUID, now: float) -> _Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = _Bucket(tokens=self.capacity, updated_at=now)
            self._buckets[user_id] = bucket
            if len(self._buckets) > self.max_users:
                self._buckets.popitem(last=False)
            return bucket
        self._buckets.move_to_end(user_id)
        elapsed = max(0.0, now - bucket.updated_at)
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.refill_per_s)
        bucket.updated_at = now
        return bucket

    def _forget_full_buckets(self, now: float) -> None:
        # Buckets are in least-recently-used order: stop at the first one that
        # may still be short of tokens.
        refill_s = self.capacity / self.refill_per_s
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated_at < refill_s:
                return
            self._buckets.popitem(last=False)

    def _seconds_until_a_token(self, bucket: _Bucket) -> int:
        missing = 1.0 - bucket.tokens
        return max(1, math.ceil(missing / self.refill_per_s))


@dataclass(frozen=True)
class RateLimiters:
    """The limiters of the API, built once at start-up.

    Attributes:
        chat: ``POST /api/chat`` and ``/api/chat/stream`` (one bucket for both).
        ingestion: ``POST /api/documents``.
    """

    chat: RateLimiter
    ingestion: RateLimiter

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> "RateLimiters":
        """The limiters with the configured per-minute limits."""
        return cls(
            chat=RateLimiter(
                name="chat messages",
                per_minute=settings.rate_limit_chat_per_minute,
                clock=clock,
            ),
            ingestion=RateLimiter(
                name="document uploads",
                per_minute=settings.rate_limit_ingest_per_minute,
                clock=clock,
            ),
        )


def rate_limiters(app: Starlette) -> RateLimiters:
    """The limiters :func:`src.runtime.runtime` put on the app's state."""
    return cast(RateLimiters, app.state.rate_limiters)
