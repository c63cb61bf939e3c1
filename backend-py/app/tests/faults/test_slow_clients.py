"""Slow or oversized requests cost their sender, never the other users.

A real uvicorn process (``python -m src.cli.serve``), clients on raw sockets:
uploads that trickle their body hold a socket each, not a pooled connection.
"""

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.faults.conftest import FaultServer

pytestmark = pytest.mark.e2e

POOL_SIZE = 6
BOUNDARY = "trickle"


@pytest.fixture(scope="module")
def server(faults_database_url: str) -> Iterator[FaultServer]:
    api = FaultServer(
        faults_database_url,
        WORKER_ENABLED="false",
        DB_POOL_SIZE=str(POOL_SIZE),
        DB_POOL_TIMEOUT_S="1",
        BODY_READ_TIMEOUT_S="600",
    )
    api.start()
    yield api
    api.stop()


def start_upload(server: FaultServer, headers: dict[str, str]) -> socket.socket:
    """A multipart upload whose head and first body bytes are sent, not the rest."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="slow.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    lines = [
        "POST /api/documents HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "Content-Length: 4096",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n" + head + "a").encode())
    return sock


def response_of(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body the server sent on this socket."""
    sock.settimeout(30)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_six_trickling_uploads_do_not_keep_another_user_from_the_database(
    server: FaultServer,
) -> None:
    with ExitStack() as stack:
        for _ in range(POOL_SIZE):
            _, headers = server.new_user()
            stack.enter_context(start_upload(server, headers))
        # Every upload is past its head; the others' requests come after them.
        _, headers = server.new_user()
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            listed = [client.get("/api/documents") for _ in range(POOL_SIZE + 1)]
            room = client.post("/api/chat-rooms", json={"title": "served"})
            ready = client.get("/health/ready")

    assert [r.status_code for r in listed] == [200] * (POOL_SIZE + 1)
    assert room.status_code == 201, room.text
    assert ready.status_code == 200


def test_a_body_that_does_not_arrive_in_time_is_408(
    faults_database_url: str,
) -> None:
    api = FaultServer(
        faults_database_url, WORKER_ENABLED="false", BODY_READ_TIMEOUT_S="0.5"
    )
    api.start()
    try:
        _, headers = api.new_user()
        with start_upload(api, headers) as sock:
            status, body = response_of(sock)
    finally:
        api.stop()

    assert status == 408
    assert body["error"] == "request_timeout"
    assert set(body) == {"error", "message", "request_id"}


@pytest.mark.parametrize("header_bytes", [64 * 1024, 2 * 1024 * 1024])
def test_headers_over_max_header_bytes_are_431(
    server: FaultServer, header_bytes: int
) -> None:
    _, headers = server.new_user()
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        big = client.get("/api/documents", headers={"X-Padding": "p" * header_bytes})
        normal = client.get("/api/documents")

    assert big.status_code == 431
    assert big.json()["error"] == "request_header_fields_too_large"
    assert normal.status_code == 200
