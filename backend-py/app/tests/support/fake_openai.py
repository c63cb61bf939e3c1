"""A small OpenAI-compatible server for tests, served over real HTTP.

Implements ``POST /v1/chat/completions`` (JSON, or SSE chunks ending with a
usage chunk when ``stream_options.include_usage`` is set) and
``POST /v1/embeddings`` (deterministic vectors, as floats or base64). It records
every request, and can be told to answer the next requests with an error status,
to hang past the client's timeout, or to answer 200 with something that is not
a valid answer (:data:`GARBLES`). ``script`` maps a last user message to its own
reply (a scripted model: the question rewrites of tests/ai).
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.background_server import BackgroundServer

DEFAULT_DIMENSIONS = 1536
DEFAULT_REPLY = "The answer is in the guide [1]."


def fake_embedding(text: str, dimensions: int) -> list[float]:
    """The unit vector the fake server returns for a text (seeded by its hash)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimensions)
    return [float(v) for v in (vector / np.linalg.norm(vector)).astype(np.float32)]


def count_words(text: str) -> int:
    """The fake server's token count: one token per word."""
    return len(text.split())


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Garble = Literal[
    "malformed_json", "html_page", "wrong_schema", "empty_choices", "bad_chunk"
]
"""Answers with status 200 that are not valid: a body cut off mid-JSON, an HTML
page, JSON of another shape, no ``choices``, or a stream chunk that is not JSON
(a plain answer when the request was not streamed)."""

GARBLES: tuple[Garble, ...] = get_args(Garble)


@dataclass
class Fault:
    """What the next request gets instead of an answer."""

    status: int
    message: str
    hang_s: float = 0.0
    garble: Garble | None = None


@dataclass
class FakeOpenAI:
    """The fake server's behaviour and what it saw; thread-safe enough for tests."""

    reply: str = DEFAULT_REPLY
    script: dict[str, str] = field(default_factory=dict)
    """Replies by the text of the last user message; ``reply`` for the rest."""
    stream_delay_s: float = 0.0
    """Pause between streamed chunks (to disconnect a client midway)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` to use."""
        assert self._server is not None
        return f"{self._server.url}/v1"

    def start(self) -> None:
        """Serve on a free port."""
        self._server = BackgroundServer(self.app())
        self._server.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        """Forget requests and pending faults; answer with the default reply."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
        self.reply = DEFAULT_REPLY
        self.script = {}
        self.stream_delay_s = 0.0

    def fail_next(self, count: int, *, status: int, message: str = "") -> None:
        """Answer the next ``count`` requests with this HTTP status."""
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(status, message or f"fake error {status}"))

    def hang_next(self, count: int, *, seconds: float = 3.0) -> None:
        """Hold the next ``count`` requests this long without answering."""
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(504, "fake hang", hang_s=seconds))

    def garble_next(self, count: int, garble: Garble) -> None:
        """Answer the next ``count`` requests 200 with an invalid answer."""
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(200, garble, garble=garble))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to one path (``/v1/embeddings``...)."""
        return [r for r in self.requests if r.path == path]

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    async def _receive(self, request: Request) -> tuple[dict[str, Any], Fault | None]:
        body = json.loads(await request.body())
        with self._lock:
            self.requests.append(
                RecordedRequest(request.url.path, dict(request.headers), body)
            )
            fault = self._faults.popleft() if self._faults else None
        return body, fault

    async def _chat(self, request: Request) -> Response:
        body, fault = await self._receive(request)
        if fault is not None:
            return await _fault_response(fault, request)
        prompt_tokens = sum(
            count_words(str(m.get("content") or "")) for m in body["messages"]
        )
        reply = self._reply_to(body["messages"])
        usage = _usage(prompt_tokens, count_words(reply))
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            return StreamingResponse(
                _sse(
                    _chunks(body["model"], reply, usage if include_usage else None),
                    self.stream_delay_s,
                ),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )

    def _reply_to(self, messages: list[dict[str, Any]]) -> str:
        users = [m for m in messages if m.get("role") == "user"]
        last = str(users[-1].get("content") or "") if users else ""
        return self.script.get(last, self.reply)

    async def _embeddings(self, request: Request) -> Response:
        body, fault = await self._receive(request)
        if fault is not None:
            return await _fault_response(fault, request)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _encode(fake_embedding(str(text), dimensions), as_base64),
            }
            for i, text in enumerate(texts)
        ]
        tokens = sum(count_words(str(t)) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _encode(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


async def _fault_response(fault: Fault, request: Request) -> Response:
    if fault.garble is not None:
        return await _garbled(fault.garble, request)
    if fault.hang_s:
        # The body was read, so the next message is the client's disconnect.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(request.receive(), timeout=fault.hang_s)
    return JSONResponse(
        {"error": {"message": fault.message, "type": "fake_error", "code": None}},
        status_code=fault.status,
        headers={"retry-after-ms": "1"},  # the SDK waits this long before a retry
    )


def _chunks(
    model: str, reply: str, usage: dict[str, int] | None
) -> Iterator[dict[str, Any]]:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            **extra,
        }

    yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    words = reply.split(" ")
    for i, word in enumerate(words):
        content = word if i == len(words) - 1 else f"{word} "
        yield chunk([{"index": 0, "delta": {"content": content}}])
    yield chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield chunk([], usage=usage)


async def _sse(
    chunks: Iterator[dict[str, Any]], delay_s: float = 0.0
) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        await asyncio.sleep(delay_s)
    yield b"data: [DONE]\n\n"


_HTML_PAGE = "<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"


async def _garbled(garble: Garble, request: Request) -> Response:
    body = json.loads(await request.body())
    if garble == "html_page":
        return Response(_HTML_PAGE, media_type="text/html")
    if garble == "wrong_schema":
        return JSONResponse({"result": {"text": "not the OpenAI shape"}, "data": 7})
    if garble == "empty_choices":
        empty = {"id": "x", "object": "chat.completion", "created": 0}
        return JSONResponse({**empty, "model": body.get("model"), "choices": []})
    if garble == "bad_chunk" and body.get("stream"):
        first = next(_chunks(str(body.get("model")), "Half", None))
        lines = f"data: {json.dumps(first)}\n\ndata: {{not json\n\n"
        return Response(lines, media_type="text/event-stream")
    return Response(
        '{"id": "chatcmpl-fake", "choices": [{"ind', media_type="application/json"
    )
