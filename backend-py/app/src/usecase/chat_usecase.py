"""ChatUseCase: one chat turn, from the user's message to the saved AI answer.

A turn runs in one statement as the user (row-level security applies) and one
statement as the service, with the model calls outside both:

1. embed the question, holding no database connection;
2. check membership, save the user message, read the recent history and
   retrieve knowledge (the user's own, shared and the room's documents):
   one call of ``public.post_chat_turns``, which takes the user's role and
   claims itself, so one round trip, through the ``TurnPoster``, which sends
   the turns waiting together in one call (a room's first turn creates it in
   a user transaction instead). Committed, so the user message is kept
   whatever happens to generation;
3. generate, holding no database connection (a model call takes seconds);
4. save the AI message with its sources, model, usage and latency, as the
   service (members may not write AI messages themselves): through the
   ``AnswerWriter``, which saves the answers of turns finishing together with
   one statement.

When the embedding provider fails, step 2 still saves the user message and the
turn then fails with the provider's error (502/504), as a failed generation
does. Steps 3-4 are one LangSmith trace (when tracing is on) with the room,
message, user and persona as metadata and the retrieval as a child run.

A failed or interrupted generation stores no AI message: the user sees their own
message in the history and an error, never a silent partial answer. That holds
for a server shutdown too (``chat_controller``: a turn that outlives the
shutdown grace period is answered 503, or its stream ends with an ``error``
event).
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import BaseMessage

from src.domain.entity.chat import ChatRequest, ChatResponse, Source, hundredths
from src.domain.entity.knowledge import Retrieval, RetrievedChunk
from src.domain.entity.models import VirtualUsers
from src.domain.entity.user import CurrentUser
from src.domain.errors import DomainError, NotFoundError, UnprocessableError
from src.domain.service.prompt_builder import HistoryMessage, build_chat_messages
from src.gateway.chat_room_gateway import ChatRoomGateway, TurnRoom
from src.gateway.embeddings_gateway import hybrid_search, search_arguments
from src.gateway.llm_gateway import Generation, LLMGateway
from src.gateway.message_gateway import (
    Answer,
    HistoryEntry,
    MessageGateway,
    UserTurn,
)
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.infra.ai_providers import AIProviders
from src.infra.answer_writer import AnswerWriter
from src.infra.db_client import Database
from src.infra.tracing import TraceRun
from src.infra.turn_poster import TurnPoster
from src.settings import Settings
from src.usecase.chat_room_usecase import check_room_quota

ROOM_TITLE_CHARS = 60
FALLBACK_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer from the provided context and cite "
    "sources as [n]; say so when the context does not contain the answer."
)


@dataclass(frozen=True)
class Persona:
    """The AI persona answering a turn."""

    id: int | None
    name: str
    system_prompt: str
    model: str | None
    temperature: float | None
    max_tokens: int | None

    @classmethod
    def of(cls, row: VirtualUsers | None) -> "Persona":
        """The persona of a row, or the built-in fallback when there is none."""
        if row is None:
            return cls.fallback()
        return cls(
            row.id,
            row.name,
            row.system_prompt,
            row.model,
            _hundredths(row.temperature),
            row.max_tokens,
        )

    @classmethod
    def answering_in(cls, room: TurnRoom) -> "Persona":
        """The persona a room's lookup found, or the built-in fallback."""
        if room.persona_id is None or room.persona_name is None:
            return cls.fallback()
        return cls(
            room.persona_id,
            room.persona_name,
            room.system_prompt or "",
            room.model,
            _hundredths(room.temperature),
            room.max_tokens,
        )

    @classmethod
    def fallback(cls) -> "Persona":
        """The built-in assistant, when no persona applies."""
        return cls(None, "Assistant", FALLBACK_SYSTEM_PROMPT, None, None, None)


def _hundredths(temperature: float | None) -> float | None:
    return None if temperature is None else hundredths(temperature)


@dataclass(frozen=True)
class SavedQuestion:
    """The user's message saved in its room: who answers, history, knowledge."""

    room_id: int
    persona: Persona
    message_id: int
    history: list[HistoryEntry]
    sources: list[RetrievedChunk]


@dataclass(frozen=True)
class EmbeddedQuestion:
    """The question's embedding, or the provider's error in computing it."""

    started_at: datetime
    vector: list[float] | None
    error: DomainError | None = None


@dataclass(frozen=True)
class PreparedTurn:
    """A turn whose user message is committed with its retrieval done."""

    chat_room_id: int
    user_message_id: int
    question: str
    persona: Persona
    history: list[HistoryMessage]
    retrieval: Retrieval

    def sources(self) -> list[RetrievedChunk]:
        """The retrieved chunks.

        Raises:
            DomainError: The embedding provider failed (502/504).
        """
        if self.retrieval.error is not None:
            raise self.retrieval.error
        return self.retrieval.sources


