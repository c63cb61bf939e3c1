"""Parse a file in a child process that has a wall-clock and a memory limit.

A hostile file can make a parser run for minutes (HTML nested a hundred
thousand levels deep) or inflate a few kilobytes into gigabytes (a PDF
compression bomb). Run in the API's or the worker's process, the first blocks
the event loop and the second leaves its memory behind. Here each parse is a
fresh ``python -m src.infra.bounded_parse``: it sets ``RLIMIT_AS`` on itself
before it reads the file, the parent kills it (SIGKILL) once
``parse_timeout_s`` has passed, and whatever it allocated goes back to the
system when it exits. The parent only waits on a pipe.

The child reads one JSON header line then the file's bytes on stdin, and
writes one JSON line on stdout: the parsed document, or the error.

Starting Python with the parsers takes longer than parsing most files, so a
command that loads a whole folder keeps one child for file after file
(:class:`BoundedParser`, ``--many``): each file still has its wall-clock limit,
and the child's memory limit holds for all of them.
"""

import asyncio
import functools
import json
import resource
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from src.domain.errors import DomainError, UnprocessableError, UnsupportedMediaTypeError
from src.domain.service.document_parsing import (
    ParsedDocument,
    ParseLimits,
    parse_document,
)
from src.domain.service.pages import PageSpan

APP_DIR = Path(__file__).resolve().parents[2]
"""Where ``python -m src...`` finds the package."""
MAX_ANSWER_BYTES = 2**30
"""The longest answer line read from a child (a document's JSON)."""
_ERRORS: dict[str, type[DomainError]] = {
    "unsupported": UnsupportedMediaTypeError,
    "unprocessable": UnprocessableError,
}


@dataclass(frozen=True)
class ParseBounds:
    """The limits of one parse.

    Attributes:
        timeout_s: Wall-clock seconds before the child is killed.
        memory_bytes: The child's address-space limit (``RLIMIT_AS``).
        limits: What the parse may produce.
    """

    timeout_s: float
    memory_bytes: int
    limits: ParseLimits


async def parse_bounded(
    filename: str, data: bytes, content_type: str | None, *, bounds: ParseBounds
) -> ParsedDocument:
    """Parse ``data`` in a child process within ``bounds``.

    Args:
        filename: The file's name (its extension picks the reader).
        data: The file's bytes.
        content_type: The declared media type.
        bounds: Time, memory and output limits.

    Returns:
        The parsed document.

    Raises:
        UnsupportedMediaTypeError: The file type is not supported.
        UnprocessableError: The file is damaged, has no text, is over an output
            limit, or its parse ran out of time or memory.
    """
    header = _header(filename, content_type, bounds)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "src.infra.bounded_parse",
        cwd=APP_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    request = json.dumps(header).encode() + b"\n" + data
    try:
        async with asyncio.timeout(bounds.timeout_s):
            out, _ = await child.communicate(request)
    except TimeoutError:
        raise UnprocessableError(
            f"parsing {filename!r} took longer than {bounds.timeout_s:g} s"
        ) from None
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    return _result(filename, out, child.returncode, bounds)


