"""Per-user rate limits on chat and ingestion: 429 with ``Retry-After``.

The limiter takes its clock from the caller, so time is moved by hand here;
no test sleeps.
"""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import RateLimitedError
from src.infra.rate_limiter import RateLimiter, RateLimiters
from src.settings import Settings
from tests.security.conftest import row_counts
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def refused(limiter: RateLimiter, user: uuid.UUID) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire(user)
    return caught.value


def test_a_burst_of_per_minute_passes_then_the_next_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(name="chat messages", per_minute=3, clock=clock)
    user = uuid.uuid4()
    for _ in range(3):
        limiter.acquire(user)

    error = refused(limiter, user)

    assert error.status_code == 429
    assert error.headers == {"Retry-After": "20"}
    assert error.message.startswith("Too many chat messages: at most 3 per minute")


def test_tokens_come_back_at_the_steady_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=6, clock=clock)
    user = uuid.uuid4()
    for _ in range(6):
        limiter.acquire(user)

    clock.advance(9.0)
    assert refused(limiter, user).headers["Retry-After"] == "1"
    clock.advance(1.0)
    limiter.acquire(user)
    assert refused(limiter, user).headers["Retry-After"] == "10"


def test_a_refused_request_does_not_cost_a_token(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=1, clock=clock)
    user = uuid.uuid4()
    limiter.acquire(user)
    for _ in range(5):
        refused(limiter, user)

    clock.advance(60.0)

    limiter.acquire(user)


def test_users_have_their_own_buckets(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=1, clock=clock)
    greedy, patient = uuid.uuid4(), uuid.uuid4()
    limiter.acquire(greedy)
    refused(limiter, greedy)

    limiter.acquire(patient)


def test_idle_users_are_forgotten_and_memory_is_capped(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=2, clock=clock, max_users=3)
    users = [uuid.uuid4() for _ in range(5)]
    for user in users:
        limiter.acquire(user)
    assert limiter.tracked_users() == 3

    clock.advance(60.0)
    limiter.acquire(users[0])

    assert limiter.tracked_users() == 1


def test_a_forgotten_user_is_not_refused_for_it(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=1, clock=clock, max_users=1)
    first, second = uuid.uuid4(), uuid.uuid4()
    limiter.acquire(first)
    limiter.acquire(second)  # evicts first: at worst it gets a fresh burst

    limiter.acquire(first)
    assert limiter.tracked_users() == 1


def test_a_clock_going_backwards_adds_no_tokens(clock: FakeClock) -> None:
    limiter = RateLimiter(name="x", per_minute=1, clock=clock)
    user = uuid.uuid4()
    limiter.acquire(user)

    clock.advance(-30.0)

    assert refused(limiter, user).headers["Retry-After"] == "60"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(name="x", per_minute=0)


@pytest.fixture
def small_limits(app: FastAPI, settings: Settings, clock: FakeClock) -> FakeClock:
    """Two chat turns and one upload a minute, on the fake clock."""
    app.state.rate_limiters = RateLimiters.from_settings(
        settings.model_copy(
            update={"rate_limit_chat_per_minute": 2, "rate_limit_ingest_per_minute": 1}
        ),
        clock=clock,
    )
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


async def test_the_default_limits_come_from_the_settings(
    app: FastAPI, settings: Settings
) -> None:
    limiters = app.state.rate_limiters

    assert limiters.chat.capacity == settings.rate_limit_chat_per_minute
    assert limiters.ingestion.capacity == settings.rate_limit_ingest_per_minute
