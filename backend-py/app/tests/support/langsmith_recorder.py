"""A small stand-in for the LangSmith API that records the runs it is sent.

Serves ``GET /info`` (announcing zstd support, as LangSmith does) and the
ingest endpoints the SDK uses: ``POST /runs/multipart`` (plain or
zstd-compressed), ``POST /runs/batch``, ``POST /runs`` and ``PATCH /runs/{id}``.
Posted and patched fields are merged into one dict per run id.
"""

import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import zstandard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.background_server import BackgroundServer


class LangSmithRecorder:
    """Records runs; ``runs`` maps a run id to its merged fields."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.api_keys: set[str] = set()
        self._lock = threading.Lock()
        self._server = BackgroundServer(self._app())

    @property
    def url(self) -> str:
        """The ``LANGSMITH_ENDPOINT`` to use."""
        return self._server.url

    def start(self) -> None:
        """Serve on a free port."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def named(self, name: str) -> list[dict[str, Any]]:
        """The recorded runs with this name."""
        with self._lock:
            return [run for run in self.runs.values() if run.get("name") == name]

    def _merge(self, run_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.runs.setdefault(run_id, {"id": run_id}).update(fields)

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/info", self._info, methods=["GET"]),
                Route("/runs/multipart", self._multipart, methods=["POST"]),
                Route("/runs/batch", self._batch, methods=["POST"]),
                Route("/runs", self._post_run, methods=["POST"]),
                Route("/runs/{run_id}", self._patch_run, methods=["PATCH"]),
            ]
        )

    async def _info(self, _: Request) -> Response:
        return JSONResponse(
            {
                "version": "recorder",
                "instance_flags": {"zstd_compression_enabled": True},
            }
        )

    async def _multipart(self, request: Request) -> Response:
        self.api_keys.add(request.headers.get("x-api-key", ""))
        body = await request.body()
        if request.headers.get("content-encoding") == "zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            self._record_part(name, json.loads(payload))
        return JSONResponse({}, status_code=202)

    def _record_part(self, name: str, value: Any) -> None:
        kind, run_id, *field = name.split(".", 2)
        if kind not in ("post", "patch"):
            return  # attachments
        self._merge(run_id, {field[0]: value} if field else value)

    async def _batch(self, request: Request) -> Response:
        self.api_keys.add(request.headers.get("x-api-key", ""))
        batch = await request.json()
        for run in [*batch.get("post", []), *batch.get("patch", [])]:
            self._merge(str(run["id"]), run)
        return JSONResponse({}, status_code=202)

    async def _post_run(self, request: Request) -> Response:
        run = await request.json()
        self._merge(str(run["id"]), run)
        return JSONResponse({}, status_code=202)

    async def _patch_run(self, request: Request) -> Response:
        self._merge(request.path_params["run_id"], await request.json())
        return JSONResponse({}, status_code=202)