class BoundedParser:
    """One child process that parses file after file, each within the bounds.

    A file that takes longer than ``timeout_s`` gets its child killed (the next
    file starts a new one). When the child dies on a file (its memory limit,
    which may be partly taken by earlier files), that file is parsed once more
    alone, by :func:`parse_bounded`, whose verdict stands.
    """

    def __init__(self, bounds: ParseBounds) -> None:
        """Remember the bounds; the child starts with the first file."""
        self._bounds = bounds
        self._child: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> "BoundedParser":
        """The parser (the child is stopped when the block ends)."""
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stop the child."""
        await self.aclose()

    async def parse(
        self,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        limits: ParseLimits | None = None,
    ) -> ParsedDocument:
        """Parse one file, as :func:`parse_bounded` would.

        Args:
            filename: The file's name (its extension picks the reader).
            data: The file's bytes.
            content_type: The declared media type.
            limits: What this parse may produce (the bounds' when omitted).

        Raises:
            UnsupportedMediaTypeError: The file type is not supported.
            UnprocessableError: The file cannot be parsed within the bounds.
        """
        bounds = replace(self._bounds, limits=limits or self._bounds.limits)
        line = await self._ask(filename, data, content_type, bounds)
        if not line:  # the child died on this file
            await self.aclose()
            return await parse_bounded(filename, data, content_type, bounds=bounds)
        return _result(filename, line, None, bounds)

    async def aclose(self) -> None:
        """Stop the child, if one runs."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.returncode is None:
            child.kill()
        await child.wait()

    async def _ask(
        self, filename: str, data: bytes, content_type: str | None, bounds: ParseBounds
    ) -> bytes:
        """Send one file to the child; its answer line, empty if it died."""
        child = self._child or await self._start()
        header = _header(filename, content_type, bounds) | {"size": len(data)}
        assert child.stdin is not None  # noqa: S101 - created with PIPE
        assert child.stdout is not None  # noqa: S101 - created with PIPE
        try:
            child.stdin.write(json.dumps(header).encode() + b"\n" + data)
            async with asyncio.timeout(bounds.timeout_s):
                await child.stdin.drain()
                return await child.stdout.readline()
        except TimeoutError:
            await self.aclose()
            raise UnprocessableError(
                f"parsing {filename!r} took longer than {bounds.timeout_s:g} s"
            ) from None
        except (BrokenPipeError, ConnectionResetError):
            return b""

    async def _start(self) -> asyncio.subprocess.Process:
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "src.infra.bounded_parse",
            "--many",
            cwd=APP_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=MAX_ANSWER_BYTES,
        )
        return self._child


def _header(
    filename: str, content_type: str | None, bounds: ParseBounds
) -> dict[str, Any]:
    return {
        "filename": filename,
        "content_type": content_type,
        "memory_bytes": bounds.memory_bytes,
        "limits": asdict(bounds.limits),
    }


def _result(
    filename: str, out: bytes, returncode: int | None, bounds: ParseBounds
) -> ParsedDocument:
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        megabytes = bounds.memory_bytes // 2**20
        raise UnprocessableError(
            f"parsing {filename!r} failed (exit code {returncode});"
            f" it may have needed more than {megabytes} MB"
        ) from None
    if "error" in answer:
        raise _ERRORS[answer["kind"]](answer["error"])
    document = answer["document"]
    pages = tuple(PageSpan(**page) for page in document.pop("pages"))
    return ParsedDocument(**document, pages=pages)


def _limit_memory(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _child() -> dict[str, Any]:
    """Parse what arrives on stdin; the answer to write on stdout."""
    header = json.loads(sys.stdin.buffer.readline())
    _limit_memory(int(header["memory_bytes"]))
    return _answer(header, sys.stdin.buffer.read)


def _serve_many() -> None:
    """Parse file after file (each header says its size) until stdin ends."""
    while line := sys.stdin.buffer.readline():
        header = json.loads(line)
        _limit_memory(int(header["memory_bytes"]))
        answer = _answer(
            header, functools.partial(sys.stdin.buffer.read, header["size"])
        )
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _answer(header: dict[str, Any], read: Callable[[], bytes]) -> dict[str, Any]:
    """Parse the file ``read`` returns; the answer (the document or the error)."""
    try:
        data = read()
        parsed = parse_document(
            header["filename"],
            data,
            header["content_type"],
            ParseLimits(**header["limits"]),
        )
    except UnsupportedMediaTypeError as exc:
        return {"kind": "unsupported", "error": exc.message}
    except DomainError as exc:
        return {"kind": "unprocessable", "error": exc.message}
    except MemoryError:
        megabytes = int(header["memory_bytes"]) // 2**20
        error = f"parsing {header['filename']!r} needed more than {megabytes} MB"
        return {"kind": "unprocessable", "error": error}
    except RecursionError:
        error = f"{header['filename']!r} is nested too deeply to parse"
        return {"kind": "unprocessable", "error": error}
    return {"document": asdict(parsed)}


if __name__ == "__main__":
    if "--many" in sys.argv:
        _serve_many()
    else:
        sys.stdout.write(json.dumps(_child()))
        sys.stdout.flush()
