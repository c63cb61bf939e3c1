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
"""

import asyncio
import json
import resource
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from src.domain.errors import DomainError, UnprocessableError, UnsupportedMediaTypeError
from src.domain.service.chunking import PageSpan
from src.domain.service.document_parsing import (
    ParsedDocument,
    ParseLimits,
    parse_document,
)

APP_DIR = Path(__file__).resolve().parents[2]
"""Where ``python -m src...`` finds the package."""
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
    header = {
        "filename": filename,
        "content_type": content_type,
        "memory_bytes": bounds.memory_bytes,
        "limits": asdict(bounds.limits),
    }
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
    try:
        data = sys.stdin.buffer.read()
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
    answer = _child()
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
