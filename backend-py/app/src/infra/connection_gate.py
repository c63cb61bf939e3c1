"""Fair turns at the connection pool: first come, first served; finishing first.

SQLAlchemy's async pool waits on an ``asyncio.Queue``: a connection given back
goes to whichever coroutine asks next, and the waiter woken for it, finding
it gone, queues again at the back. Under load that is a lottery: on the load
benchmark (50 users, a pool of 8) a chat turn spent 60 ms on average waiting
for a connection, but up to 290 ms, and p99 latency was 2.3 times the mean.

The gate hands out the pool's connections in order of arrival, and directly
to the next waiter (nobody overtakes it). Work that finishes a request (saving
the answer of a turn whose question is already stored) is served before work
that starts one, so a request that has begun is not starved by new ones.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

UNBOUNDED = 1_000_000
"""Turns of a gate in front of a pool that never makes anyone wait."""


class ConnectionGate:
    """At most ``slots`` holders at a time, served in order, urgent ones first."""

    def __init__(self, slots: int, timeout_s: float) -> None:
        """Create the gate.

        Args:
            slots: How many may hold a connection at once (the pool's size
                plus its overflow).
            timeout_s: How long to wait for a turn before
                ``sqlalchemy.exc.TimeoutError`` (what the pool raises; a 503).
        """
        self._free = slots
        self._timeout_s = timeout_s
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> "ConnectionGate":
        """A gate as wide as the engine's pool, with the pool's timeout."""
        pool = engine.pool
        if isinstance(pool, QueuePool):
            overflow = max(pool._max_overflow, 0)  # no public accessor
            return cls(pool.size() + overflow, pool.timeout())
        return cls(UNBOUNDED, 30.0)  # NullPool, StaticPool: no queue to keep fair

    @property
    def waiting(self) -> int:
        """How many are waiting for a turn."""
        return len(self._urgent) + len(self._normal)

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold a turn for the block.

        Args:
            urgent: Served before every waiter that is not urgent.

        Raises:
            sqlalchemy.exc.TimeoutError: No turn came within the timeout.
        """
        await self._acquire(urgent=urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, *, urgent: bool) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            async with asyncio.timeout(self._timeout_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn came as we gave up: pass it on
            else:  # still queued, unless a release already dropped it
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolTimeoutError(
                    f"no database connection within {self._timeout_s:g} s "
                    f"({self.waiting} waiting)"
                ) from exc
            raise

    def _release(self) -> None:
        """Hand the turn to the next waiter, or free it."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1
