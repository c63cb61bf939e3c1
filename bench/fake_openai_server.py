"""An OpenAI-compatible model server for the streaming benchmark, on 127.0.0.1.

Run by ``bench/streaming_bench.py`` as a process of its own (so its work is not
charged to the API or to the benchmark's client)::

    python bench/fake_openai_server.py --port 9000 --tokens 60 \
        --first-token-ms 300 --stream-ms 3300

* ``POST /v1/embeddings``: instant, deterministic unit vectors (one of a fixed
  set, picked by the text's hash) of the requested ``dimensions``, as floats or
  base64 as the client asks;
* ``POST /v1/chat/completions``: with ``"stream": true``, ``--tokens`` chunks,
  the first after ``--first-token-ms`` and the last at ``--stream-ms``, then a
  finish chunk, a usage chunk (``stream_options.include_usage``) and
  ``[DONE]``; without, the whole answer after ``--answer-ms`` (0: instantly):
  the reply ``--script`` (a JSON object) maps the last user message to, if
  any, else the ``--tokens`` words.

``bench/retrieval_eval.py`` runs the same server in its own event loop
(:class:`FakeOpenAI` with a ``script``) as its scripted rewriting model.

A raw asyncio HTTP/1.1 server (keep-alive, chunked streaming): thousands of
chunks a second must cost it little, and nothing here is what is measured.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvloop

VECTORS = 256
SEED = 20261122


@dataclass(frozen=True)
class Behaviour:
    tokens: int
    first_token_s: float
    stream_s: float
    answer_s: float

    def token_times(self) -> list[float]:
        """When each token is due, in seconds after the request."""
        if self.tokens == 1:
            return [self.first_token_s]
        step = (self.stream_s - self.first_token_s) / (self.tokens - 1)
        return [self.first_token_s + step * n for n in range(self.tokens)]


class Vectors:
    """A fixed set of unit vectors per dimension, as floats and as base64."""

    def __init__(self) -> None:
        self._floats: dict[int, list[list[float]]] = {}
        self._base64: dict[int, list[str]] = {}

    def pick(self, text: str, dimensions: int, *, as_base64: bool) -> object:
        if dimensions not in self._floats:
            rng = np.random.default_rng(SEED + dimensions)
            matrix = rng.standard_normal((VECTORS, dimensions)).astype(np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            self._floats[dimensions] = [[float(v) for v in row] for row in matrix]
            self._base64[dimensions] = [
                base64.b64encode(row.astype("<f4").tobytes()).decode() for row in matrix
            ]
        n = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest())
        if as_base64:
            return self._base64[dimensions][n % VECTORS]
        return self._floats[dimensions][n % VECTORS]


def _response(
    status: int, body: bytes, content_type: str = "application/json"
) -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class FakeOpenAI:
    """The server's state; ``serve`` handles one connection.

    ``script`` maps a last user message to its own non-streamed reply (a
    scripted model: the retrieval eval's question rewrites); any other
    message gets the ``--tokens`` words.
    """

    def __init__(
        self, behaviour: Behaviour, script: dict[str, str] | None = None
    ) -> None:
        self.behaviour = behaviour
        self.script = dict(script or {})
        self.writers: set[asyncio.StreamWriter] = set()
        self.vectors = Vectors()
        self.words = [f" word{n}" for n in range(behaviour.tokens)]
        self.answer = "".join(self.words).strip()

    def reply_to(self, messages: object) -> str:
        """The scripted reply to the last user message, or the usual answer."""
        users = [
            m
            for m in (messages if isinstance(messages, list) else [])
            if isinstance(m, dict) and m.get("role") == "user"
        ]
        last = str(users[-1].get("content") or "") if users else ""
        return self.script.get(last, self.answer)

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (h.partition(":") for h in header_lines if h)
                }
                length = int(headers.get("content-length", "0"))
                body = json.loads(await reader.readexactly(length)) if length else {}
                path = request_line.split(" ")[1]
                if path.endswith("/embeddings"):
                    writer.write(self.embeddings(body))
                elif path.endswith("/chat/completions"):
                    await self.chat(body, writer)
                else:
                    writer.write(_response(404, b'{"error":{"message":"not found"}}'))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def close_connections(self) -> None:
        """End the open connections, so that their handlers return (not cancelled)."""
        for writer in list(self.writers):
            writer.close()
        for _ in range(100):
            if not self.writers:
                return
            await asyncio.sleep(0.01)

    def embeddings(self, body: dict[str, object]) -> bytes:
        raw = body.get("input")
        texts = raw if isinstance(raw, list) else [raw]
        dimensions = int(str(body.get("dimensions") or 1536))
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": n,
                "embedding": self.vectors.pick(
                    str(text), dimensions, as_base64=as_base64
                ),
            }
            for n, text in enumerate(texts)
        ]
        tokens = sum(len(str(t).split()) for t in texts)
        answer = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _response(200, json.dumps(answer).encode())

    async def chat(self, body: dict[str, object], writer: asyncio.StreamWriter) -> None:
        model = str(body.get("model"))
        messages = body.get("messages")
        prompt_tokens = len(json.dumps(messages)) // 4
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": self.behaviour.tokens,
            "total_tokens": prompt_tokens + self.behaviour.tokens,
        }
        if not body.get("stream"):
            if self.behaviour.answer_s:
                await asyncio.sleep(self.behaviour.answer_s)
            answer = {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": self.reply_to(messages),
                        },
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
            writer.write(_response(200, json.dumps(answer).encode()))
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage")
        await self.stream(model, usage if include_usage else None, writer)

    async def stream(
        self, model: str, usage: dict[str, int] | None, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        prefix = (
            '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":'
            f'{int(time.time())},"model":{json.dumps(model)},"choices":'
        )

        def event(choices: str, extra: str = "") -> bytes:
            return _chunk(f"data: {prefix}{choices}{extra}}}\n\n".encode())

        started = time.perf_counter()
        for n, (word, due) in enumerate(
            zip(self.words, self.behaviour.token_times(), strict=True)
        ):
            await asyncio.sleep(max(0.0, started + due - time.perf_counter()))
            frame = b""
            if n == 0:
                frame = event('[{"index":0,"delta":{"role":"assistant","content":""}}]')
            writer.write(
                frame
                + event(f'[{{"index":0,"delta":{{"content":{json.dumps(word)}}}}}]')
            )
        end = event('[{"index":0,"delta":{},"finish_reason":"stop"}]')
        if usage is not None:
            end += event("[]", f',"usage":{json.dumps(usage)}')
        writer.write(end + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def main(args: argparse.Namespace) -> None:
    script = json.loads(args.script.read_text()) if args.script else {}
    fake = FakeOpenAI(
        Behaviour(
            tokens=args.tokens,
            first_token_s=args.first_token_ms / 1000,
            stream_s=args.stream_ms / 1000,
            answer_s=args.answer_ms / 1000,
        ),
        script,
    )
    server = await asyncio.start_server(
        fake.serve, "127.0.0.1", args.port, backlog=4096
    )
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--first-token-ms", type=float, default=300.0)
    parser.add_argument("--stream-ms", type=float, default=3300.0)
    parser.add_argument("--answer-ms", type=float, default=0.0)
    parser.add_argument(
        "--script", type=Path, help="JSON: last user message -> reply (not streamed)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    uvloop.run(main(parse_args()))
