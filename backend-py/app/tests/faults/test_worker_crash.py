"""A worker killed midway through a document: the next one completes it whole.

The worker claims a document with a lease, embeds its chunks in slices outside
any transaction (renewing the lease after each), and swaps the chunks in with
one transaction at the end. Killed with SIGKILL while the second slice is at
the embeddings provider, it leaves the document ``processing`` with no chunks
written; once the lease runs out, a new worker takes it over and indexes it.
"""

import time
from collections.abc import Iterator

import pytest

from src.domain.service.chunking import chunk_text
from tests.faults.conftest import FaultServer, FaultyOpenAI, openai_env, wait_until

pytestmark = pytest.mark.e2e

CHUNK_SIZE = 100
EMBED_SLICE = 256
"""Chunks per embeddings request (``chunk_embedder.EMBED_SLICE``)."""
LEASE_S = 2


def worker_env(fake: FaultyOpenAI) -> dict[str, str]:
    return openai_env(
        fake,
        LLM_TIMEOUT_S="60",
        CHUNK_SIZE=str(CHUNK_SIZE),
        CHUNK_OVERLAP="0",
        WORKER_LEASE_S=str(LEASE_S),
        WORKER_POLL_INTERVAL_S="0.5",
        WORKER_RETRY_BASE_S="0",
    )


def long_document() -> str:
    paragraphs = [
        f"Paragraph {n} of the operations manual explains step {n} in plain words."
        for n in range(400)
    ]
    return "\n\n".join(paragraphs)


@pytest.fixture
def servers(faults_database_url: str) -> Iterator[list[FaultServer]]:
    started: list[FaultServer] = []
    yield started
    for server in started:
        server.kill()
        server.stop()


def document_state(server: FaultServer, document_id: object) -> tuple[object, ...]:
    [row] = server.query(
        "select d.status, d.attempts, d.chunk_count, "
        "(select count(*) from document_chunks c where c.document_id = d.id) "
        "from documents d where d.id = %s",
        document_id,
    )
    return row


def test_a_document_whose_worker_was_killed_is_completed_by_the_next_one(
    faults_database_url: str,
    fake_provider: FaultyOpenAI,
    servers: list[FaultServer],
) -> None:
    content = long_document()
    expected = chunk_text(content, chunk_size=CHUNK_SIZE, chunk_overlap=0)
    assert len(expected) > EMBED_SLICE  # so the worker is killed between slices

    fake_provider.embeddings_before_hang = 1
    first = FaultServer(faults_database_url, **worker_env(fake_provider))
    servers.append(first)
    first.start()
    [(document_id,)] = first.query(
        "insert into documents (title, content) values ('Manual', %s) returning id",
        content,
    )
    # The first slice was embedded; the second one is held by the provider.
    wait_until(
        lambda: len(fake_provider.requests_to("/v1/embeddings")) == 2, timeout=30
    )
    assert document_state(first, document_id)[:2] == ("processing", 1)

    first.kill()
    status, attempts, chunk_count, stored = document_state(first, document_id)
    assert (status, attempts, chunk_count, stored) == ("processing", 1, 0, 0)

    fake_provider.reset()
    second = FaultServer(faults_database_url, **worker_env(fake_provider))
    servers.append(second)
    second.start()
    wait_until(lambda: document_state(second, document_id)[0] == "ready", timeout=60)
    status, attempts, chunk_count, stored = document_state(second, document_id)
    assert (status, attempts) == ("ready", 2)
    assert chunk_count == stored == len(expected)
    rows = second.query(
        "select chunk_index, content from document_chunks "
        "where document_id = %s order by chunk_index",
        document_id,
    )
    assert rows == [(chunk.index, chunk.content) for chunk in expected]
    second.query("delete from documents where id = %s returning id", document_id)


def test_a_live_workers_heartbeat_keeps_its_document_past_the_lease(
    faults_database_url: str,
    fake_provider: FaultyOpenAI,
    servers: list[FaultServer],
) -> None:
    env = {**worker_env(fake_provider), "WORKER_LEASE_S": "1"}
    for _ in range(2):
        servers.append(FaultServer(faults_database_url, **env))
        servers[-1].start()
    fake_provider.embeddings_before_hang = 0
    fake_provider.embeddings_hang_s = 6.0  # six leases, then a 504
    [(document_id,)] = servers[0].query(
        "insert into documents (title, content) values ('Short', 'Brief text.') "
        "returning id"
    )
    wait_until(lambda: fake_provider.requests_to("/v1/embeddings"), timeout=30)

    # Sampled while the embeddings request hangs (several leases): the other
    # server, polling twice a lease, never takes the document over.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert document_state(servers[0], document_id)[:2] == ("processing", 1)
        time.sleep(0.2)
    assert len(fake_provider.requests_to("/v1/embeddings")) == 1

    fake_provider.reset()
    wait_until(
        lambda: document_state(servers[0], document_id)[0] == "ready", timeout=60
    )
    servers[0].query("delete from documents where id = %s returning id", document_id)
