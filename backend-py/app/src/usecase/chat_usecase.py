"""ChatUseCase: one chat turn, from the user's message to the saved AI answer.

The turn, in the order :meth:`ChatUseCase.execute` runs it:

1. **The caller** is verified and has their ``general_users`` row before the
   turn starts (``CurrentUserGateway``, through the ``CurrentUserDep``
   dependency); the use case gets them as ``user``. A valid question takes
   one of their chat tokens (``RateLimitGateway``).
2. **Embed the question** (``EmbeddingsGateway``), holding no database
   connection.
3. **Ask**, in one short transaction as the caller (row-level security
   applies): the room, joined or created (``ChatRoomGateway``); the persona
   answering in it (``VirtualUserGateway.answering_in``, the one place that
   decides it); the history and the question, saved (``MessageGateway``);
   the knowledge for it (``EmbeddingsGateway``: the hybrid search). Committed,
   so the question is kept whatever happens to generation.
4. **Generate** (``LLMGateway``: LangChain with OpenAI or the offline model),
   holding no database connection: a model call takes seconds.
5. **Answer**: save the AI message with its sources, model, usage and latency
   as the service, one statement (``MessageGateway.save_answer``): members may
   not write AI messages, and step 3 proved this user's membership.

When the embedding provider fails, step 3 still saves the question and the
turn then fails with the provider's error (502/504), as a failed generation
does. A failed or interrupted generation stores no AI message: the user sees
their question in the history and an error, never a silent partial answer.
Steps 4-5 are one LangSmith trace when tracing is on.

A persona called in a room answers through the same steps (``admit``,
``retrieve``, ``trace``, ``write``, ``save_answer``): see
:mod:`src.usecase.room_post_usecase`.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from langchain_core.messages import BaseMessage
from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.entity.chat import (
    ChatRequest,
    ChatResponse,
    Source,
)
from src.domain.entity.knowledge import Retrieval, RetrievedChunk
from src.domain.entity.turn import (
    ChatEvent,
    Persona,
    Turn,
    citations,
    room_title,
)
from src.domain.entity.user import CurrentUser
from src.domain.errors import DomainError, UnprocessableError
from src.domain.service.follow_up import (
    fuse_rankings,
    is_follow_up,
    retrieval_queries,
)
from src.domain.service.prompt_builder import (
    HISTORY_MESSAGES,
    HistoryMessage,
    build_chat_messages,
)
from src.gateway.chat_room_gateway import ChatRoomGateway, JoinedRoom
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.gateway.llm_gateway import Generation, LLMGateway, StreamEvent, TraceRun
from src.gateway.message_gateway import (
    Answer,
    HistoryEntry,
    MessageGateway,
)
from src.gateway.rate_limit_gateway import RateLimitGateway
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.settings import Settings
from src.usecase.chat_room_usecase import open_room

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens a transaction; it commits when its block ends, rolls back on error."""


def fused(rankings: list[list[RetrievedChunk]], *, limit: int) -> list[RetrievedChunk]:
    """Several rankings of chunks as one (reciprocal rank fusion), best first."""
    if len(rankings) == 1:
        return rankings[0][:limit]
    chunks = {
        chunk.chunk_id: chunk for ranking in reversed(rankings) for chunk in ranking
    }
    ids = fuse_rankings(
        [[chunk.chunk_id for chunk in ranking] for ranking in rankings], limit=limit
    )
    return [chunks[chunk_id] for chunk_id in ids]


