"""The connection gate: turns in order of arrival, finishing work first."""

import asyncio
import contextlib

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from src.infra.connection_gate import ConnectionGate
from src.infra.db_client import Database, async_url, create_engine
from tests.conftest import make_settings


async def _hold(
    gate: ConnectionGate, name: str, order: list[str], *, urgent: bool = False
) -> None:
    async with gate.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def _holding(gate: ConnectionGate, release: asyncio.Event) -> asyncio.Task[None]:
    """A task that takes a turn (it has it on return) and keeps it until released."""

    async def holder() -> None:
        async with gate.turn():
            await release.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    return task


async def _queue_behind_holder(
    gate: ConnectionGate, names: list[str], order: list[str], urgent: set[str]
) -> None:
    """Start ``names`` in this order while the only turn is held, then free it."""
    release = asyncio.Event()
    tasks = [await _holding(gate, release)]
    for name in names:
        tasks.append(
            asyncio.create_task(_hold(gate, name, order, urgent=name in urgent))
        )
        await asyncio.sleep(0)
    assert gate.waiting == len(names)
    release.set()
    await asyncio.gather(*tasks)


async def test_waiters_are_served_in_order_of_arrival() -> None:
    gate = ConnectionGate(1, timeout_s=5)
    order: list[str] = []
    await _queue_behind_holder(gate, ["a", "b", "c", "d"], order, urgent=set())
    assert order == ["a", "b", "c", "d"]


async def test_urgent_waiters_go_first_in_their_own_order() -> None:
    gate = ConnectionGate(1, timeout_s=5)
    order: list[str] = []
    await _queue_behind_holder(
        gate,
        ["new1", "finish1", "new2", "finish2"],
        order,
        urgent={"finish1", "finish2"},
    )
    assert order == ["finish1", "finish2", "new1", "new2"]


async def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    gate = ConnectionGate(1, timeout_s=5)
    order: list[str] = []
    release = asyncio.Event()

    async def holder_coming_back() -> None:
        async with gate.turn():
            await release.wait()
        # Asks again in the same step as giving the turn back, before the
        # waiter woken for it has run: it must queue behind that waiter.
        await _hold(gate, "newcomer", order)

    held = asyncio.create_task(holder_coming_back())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(gate, "waiter", order))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, waiter)
    assert order == ["waiter", "newcomer"]


async def test_no_turn_within_the_timeout_is_the_pool_timeout_error() -> None:
    gate = ConnectionGate(1, timeout_s=0.05)
    async with gate.turn():
        with pytest.raises(PoolTimeoutError, match="no database connection"):
            async with gate.turn():
                pytest.fail("two turns at once")
        assert gate.waiting == 0
    async with gate.turn():  # the turn was given back, the timed-out waiter left
        pass


async def test_a_cancelled_waiter_leaves_and_the_turn_goes_on() -> None:
    gate = ConnectionGate(1, timeout_s=5)
    order: list[str] = []
    release = asyncio.Event()
    held = await _holding(gate, release)
    cancelled = asyncio.create_task(_hold(gate, "cancelled", order))
    served = asyncio.create_task(_hold(gate, "served", order))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(held, served)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert order == ["served"]
    assert gate.waiting == 0


async def test_a_turn_given_as_the_waiter_is_cancelled_is_passed_on() -> None:
    gate = ConnectionGate(1, timeout_s=5)
    order: list[str] = []
    release = asyncio.Event()
    waiters: list[asyncio.Task[None]] = []

    async def holder() -> None:
        async with gate.turn():
            await release.wait()
        # Same step as the release: the turn went to the first waiter, which
        # has not run yet.
        waiters[0].cancel()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(_hold(gate, "unlucky", order)))
    waiters.append(asyncio.create_task(_hold(gate, "after", order)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, waiters[1])
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert order == ["after"]
    assert gate.waiting == 0


async def test_the_database_gate_is_as_wide_as_its_pool(database_url: str) -> None:
    engine: AsyncEngine = create_engine(
        database_url,
        make_settings(
            database_url, db_pool_size=2, db_max_overflow=1, db_pool_timeout_s=0.2
        ),
    )
    database = Database(engine=engine)
    try:
        async with database.gate.turn(), database.gate.turn(), database.gate.turn():
            with pytest.raises(PoolTimeoutError):
                await database.ping()
        await database.ping()
    finally:
        await engine.dispose()


async def test_a_pool_without_a_bound_gets_a_gate_without_one(
    database_url: str,
) -> None:
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        gate = ConnectionGate.for_engine(engine)
        async with contextlib.AsyncExitStack() as turns:
            for _ in range(100):  # far more than any pool's size
                await turns.enter_async_context(gate.turn())
            assert gate.waiting == 0
    finally:
        await engine.dispose()
