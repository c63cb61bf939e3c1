"""Fault tests: real server processes, a real Postgres, a fake OpenAI over HTTP.

Nothing of ours is mocked: the API runs as ``python -m src.cli.serve`` (what
``make run`` runs), faults come from outside it (a database that stops, a
provider that hangs or drops a stream, a signal).
"""

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.e2e.conftest import ApiServer
from tests.support.fake_openai import FakeOpenAI
from tests.support.server_database import server_database

FAULTS_DATABASE = "ragchat_faults"


@pytest.fixture(scope="session")
def faults_database_url(database_url: str) -> Iterator[str]:
    """A migrated database of its own for the fault tests' servers."""
    with server_database(database_url, FAULTS_DATABASE) as url:
        yield url


class FaultServer(ApiServer):
    """An :class:`ApiServer` that tests also signal or kill."""

    def terminate(self) -> None:
        """Send SIGTERM (a graceful shutdown) and return at once."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the process dies without running any clean-up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)


@dataclass
class FaultyOpenAI(FakeOpenAI):
    """The fake OpenAI server, with faults aimed at one endpoint.

    Attributes:
        chat_hang_s: Hold every chat completion this long without answering.
        chat_delays: Answer a chat completion only after this many seconds
            when its prompt contains the key.
        drop_stream_after: Close the connection of a streamed completion after
            this many chunks (no ``[DONE]``, no end of the chunked body).
        stall_stream_after: Stop sending a streamed completion after this many
            chunks, the connection left open (a provider that stalls midway).
        embeddings_before_hang: Answer this many embeddings requests, then hold
            every later one for ``embeddings_hang_s``.
        embeddings_hang_s: How long a held embeddings request waits.
        hold_batch_embeddings: Hold every embeddings request of more than one
            text (a document's chunks); answer single queries.
    """

    chat_hang_s: float = 0.0
    chat_delays: dict[str, float] = field(default_factory=dict)
    drop_stream_after: int | None = None
    stall_stream_after: int | None = None
    embeddings_before_hang: int | None = None
    embeddings_hang_s: float = 120.0
    hold_batch_embeddings: bool = False

    def reset(self) -> None:
        """Back to a well-behaved server."""
        super().reset()
        self.chat_hang_s = 0.0
        self.chat_delays = {}
        self.drop_stream_after = None
        self.stall_stream_after = None
        self.embeddings_before_hang = None
        self.hold_batch_embeddings = False

    async def _chat(self, request: Request) -> Response:
        if self.chat_hang_s:
            self.hang_next(1, seconds=self.chat_hang_s)
        response = await super()._chat(request)  # records the request
        prompt = (await request.body()).decode()
        for marker, seconds in self.chat_delays.items():
            if marker in prompt:
                await asyncio.sleep(seconds)
        if isinstance(response, StreamingResponse):
            self._spoil(response)
        return response

    def _spoil(self, response: StreamingResponse) -> None:
        """Drop or stall a streamed completion, as asked."""
        if self.drop_stream_after is not None:
            response.body_iterator = _dropped_after(
                response.body_iterator, self.drop_stream_after
            )
        if self.stall_stream_after is not None:
            response.body_iterator = _stalled_after(
                response.body_iterator, self.stall_stream_after
            )

    async def _embeddings(self, request: Request) -> Response:
        answered = len(self.requests_to("/v1/embeddings"))
        texts = json.loads(await request.body())["input"]
        batch = isinstance(texts, list) and len(texts) > 1
        if (
            self.embeddings_before_hang is not None
            and answered >= self.embeddings_before_hang
        ) or (self.hold_batch_embeddings and batch):
            self.hang_next(1, seconds=self.embeddings_hang_s)
        return await super()._embeddings(request)


class StreamDroppedError(Exception):
    """Raised inside the fake's response: uvicorn then closes the connection."""


async def _dropped_after(chunks: AsyncIterable[Any], count: int) -> AsyncIterator[Any]:
    sent = 0
    async for chunk in chunks:
        if sent == count:
            await asyncio.sleep(0.05)  # let the client read what was sent
            raise StreamDroppedError
        sent += 1
        yield chunk


STALL_S = 60.0
"""How long a stalled stream waits (longer than any client timeout here)."""


async def _stalled_after(chunks: AsyncIterable[Any], count: int) -> AsyncIterator[Any]:
    sent = 0
    async for chunk in chunks:
        if sent == count:
            await asyncio.sleep(STALL_S)
        sent += 1
        yield chunk


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FaultyOpenAI]:
    """A fake OpenAI-compatible server for the module's API servers."""
    fake = FaultyOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _well_behaved_provider(request: pytest.FixtureRequest) -> None:
    """Every test starts with a provider that answers normally."""
    if "fake_provider" in request.fixturenames:
        request.getfixturevalue("fake_provider").reset()


def openai_env(fake: FakeOpenAI, **overrides: str) -> dict[str, str]:
    """The environment that points a server at the fake provider."""
    return {
        "OPENAI_API_KEY": "sk-faults-test",
        "OPENAI_BASE_URL": fake.base_url,
        "LLM_MAX_RETRIES": "0",
        **overrides,
    }


def wait_until(check: Any, *, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {check}")
