"""POST /api/chat and its server-sent-events twin, /api/chat/stream.

Shutdown: on SIGTERM uvicorn stops accepting connections and gives in-flight
requests and streams ``SHUTDOWN_GRACE_S`` to finish; most turns end within it.
A turn still running when it runs out is cancelled, and then:

* a plain request is answered 503 (``service_unavailable``, ``Retry-After``)
  instead of a dropped connection;
* a stream ends with one ``error`` event (same code) and a proper end of the
  response, instead of being cut silently.

Either way the user message is kept (it was committed before generation) and no
partial AI message is stored; the client sends the message again.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from src.controller.dependencies import (
    CurrentUserDep,
    DatabaseDep,
    EmbeddingsGatewayDep,
    LLMGatewayDep,
    RateLimitsDep,
    SettingsDep,
)
from src.controller.sse import coalesced
from src.domain.entity.chat import ChatRequest, ChatResponse
from src.domain.entity.turn import ChatEvent, Turn
from src.domain.errors import DomainError, ServiceUnavailableError
from src.middleware.error_handlers import ErrorBody
from src.usecase.chat_usecase import ChatUseCase

logger = logging.getLogger(__name__)


router = APIRouter(
    prefix="/api/chat",
    tags=["chat"],
    responses={
        429: {"model": ErrorBody, "description": "Over RATE_LIMIT_CHAT_PER_MINUTE"}
    },
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def chat_use_case(  # noqa: PLR0913, PLR0917 - one dependency each
    user: CurrentUserDep,
    database: DatabaseDep,
    knowledge: EmbeddingsGatewayDep,
    llm: LLMGatewayDep,
    limits: RateLimitsDep,
    settings: SettingsDep,
) -> ChatUseCase:
    """The chat use case for the caller; it opens its own short transactions."""
    return ChatUseCase(
        user=user,
        as_caller=partial(database.user_transaction, user.claims),
        as_service=database.answer_statement,
        knowledge=knowledge,
        llm=llm,
        limits=limits,
        settings=settings,
    )


ChatUseCaseDep = Annotated[ChatUseCase, Depends(chat_use_case)]

RETRY_AFTER_SHUTDOWN_S = 2


def shutting_down() -> ServiceUnavailableError:
    """The error of a turn cancelled because the server is stopping."""
    return ServiceUnavailableError(
        "The server is restarting; send the message again.",
        headers={"Retry-After": str(RETRY_AFTER_SHUTDOWN_S)},
    )


@router.post("")
async def chat(request: ChatRequest, use_case: ChatUseCaseDep) -> ChatResponse:
    """Send a message and get the AI persona's answer with its sources.

    Without ``chat_room_id`` a new room is created. When generation fails the
    user message is kept in the history and the answer is 502 or 504; when
    the server shuts down before the answer is ready, it is 503.
    """
    try:
        return await use_case.execute(request)
    except asyncio.CancelledError:
        # Only the server cancels a plain request (its shutdown grace ran out):
        # answer instead of dropping the connection.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        raise shutting_down() from None


@router.post(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_stream(
    request: ChatRequest, use_case: ChatUseCaseDep
) -> StreamingResponse:
    """The same turn as server-sent events.

    Events: ``meta`` (room and user message ids), ``sources``, ``token`` deltas,
    then ``done`` (AI message id, full text, usage) or one ``error`` (message and
    code) and nothing after it, also when the server shuts down mid-stream.
    Room, persona and input errors are answered before the stream starts, with
    the usual JSON error.
    """
    turn = await use_case.ask(request)
    return ChatEventStream(
        coalesced(_sse(use_case, turn), closing=_shutdown_frame()),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


class ChatEventStream(StreamingResponse):
    """The SSE response of a turn, which a server shutdown ends cleanly.

    When the shutdown grace period runs out, uvicorn cancels the request: the
    event generator then sends its ``error`` event and ends the body, but
    Starlette's disconnect listener is cancelled too and the cancellation
    would reach uvicorn, which logs it as an "Exception in ASGI application"
    for every open stream. The stream was ended properly, so it is not one.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream; a shutdown's cancellation ends it without an error."""
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or not task.cancelling():  # pragma: no cover
                raise
            task.uncancel()


def format_sse(event: ChatEvent) -> str:
    """One event in the text/event-stream format."""
    return f"event: {event.event}\ndata: {json.dumps(event.data)}\n\n"


async def _sse(use_case: ChatUseCase, turn: Turn) -> AsyncIterator[str]:
    try:
        async for event in use_case.stream(turn):
            yield format_sse(event)
    except DomainError as exc:
        yield format_sse(ChatEvent("error", {"code": exc.code, "message": exc.message}))
    except Exception:
        logger.exception("chat stream failed")
        yield format_sse(
            ChatEvent(
                "error",
                {"code": "internal_error", "message": "An unexpected error occurred."},
            )
        )


def _shutdown_frame() -> str:
    """The last event of a stream that the server ends (its grace ran out).

    If the client left instead, nobody reads it.
    """
    error = shutting_down()
    data = {"code": error.code, "message": error.message}
    return format_sse(ChatEvent("error", data))
