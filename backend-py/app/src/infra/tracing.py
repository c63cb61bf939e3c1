"""LangSmith tracing of chat turns, off unless ``LANGSMITH_TRACING=true``.

One :class:`langsmith.Client` is built at start-up, pointed at
``LANGSMITH_ENDPOINT`` with ``LANGSMITH_API_KEY``; it sends runs from its own
background thread in batches, so tracing never makes a request wait, and it is
flushed at shutdown. A chat turn is one root run carrying the room, message,
user and persona as metadata; retrieval is a child run, and the LangChain model
call inside the turn becomes a child run by itself::

    async with ai.tracing.chat_trace(metadata={"room_id": ..., ...}) as run:
        run.add_retrieval(turn.retrieval)  # it ran before, with the user message
        generation = await llm.generate(...)
        run.record(answer=generation.text)

(``retrieval_span`` traces a retrieval as it runs, inside the trace.)

When tracing is off, both helpers are no-ops that also switch LangChain's own
tracing off inside the block, whatever the environment says.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any
from uuid import UUID

import langsmith
import langsmith.utils
from langsmith.run_trees import RunTree

from src.domain.entity.knowledge import Retrieval, RetrievedChunk
from src.settings import Settings

logger = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 5.0


class TraceRun:
    """A run being traced (or nothing, when tracing is off)."""

    def __init__(self, run: RunTree | None) -> None:
        self._run = run

    @property
    def id(self) -> UUID | None:
        """The LangSmith run id, or None when tracing is off."""
        return self._run.id if self._run is not None else None

    def record(self, **outputs: Any) -> None:
        """Add outputs to the run."""
        if self._run is not None:
            self._run.add_outputs(outputs)

    def add_metadata(self, **metadata: Any) -> None:
        """Add metadata known only after the run started (e.g. a message id)."""
        if self._run is not None:
            self._run.add_metadata(metadata)

    def record_sources(self, sources: Sequence[RetrievedChunk]) -> None:
        """Record retrieved chunks as the documents of a retriever run."""
        self.record(documents=_documents(sources))

    def add_retrieval(self, retrieval: Retrieval, name: str = "retrieval") -> None:
        """Record a retrieval that already ran as a child retriever run.

        A chat turn retrieves in the transaction that saves the user message,
        before its trace starts; the child run keeps the retrieval's own times.
        """
        if self._run is None:
            return
        child = self._run.create_child(
            name,
            run_type="retriever",
            inputs={"query": retrieval.query, "searched": list(retrieval.searched)},
            outputs={"documents": _documents(retrieval.sources)},
            error=str(retrieval.error) if retrieval.error is not None else None,
            start_time=retrieval.started_at,
            end_time=retrieval.ended_at,
        )
        child.add_metadata({"k": retrieval.k})
        child.post()


def _documents(sources: Sequence[RetrievedChunk]) -> list[dict[str, Any]]:
    """Retrieved chunks as LangChain-style documents (a retriever's outputs)."""
    return [
        {
            "page_content": chunk.content,
            "metadata": {
                "chunk_id": chunk.chunk_id,
                "document_id": chunk.document_id,
                "title": chunk.title,
                "heading_path": chunk.heading_path,
                "score": chunk.score,
            },
        }
        for chunk in sources
    ]


class Tracing:
    """Chat-turn tracing to LangSmith; a no-op without a client."""

    def __init__(self, client: langsmith.Client | None, *, project: str) -> None:
        """Trace with this client, or not at all when it is None.

        Args:
            client: The LangSmith client built at start-up.
            project: The LangSmith project runs are sent to.
        """
        self._client = client
        self.project = project
        # Without a client, LangChain would still trace when the environment
        # says so (LANGSMITH_TRACING, or the older LANGCHAIN_TRACING_V2): only
        # then does a turn need switching it off (entering that context on
        # every turn is not free).
        self._environment_traces = client is None and bool(
            langsmith.utils.tracing_is_enabled()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "Tracing":
        """Tracing as the ``LANGSMITH_*`` settings ask (off by default).

        Raises:
            ValueError: Tracing to hosted LangSmith is on without an API key.
        """
        if not settings.langsmith_tracing:
            return cls(None, project=settings.langsmith_project)
        api_key = settings.langsmith_api_key
        if api_key is None and settings.langsmith_endpoint is None:
            raise ValueError(
                "LANGSMITH_TRACING is on but LANGSMITH_API_KEY is not set "
                "(set it, or LANGSMITH_ENDPOINT for a self-hosted server)"
            )
        client = langsmith.Client(
            api_url=settings.langsmith_endpoint,
            api_key=api_key.get_secret_value() if api_key is not None else None,
            auto_batch_tracing=True,
        )
        return cls(client, project=settings.langsmith_project)

    @property
    def enabled(self) -> bool:
        """Whether runs are sent to LangSmith."""
        return self._client is not None

    @property
    def endpoint(self) -> str | None:
        """Where runs are sent, when tracing is on."""
        return self._client.api_url if self._client is not None else None

    @asynccontextmanager
    async def chat_trace(
        self,
        *,
        metadata: Mapping[str, Any],
        name: str = "chat",
        inputs: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[TraceRun]:
        """Trace a chat turn as a root run; model calls inside become children.

        Args:
            metadata: What identifies the turn: room_id, message_id, user_id,
                persona.
            name: The run's name.
            inputs: The turn's inputs (e.g. the question).

        Yields:
            The run, to record outputs on.
        """
        if self._client is None:
            with (
                langsmith.tracing_context(enabled=False)
                if self._environment_traces
                else nullcontext()
            ):
                yield TraceRun(None)
            return
        with langsmith.tracing_context(
            enabled=True, client=self._client, project_name=self.project
        ):
            async with langsmith.trace(
                name,
                run_type="chain",
                inputs=dict(inputs or {}),
                metadata=dict(metadata),
                project_name=self.project,
                client=self._client,
            ) as run:
                yield TraceRun(run)

    @asynccontextmanager
    async def retrieval_span(
        self,
        *,
        query: str,
        metadata: Mapping[str, Any] | None = None,
        name: str = "retrieval",
    ) -> AsyncIterator[TraceRun]:
        """Trace retrieval as a child run of the current chat trace.

        Args:
            query: The search query.
            metadata: Extra details (k, filters).
            name: The run's name.

        Yields:
            The run; call ``record_sources`` with what was found.
        """
        if self._client is None:
            yield TraceRun(None)
            return
        async with langsmith.trace(
            name,
            run_type="retriever",
            inputs={"query": query},
            metadata=dict(metadata or {}),
        ) as run:
            yield TraceRun(run)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait (at most ``timeout_s``) until the queued runs are sent."""
        if self._client is not None:
            self._client.flush(timeout=timeout_s)

    async def aclose(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Send what is queued, then stop the background thread (at shutdown)."""
        if self._client is not None:
            await asyncio.to_thread(self._client.close, timeout_s)
            logger.info("tracing flushed", extra={"endpoint": self.endpoint})
