"""Hostile uploads against a real server: parsed out of the API, bounded.

A deeply nested HTML file, a PDF compression bomb and a PDF whose pages share
one huge text stream are uploaded to ``python -m src.cli.serve`` with its
worker running. ``/health`` answers while the worker's child parses, each
document ends ``failed`` with its reason, and the API's memory stays put.
"""

from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.faults.conftest import FaultServer, wait_until
from tests.knowledge.samples import (
    deep_html,
    pdf_bomb,
    pdf_sharing_one_stream,
    text_stream,
)

pytestmark = pytest.mark.e2e

PARSE_TIMEOUT_S = 6
HEALTH_TIMEOUT_S = 5.0
"""A bounded wait: a stalled event loop would not answer within the parse."""
RSS_GROWTH_BOUND = 60 * 2**20
"""Six bombs parsed in the API's process left about 70 MB each behind."""


@pytest.fixture(scope="module")
def server(faults_database_url: str) -> Iterator[FaultServer]:
    api = FaultServer(
        faults_database_url,
        PARSE_TIMEOUT_S=str(PARSE_TIMEOUT_S),
        WORKER_POLL_INTERVAL_S="0.5",
    )
    api.start()
    yield api
    api.stop()


def upload(
    client: httpx.Client, headers: dict[str, str], name: str, data: bytes
) -> int:
    response = client.post(
        "/api/documents", files={"file": (name, data)}, headers=headers
    )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def state(server: FaultServer, document_id: int) -> tuple[object, ...]:
    [row] = server.query(
        "select status, error, attempts from documents where id = %s", document_id
    )
    return row


def api_rss(server: FaultServer) -> int:
    assert server.process is not None
    return int(psutil.Process(server.process.pid).memory_info().rss)


def test_health_answers_while_a_deep_html_file_is_parsed(
    server: FaultServer,
) -> None:
    _, headers = server.new_user()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        document = upload(client, headers, "deep.html", deep_html(100_000))
        wait_until(lambda: state(server, document)[0] == "processing", timeout=30)

        health = client.get("/health", timeout=HEALTH_TIMEOUT_S)

        assert health.status_code == 200
        # Answered during the parse: the document is still being parsed.
        assert state(server, document)[0] == "processing"
        _, error, attempts = wait_until(
            lambda: (s := state(server, document))[0] == "failed" and s,
            timeout=PARSE_TIMEOUT_S + 30,
        )
    assert error == f"parsing 'deep.html' took longer than {PARSE_TIMEOUT_S} s"
    assert attempts == 1


def test_pdf_bombs_fail_and_leave_no_memory_behind(server: FaultServer) -> None:
    _, headers = server.new_user()
    bombs = {
        "inflate.pdf": pdf_bomb(74_000_000),
        "shared.pdf": pdf_sharing_one_stream(
            text_stream(198_000), pages=100, deflate=True
        ),
    }
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        first = upload(client, headers, "warm-up.pdf", bombs["inflate.pdf"] + b"%w")
        wait_until(lambda: state(server, first)[0] == "failed", timeout=60)
        before = api_rss(server)
        documents = {
            # A comment after the end makes each file new (no deduplication).
            upload(client, headers, f"{n}-{name}", data + b"%%%d" % n): name
            for n in range(3)
            for name, data in bombs.items()
        }
        for document in documents:
            wait_until(lambda d=document: state(server, d)[0] == "failed", timeout=60)
        assert client.get("/health", timeout=HEALTH_TIMEOUT_S).status_code == 200
    errors = {documents[d]: str(state(server, d)[1]) for d in documents}
    assert errors["inflate.pdf"].startswith("the PDF is over a parsing limit")
    assert errors["shared.pdf"] == "page 1 holds more than 100000 characters of text"
    assert api_rss(server) - before < RSS_GROWTH_BOUND