@dataclass(frozen=True)
class ChatEvent:
    """One server-sent event of a streamed turn."""

    event: str
    data: dict[str, Any]


def citations(sources: list[RetrievedChunk]) -> list[Source]:
    """The retrieved chunks as the API shows them ([n] is position + 1)."""
    return [Source.from_chunk(chunk) for chunk in sources]


def room_title(message: str) -> str:
    """A room title from the first line of its first message."""
    first_line = message.strip().splitlines()[0].strip()
    if len(first_line) <= ROOM_TITLE_CHARS:
        return first_line
    return first_line[:ROOM_TITLE_CHARS].rsplit(" ", 1)[0].rstrip() + "…"


def to_history(messages: list[HistoryEntry]) -> list[HistoryMessage]:
    """Completed user and assistant messages, as the prompt builder takes them."""
    return [
        HistoryMessage(
            role="user" if m.role == "user" else "assistant",
            content=m.content,
            sender_name=m.sender_name if m.role == "user" else None,
        )
        for m in messages
        if m.status == "complete" and m.role in ("user", "assistant")
    ]


class ChatUseCase:
    """Coordinates rooms, personas, messages, retrieval and the LLM for one turn."""

    def __init__(  # noqa: PLR0913 - keyword-only, what a turn uses
        self,
        *,
        database: Database,
        user: CurrentUser,
        ai: AIProviders,
        llm: LLMGateway,
        turns: TurnPoster,
        answers: AnswerWriter,
        settings: Settings,
    ) -> None:
        self.database = database
        self.user = user
        self.ai = ai
        self.llm = llm
        self.turns = turns
        self.answers = answers
        self.settings = settings

    async def execute(self, request: ChatRequest) -> ChatResponse:
        """Run a whole turn and return the saved answer with its sources."""
        turn = await self.prepare(request)
        async with self._trace(turn) as run:
            run.add_retrieval(turn.retrieval)
            sources = turn.sources()
            generation = await self.llm.generate(
                self._prompt(turn, sources),
                model=turn.persona.model,
                temperature=turn.persona.temperature,
                max_tokens=turn.persona.max_tokens,
            )
            cited = citations(sources)
            ai_message_id = await self._save_answer(turn, cited, generation)
            run.add_metadata(ai_message_id=ai_message_id)
            run.record(answer=generation.text)
        return ChatResponse(
            chat_room_id=turn.chat_room_id,
            user_message_id=turn.user_message_id,
            ai_message_id=ai_message_id,
            ai_response=generation.text,
            sources=cited,
        )

    async def prepare(self, request: ChatRequest) -> PreparedTurn:
        """Save the user message in its room and retrieve, committed together.

        Raises:
            NotFoundError: The room or persona is not one the user may use.
            UnprocessableError: The message is over the configured limit, the
                persona asked for does not match the room's, or the room quota
                is reached.
        """
        self._check_length(request.message)
        question = await self._embed(request.message)
        if request.chat_room_id is None:
            saved = await self._start_room(request, question)
        else:
            saved = await self._post_in_room(request.chat_room_id, request, question)
        return PreparedTurn(
            chat_room_id=saved.room_id,
            user_message_id=saved.message_id,
            question=request.message,
            persona=saved.persona,
            history=to_history(saved.history),
            retrieval=Retrieval(
                query=request.message,
                k=self.settings.retrieval_k,
                started_at=question.started_at,
                ended_at=datetime.now(UTC),
                sources=saved.sources,
                error=question.error,
            ),
        )

    async def stream(self, turn: PreparedTurn) -> AsyncIterator[ChatEvent]:
        """Answer a prepared turn as events: meta, sources, tokens, done.

        A provider failure raises after the tokens sent so far; the AI message
        is saved only when generation completed.
        """
        yield ChatEvent(
            "meta",
            {
                "chat_room_id": turn.chat_room_id,
                "user_message_id": turn.user_message_id,
            },
        )
        async with self._trace(turn) as run:
            run.add_retrieval(turn.retrieval)
            sources = turn.sources()
            cited = citations(sources)
            yield ChatEvent("sources", {"sources": [s.model_dump() for s in cited]})
            generation: Generation | None = None
            async for event in self.llm.stream(
                self._prompt(turn, sources),
                model=turn.persona.model,
                temperature=turn.persona.temperature,
                max_tokens=turn.persona.max_tokens,
            ):
                if event.generation is not None:
                    generation = event.generation
                elif event.delta:
                    yield ChatEvent("token", {"delta": event.delta})
            if generation is None:  # pragma: no cover - the gateway always ends so
                raise RuntimeError("the LLM stream ended without a final generation")
            ai_message_id = await self._save_answer(turn, cited, generation)
            run.add_metadata(ai_message_id=ai_message_id)
            run.record(answer=generation.text)
        yield ChatEvent(
            "done",
            {
                "ai_message_id": ai_message_id,
                "ai_response": generation.text,
                "usage": generation.usage,
                "model": generation.model,
            },
        )

    def _trace(self, turn: PreparedTurn) -> AbstractAsyncContextManager[TraceRun]:
        return self.ai.tracing.chat_trace(
            metadata={
                "room_id": turn.chat_room_id,
                "message_id": turn.user_message_id,
                "user_id": str(self.user.id),
                "persona": turn.persona.name,
                "persona_id": turn.persona.id,
            },
            inputs={"question": turn.question},
        )

    async def _embed(self, question: str) -> EmbeddedQuestion:
        started_at = datetime.now(UTC)
        try:
            vector = await self.ai.embeddings.aembed_query(question)
        except DomainError as exc:  # the turn fails after saving the message
            return EmbeddedQuestion(started_at, None, exc)
        return EmbeddedQuestion(started_at, vector)

    def _search(
        self, query: str, question: EmbeddedQuestion, chat_room_id: int
    ) -> dict[str, Any] | None:
        """The hybrid search's arguments; None when the embedding failed."""
        if question.vector is None:
            return None
        return search_arguments(
            self.settings,
            query=query,
            embedding=question.vector,
            model=self.ai.embedding_model_name,
            k=self.settings.retrieval_k,
            chat_room_id=chat_room_id,
        )

    def _prompt(
        self, turn: PreparedTurn, sources: list[RetrievedChunk]
    ) -> list[BaseMessage]:
        return build_chat_messages(
            system_prompt=turn.persona.system_prompt,
            question=turn.question,
            sources=sources,
            history=turn.history,
            history_token_budget=self.settings.history_token_budget,
        )

    def _check_length(self, message: str) -> None:
        limit = self.settings.max_message_chars
        if len(message) > limit:
            raise UnprocessableError(f"message: at most {limit} characters allowed")

    async def _post_in_room(
        self, room_id: int, request: ChatRequest, question: EmbeddedQuestion
    ) -> SavedQuestion:
        """The turn in an existing room: one call, as the user (RLS applies).

        Through the ``TurnPoster``, which saves the turns waiting together.
        """
        posted = await self.turns.post(
            UserTurn(
                claims=self.user.claims,
                chat_room_id=room_id,
                content=request.message,
                virtual_user_id=request.virtual_user_id,
                embedding=question.vector,
            )
        )
        if posted is None:
            raise NotFoundError(f"Chat room {room_id} not found")
        if posted.id is None:  # nothing was saved
            raise UnprocessableError(
                "virtual_user_id: this room already has its persona; change it with "
                f"PATCH /api/chat-rooms/{room_id}"
            )
        return SavedQuestion(
            room_id,
            Persona.answering_in(posted.room),
            posted.id,
            posted.history,
            posted.sources,
        )

    async def _start_room(
        self, request: ChatRequest, question: EmbeddedQuestion
    ) -> SavedQuestion:
        """The first turn: create the room, save the message, retrieve."""
        async with self.database.user_transaction(self.user.claims) as session:
            room_id, persona = await self._new_room(
                ChatRoomGateway(session), VirtualUserGateway(session), request
            )
            message_id = await MessageGateway(session).create(
                chat_room_id=room_id,
                role="user",
                content=request.message,
                sender_user_id=self.user.id,
            )
            search = self._search(request.message, question, room_id)
            sources = [] if search is None else await hybrid_search(session, search)
        return SavedQuestion(room_id, persona, message_id, [], sources)

    async def _new_room(
        self,
        rooms: ChatRoomGateway,
        personas: VirtualUserGateway,
        request: ChatRequest,
    ) -> tuple[int, Persona]:
        await check_room_quota(rooms, self.user.id, self.settings)
        if request.virtual_user_id is not None:
            row = await personas.get_visible(request.virtual_user_id, self.user.id)
            if row is None:
                raise NotFoundError(f"Virtual user {request.virtual_user_id} not found")
        else:
            row = await personas.default_for(self.user.id)
        room = await rooms.create(
            title=room_title(request.message),
            owner_id=self.user.id,
            virtual_user_id=row.id if row is not None else None,
        )
        return room.id, Persona.of(row)

    async def _save_answer(
        self,
        turn: PreparedTurn,
        cited: list[Source],
        generation: Generation,
    ) -> int:
        metadata = {
            "sources": [s.model_dump() for s in cited],
            "model": generation.model,
            "usage": generation.usage,
            "latency_ms": generation.latency_ms,
            "persona": {"id": turn.persona.id, "name": turn.persona.name},
            "reply_to": turn.user_message_id,
        }
        # Written by the service (AnswerWriter): members may not post AI
        # messages (RLS), and the prepared turn already proved this user's
        # membership of the room.
        return await self.answers.save(
            Answer(
                chat_room_id=turn.chat_room_id,
                content=generation.text,
                sender_virtual_user_id=turn.persona.id,
                metadata=metadata,
            )
        )
