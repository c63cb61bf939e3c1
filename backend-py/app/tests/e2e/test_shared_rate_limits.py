"""Two API processes on one database enforce one rate limit together."""

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import ApiServer


@pytest.fixture(scope="module")
def two_servers(e2e_database_url: str) -> Iterator[tuple[ApiServer, ApiServer]]:
    servers = [
        ApiServer(e2e_database_url, RATE_LIMIT_CHAT_PER_MINUTE="3") for _ in range(2)
    ]
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def test_a_users_chat_budget_is_shared_by_every_process(
    two_servers: tuple[ApiServer, ApiServer],
) -> None:
    first, second = two_servers
    _, headers = first.new_user()
    statuses = []
    for server in (first, second, first, second, first, second):
        response = httpx.post(
            f"{server.base_url}/api/chat",
            json={"message": "How many may I send?"},
            headers=headers,
            timeout=30,
        )
        statuses.append(response.status_code)
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429]
    assert statuses[:3] == [200, 200, 200]
