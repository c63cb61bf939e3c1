"""CurrentUserGateway and its cache of known user ids."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import AuthenticationError
from src.gateway.current_user_gateway import CurrentUserGateway, KnownUserCache
from src.infra.db_client import Database
from tests.factories import create_user


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def has_general_user(connection: AsyncConnection, user_id: uuid.UUID) -> bool:
    row = await connection.execute(
        text("select count(*) from general_users where id = :id"), {"id": user_id}
    )
    return bool(row.scalar_one() == 1)


async def delete_general_user(connection: AsyncConnection, user_id: uuid.UUID) -> None:
    await connection.execute(
        text("delete from general_users where id = :id"), {"id": user_id}
    )


def test_cache_forgets_after_its_ttl() -> None:
    clock = FakeClock()
    cache = KnownUserCache(ttl_s=60, clock=clock)
    user_id = uuid.uuid4()
    cache.add(user_id)
    clock.now = 59.9
    assert user_id in cache
    clock.now = 60
    assert user_id not in cache


def test_cache_drops_the_oldest_entry_when_full() -> None:
    cache = KnownUserCache(max_entries=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user_id in (first, second, third):
        cache.add(user_id)
    assert first not in cache
    assert second in cache
    assert third in cache
    assert "not-a-uuid" not in cache


async def test_ensure_exists_creates_a_missing_general_user(
    database: Database, connection: AsyncConnection
) -> None:
    user_id = await create_user(connection)
    await delete_general_user(connection, user_id)
    await CurrentUserGateway(database, KnownUserCache()).ensure_exists(user_id)
    assert await has_general_user(connection, user_id)


async def test_ensure_exists_refuses_a_user_not_in_auth_users(
    database: Database,
) -> None:
    cache = KnownUserCache()
    stranger = uuid.uuid4()
    with pytest.raises(AuthenticationError, match="unknown user"):
        await CurrentUserGateway(database, cache).ensure_exists(stranger)
    assert stranger not in cache


async def test_ensure_exists_checks_again_once_the_cache_expired(
    database: Database, connection: AsyncConnection
) -> None:
    clock = FakeClock()
    gateway = CurrentUserGateway(database, KnownUserCache(ttl_s=60, clock=clock))
    user_id = await create_user(connection)
    await gateway.ensure_exists(user_id)
    await delete_general_user(connection, user_id)

    await gateway.ensure_exists(user_id)
    assert not await has_general_user(connection, user_id)

    clock.now = 61
    await gateway.ensure_exists(user_id)
    assert await has_general_user(connection, user_id)