def finished(generation: Generation | None) -> Generation:
    """The final generation of a stream, which the LLM gateway always sends."""
    if generation is None:  # pragma: no cover - the gateway always ends so
        raise RuntimeError("the LLM stream ended without a final generation")
    return generation


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
        user: CurrentUser,
        as_caller: Transaction,
        as_service: Transaction,
        knowledge: EmbeddingsGateway,
        llm: LLMGateway,
        limits: RateLimitGateway,
        settings: Settings,
    ) -> None:
        """Take the caller, their transactions, the gateways and the settings.

        Args:
            user: The verified caller.
            as_caller: Opens a transaction as the caller (row-level security).
            as_service: Opens a session as the service (bypasses it), for
                the answer: one statement, committed on its own.
            knowledge: Query embeddings and the hybrid search.
            llm: Generation (and the turn's trace).
            limits: The per-user rate limits.
            settings: The app's settings.
        """
        self.user = user
        self.as_caller = as_caller
        self.as_service = as_service
        self.knowledge = knowledge
        self.llm = llm
        self.limits = limits
        self.settings = settings

    async def execute(self, request: ChatRequest) -> ChatResponse:
        """Run a whole turn and return the saved answer with its sources."""
        turn = await self.ask(request)
        async with self.trace(turn) as run:
            run.add_retrieval(turn.retrieval)
            sources = turn.sources()
            generation = await self.llm.generate(
                self._prompt(turn, sources),
                model=turn.persona.model,
                temperature=turn.persona.temperature,
                max_tokens=turn.persona.max_tokens,
            )
            cited = citations(sources)
            ai_message_id = await self.save_answer(turn, cited, generation)
            run.add_metadata(ai_message_id=ai_message_id)
            run.record(answer=generation.text)
        return ChatResponse(
            chat_room_id=turn.chat_room_id,
            user_message_id=turn.user_message_id,
            ai_message_id=ai_message_id,
            ai_response=generation.text,
            sources=cited,
        )

    async def ask(self, request: ChatRequest) -> Turn:
        """Save the question in its room, then retrieve the knowledge for it.

        The question is committed first, in one short transaction, so it is
        kept whatever happens next. Retrieval follows the conversation: a
        follow-up is searched as a standalone question (see
        :meth:`_search_queries`), embedded with no connection held, then
        searched in a second short transaction.

        Raises:
            NotFoundError: The room or persona is not one the user may use.
            UnprocessableError: The message is over the configured limit, the
                persona asked for does not match the room's, or the room quota
                is reached.
            RateLimitedError: Over ``RATE_LIMIT_CHAT_PER_MINUTE`` (a message
                refused for its length does not count).
        """
        await self.admit(request.message)
        async with self.as_caller() as session:
            joined = await self._room(session, request)
            room = joined.room
            persona = await VirtualUserGateway(session).answering_in(joined)
            messages = MessageGateway(session)
            history = to_history(
                await messages.history(room.id, before=None, limit=HISTORY_MESSAGES)
            )
            message_id = await messages.save_question(
                chat_room_id=room.id,
                sender_user_id=self.user.id,
                content=request.message,
            )
        return Turn(
            chat_room_id=room.id,
            user_message_id=message_id,
            question=request.message,
            persona=Persona.of(persona),
            history=history,
            retrieval=await self.retrieve(request.message, history, room.id),
        )

    async def stream(self, turn: Turn) -> AsyncIterator[ChatEvent]:
        """Answer an asked turn as events: meta, sources, tokens, done.

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
        async with self.trace(turn) as run:
            run.add_retrieval(turn.retrieval)
            sources = turn.sources()
            cited = citations(sources)
            yield ChatEvent("sources", {"sources": [s.model_dump() for s in cited]})
            written: Generation | None = None
            async for event in self.write(turn, sources):
                if event.generation is not None:
                    written = event.generation
                elif event.delta:
                    yield ChatEvent("token", {"delta": event.delta})
            answer = finished(written)
            ai_message_id = await self.save_answer(turn, cited, answer)
            run.add_metadata(ai_message_id=ai_message_id)
            run.record(answer=answer.text)
        yield ChatEvent(
            "done",
            {
                "ai_message_id": ai_message_id,
                "ai_response": answer.text,
                "usage": answer.usage,
                "model": answer.model,
            },
        )

    async def admit(self, message: str) -> None:
        """Refuse a message over the length limit, then take a chat token.

        A message refused for its length costs no token.

        Raises:
            UnprocessableError: Over ``MAX_MESSAGE_CHARS``.
            RateLimitedError: Over ``RATE_LIMIT_CHAT_PER_MINUTE``.
        """
        limit = self.settings.max_message_chars
        if len(message) > limit:
            raise UnprocessableError(f"message: at most {limit} characters allowed")
        await self.limits.take(
            self.user.id,
            bucket="chat",
            per_minute=self.settings.rate_limit_chat_per_minute,
            what="chat messages",
        )

    async def _room(self, session: AsyncSession, request: ChatRequest) -> JoinedRoom:
        """The room the question goes to: the caller's, or a new one.

        Raises:
            NotFoundError: The room does not exist for the caller, or the
                persona asked for a new room is not one they may pick.
            UnprocessableError: The room has another persona than the one
                asked for, or the room quota is reached.
        """
        rooms = ChatRoomGateway(session)
        if request.chat_room_id is None:
            return await open_room(
                rooms=rooms,
                personas=VirtualUserGateway(session),
                owner_id=self.user.id,
                title=room_title(request.message),
                persona_id=request.virtual_user_id,
                settings=self.settings,
            )
        joined = await rooms.joined(request.chat_room_id, self.user.id)
        asked = request.virtual_user_id
        if asked is not None and asked != joined.room.virtual_user_id:
            raise UnprocessableError(
                "virtual_user_id: this room already has its persona; change it with "
                f"PATCH /api/chat-rooms/{joined.room.id}"
            )
        return joined

    async def retrieve(
        self, question: str, history: list[HistoryMessage], chat_room_id: int
    ) -> Retrieval:
        """The knowledge for a question: what to search, embedded, then searched.

        A provider's failure (the rewrite or the embedding) is kept in the
        retrieval: the turn fails with it after the question was saved.
        """
        started_at = datetime.now(UTC)
        searched: tuple[str, ...] = (question,)
        try:
            searched = await self._search_queries(question, history)
            embeddings = [await self.knowledge.embed(query) for query in searched]
        except DomainError as exc:
            return self._retrieval(question, searched, started_at, error=exc)
        k = self.settings.retrieval_k
        async with self.as_caller() as session:
            rankings = [
                await self.knowledge.search_with_embedding(
                    session,
                    query=query,
                    embedding=embedding,
                    k=k,
                    chat_room_id=chat_room_id,
                )
                for query, embedding in zip(searched, embeddings, strict=True)
            ]
        return self._retrieval(
            question, searched, started_at, sources=fused(rankings, limit=k)
        )

    async def _search_queries(
        self, question: str, history: list[HistoryMessage]
    ) -> tuple[str, ...]:
        """What to search for a question, following the conversation.

        A room's first question is searched as it is. A follow-up ("And what
        do people eat there?") is rewritten into a standalone question by the
        chat model when one is configured; offline, it is searched both alone
        and joined with the previous user message (the rankings are fused).
        """
        pairs = [(message.role, message.content) for message in history]
        if not is_follow_up(pairs):
            return (question,)
        if self.llm.rewrites_questions:
            return (await self.llm.standalone_question(question, pairs),)
        return retrieval_queries(question, pairs)

    def _retrieval(
        self,
        question: str,
        searched: tuple[str, ...],
        started_at: datetime,
        *,
        sources: list[RetrievedChunk] | None = None,
        error: DomainError | None = None,
    ) -> Retrieval:
        return Retrieval(
            query=question,
            k=self.settings.retrieval_k,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            sources=sources or [],
            error=error,
            searched=searched,
        )

    def trace(self, turn: Turn) -> AbstractAsyncContextManager[TraceRun]:
        """The turn's trace run (LangSmith when tracing is on), around its answer."""
        return self.llm.trace(
            metadata={
                "room_id": turn.chat_room_id,
                "message_id": turn.user_message_id,
                "user_id": str(self.user.id),
                "persona": turn.persona.name,
                "persona_id": turn.persona.id,
            },
            inputs={"question": turn.question},
        )

    def write(
        self, turn: Turn, sources: list[RetrievedChunk]
    ) -> AsyncIterator[StreamEvent]:
        """The persona's answer as the model writes it: deltas, then the whole."""
        return self.llm.stream(
            self._prompt(turn, sources),
            model=turn.persona.model,
            temperature=turn.persona.temperature,
            max_tokens=turn.persona.max_tokens,
        )

    def _prompt(self, turn: Turn, sources: list[RetrievedChunk]) -> list[BaseMessage]:
        return build_chat_messages(
            system_prompt=turn.persona.system_prompt,
            question=turn.question,
            sources=sources,
            history=turn.history,
            history_token_budget=self.settings.history_token_budget,
            asker_name=turn.asker_name,
        )

    async def save_answer(
        self, turn: Turn, cited: list[Source], generation: Generation
    ) -> int:
        """Save the persona's complete answer as the service; return its id."""
        answer = Answer(
            chat_room_id=turn.chat_room_id,
            content=generation.text,
            sender_virtual_user_id=turn.persona.id,
            metadata={
                "sources": [s.model_dump() for s in cited],
                "model": generation.model,
                "usage": generation.usage,
                "latency_ms": generation.latency_ms,
                "persona": {"id": turn.persona.id, "name": turn.persona.name},
                "reply_to": turn.user_message_id,
                "searched": list(turn.retrieval.searched),
            },
        )
        async with self.as_service() as session:
            return await MessageGateway(session).save_answer(answer)
