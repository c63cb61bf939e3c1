"""Per-user rate limits on chat and ingestion: 429 with ``Retry-After``.

The buckets live in the database (every API process shares them); the gateway
takes its clock from the caller here, so time is moved by hand and no test
sleeps.
"""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import RateLimitedError
from src.gateway.rate_limit_gateway import RateLimitGateway
from src.infra.db_client import Database
from src.settings import Settings
from tests.security.conftest import row_counts
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def refused(
    limits: RateLimitGateway, user: uuid.UUID, per_minute: int
) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        await take(limits, user, per_minute)
    return caught.value


async def take(limits: RateLimitGateway, user: uuid.UUID, per_minute: int) -> None:
    await limits.take(user, bucket="chat", per_minute=per_minute, what="chat messages")


@pytest.fixture
def limits(database: Database, clock: FakeClock) -> RateLimitGateway:
    return RateLimitGateway(database, clock=clock)


async def test_a_burst_of_per_minute_passes_then_the_next_waits(
    limits: RateLimitGateway,
) -> None:
    user = uuid.uuid4()
    for _ in range(3):
        await take(limits, user, 3)

    error = await refused(limits, user, 3)

    assert error.status_code == 429
    assert error.headers == {"Retry-After": "20"}
    assert error.message.startswith("Too many chat messages: at most 3 per minute")


async def test_tokens_come_back_at_the_steady_rate(
    limits: RateLimitGateway, clock: FakeClock
) -> None:
    user = uuid.uuid4()
    for _ in range(6):
        await take(limits, user, 6)

    clock.advance(9.0)
    assert (await refused(limits, user, 6)).headers["Retry-After"] == "1"
    clock.advance(1.0)
    await take(limits, user, 6)
    assert (await refused(limits, user, 6)).headers["Retry-After"] == "10"


async def test_a_refused_request_does_not_cost_a_token(
    limits: RateLimitGateway, clock: FakeClock
) -> None:
    user = uuid.uuid4()
    await take(limits, user, 1)
    for _ in range(5):
        await refused(limits, user, 1)
    clock.advance(60.0)
    await take(limits, user, 1)


async def test_users_and_limits_have_their_own_buckets(
    limits: RateLimitGateway,
) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    await take(limits, user, 1)
    await refused(limits, user, 1)
    await take(limits, other, 1)
    await limits.take(user, bucket="ingestion", per_minute=1, what="uploads")


async def test_a_clock_going_backwards_adds_no_tokens(
    limits: RateLimitGateway, clock: FakeClock
) -> None:
    user = uuid.uuid4()
    await take(limits, user, 1)

    clock.advance(-30.0)

    assert (await refused(limits, user, 1)).headers["Retry-After"] == "60"


async def test_two_processes_share_one_budget(
    database: Database, clock: FakeClock
) -> None:
    # Two gateways, as two API processes on one database would hold.
    first, second = RateLimitGateway(database, clock), RateLimitGateway(database, clock)
    user = uuid.uuid4()
    await take(first, user, 2)
    await take(second, user, 2)
    await refused(first, user, 2)
    await refused(second, user, 2)


async def test_without_a_clock_the_database_keeps_the_time(database: Database) -> None:
    limits = RateLimitGateway(database)
    user = uuid.uuid4()
    await take(limits, user, 1)
    assert (await refused(limits, user, 1)).headers["Retry-After"] in {"59", "60"}


@pytest.fixture
def small_limits(app: FastAPI, settings: Settings, clock: FakeClock) -> FakeClock:
    """Two chat turns and one upload a minute, on the fake clock."""
    app.state.settings = settings.model_copy(
        update={"rate_limit_chat_per_minute": 2, "rate_limit_ingest_per_minute": 1}
    )
    app.state.rate_limits = RateLimitGateway(app.state.database, clock=clock)
    return clock


async def test_the_third_chat_turn_in_a_minute_is_429_and_stores_nothing(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    small_limits: FakeClock,
) -> None:
    first = await auth_client.post("/api/chat", json={"message": "one"})
    room_id = first.json()["chat_room_id"]
    second = await auth_client.post(
        "/api/chat/stream", json={"message": "two", "chat_room_id": room_id}
    )
    assert (first.status_code, second.status_code) == (200, 200)
    before = await row_counts(connection)

    third = await auth_client.post(
        "/api/chat", json={"message": "three", "chat_room_id": room_id}
    )
    streamed = await auth_client.post(
        "/api/chat/stream", json={"message": "three", "chat_room_id": room_id}
    )

    for response in (third, streamed):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "30"
        assert response.json()["error"] == "rate_limited"
    assert await row_counts(connection) == before
    small_limits.advance(30.0)
    later = await auth_client.post(
        "/api/chat", json={"message": "three", "chat_room_id": room_id}
    )
    assert later.status_code == 200, later.text


async def test_one_users_flood_does_not_limit_another(
    auth_client: httpx.AsyncClient,
    stranger_client: httpx.AsyncClient,
    small_limits: FakeClock,
) -> None:
    for _ in range(2):
        await auth_client.post("/api/chat", json={"message": "spam"})
    assert (
        await auth_client.post("/api/chat", json={"message": "x"})
    ).status_code == 429

    other = await stranger_client.post("/api/chat", json={"message": "hello"})

    assert other.status_code == 200, other.text


async def test_the_second_upload_in_a_minute_is_429_and_reading_is_not_limited(
    auth_client: httpx.AsyncClient,
    connection: AsyncConnection,
    small_limits: FakeClock,
) -> None:
    first = await auth_client.post(
        "/api/documents", json={"title": "a", "content": "first"}
    )
    assert first.status_code == 202
    before = await row_counts(connection)

    second = await auth_client.post(
        "/api/documents", files={"file": ("b.txt", b"second", "text/plain")}
    )
    listed = await auth_client.get("/api/documents")
    searched = await auth_client.post("/api/search", json={"query": "first"})

    assert second.status_code == 429
    assert second.headers["retry-after"] == "60"
    assert await row_counts(connection) == before
    assert (listed.status_code, searched.status_code) == (200, 200)


async def test_a_message_refused_for_its_length_costs_no_token(
    auth_client: httpx.AsyncClient,
    app: FastAPI,
    small_limits: FakeClock,
) -> None:
    too_long = "x" * (app.state.settings.max_message_chars + 1)
    for _ in range(3):
        refused = await auth_client.post("/api/chat", json={"message": too_long})
        assert refused.status_code == 422
    invalid = await auth_client.post("/api/chat", json={"message": ""})
    assert invalid.status_code == 422
    for _ in range(2):
        ok = await auth_client.post("/api/chat", json={"message": "fine"})
        assert ok.status_code == 200, ok.text
