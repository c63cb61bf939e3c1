"""Knowledge types shared by retrieval, prompting and citations."""

from dataclasses import dataclass, field
from datetime import datetime

from src.domain.errors import DomainError


@dataclass(frozen=True)
class RetrievedChunk:
    """A chunk found for a query, with what a citation needs.

    Attributes:
        chunk_id: ``document_chunks.id``.
        document_id: ``documents.id``.
        title: The document's title.
        content: The chunk's text.
        heading_path: Where the chunk sits in its document ("Install > Linux").
        score: The fused relevance score (higher is better).
        span: ``(start, end)`` character offsets of the chunk in the document's
            text; None when unknown (chunks indexed before spans were kept).
        pages: ``(first, last)`` PDF pages the chunk covers; None without pages.
    """

    chunk_id: int
    document_id: int
    title: str
    content: str
    heading_path: str
    score: float
    span: tuple[int, int] | None = None
    pages: tuple[int, int] | None = None

    def snippet(self, length: int = 240) -> str:
        """The start of the chunk, whitespace collapsed, cut at a word boundary."""
        # Collapsing a prefix gives a prefix of the collapsed whole: only a
        # chunk that starts with that much whitespace needs all of its text.
        head = self.content[: length * 2]
        text = " ".join(head.split())
        if len(text) <= length + 1 and len(head) < len(self.content):
            text = " ".join(self.content.split())
        if len(text) <= length:
            return text
        return text[:length].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class Retrieval:
    """One retrieval for a chat turn: what it found, when, or why it failed.

    Attributes:
        query: The user's message.
        k: How many chunks were asked for.
        started_at: When the query embedding started (UTC).
        ended_at: When the search ended (UTC).
        sources: The chunks found, best first.
        error: The provider's error (embedding, or the question's rewrite),
            when retrieval could not run.
        searched: What was searched for: the message itself; for a follow-up,
            the standalone question a model rewrote it into, or (offline) the
            message and the message joined with the previous one.
    """

    query: str
    k: int
    started_at: datetime
    ended_at: datetime
    sources: list[RetrievedChunk] = field(default_factory=list)
    error: DomainError | None = None
    searched: tuple[str, ...] = ()
