"""Server-sent events: the frames that are ready go out as one body chunk.

A stream's frames are made by a task of its own and handed over in a queue;
the response sends whatever gathered while it sent the previous chunk. When
the process keeps up, that is one frame per send, as soon as it is made; when
tokens come faster than the process sends them (a busy process, a fast
model), one send carries several, so the cost of a send (the ASGI chain, the
server's framing, a socket write) is paid per chunk, not per token. Nothing is
held back waiting for more, and the events themselves are unchanged.
"""

import asyncio
from collections.abc import AsyncIterator


async def coalesced(frames: AsyncIterator[str], *, closing: str) -> AsyncIterator[str]:
    """``frames``, those waiting when a chunk goes out joined into it.

    Cancelled (the server's shutdown grace ran out, or the client left), it
    sends the frames made so far and ``closing``, and cancels the frames' task
    without waiting for it: the cancellation is Starlette's (anyio's) cancel
    scope, which would cancel any wait here again.
    """
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    producer = asyncio.create_task(_fill(queue, frames))
    try:
        ended = False
        while not ended:
            ready, ended = _drain([await queue.get()], queue)
            if ready:
                yield ready
    except asyncio.CancelledError:
        producer.cancel()
        yield _drain([], queue)[0] + closing
    finally:
        producer.cancel()


async def _fill(queue: asyncio.Queue[str | None], frames: AsyncIterator[str]) -> None:
    """Put each frame in the queue, then None for the end."""
    try:
        async for frame in frames:
            queue.put_nowait(frame)
    finally:
        queue.put_nowait(None)


def _drain(
    taken: list[str | None], queue: asyncio.Queue[str | None]
) -> tuple[str, bool]:
    """The frames taken and those waiting, joined; whether the end came."""
    while not queue.empty():
        taken.append(queue.get_nowait())
    ended = bool(taken) and taken[-1] is None
    return "".join(frame for frame in taken if frame is not None), ended
