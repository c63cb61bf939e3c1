"""Knowledge types shared by retrieval, prompting and citations."""

from dataclasses import dataclass


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
    """

    chunk_id: int
    document_id: int
    title: str
    content: str
    heading_path: str
    score: float

    def snippet(self, length: int = 240) -> str:
        """The start of the chunk, cut at a word boundary."""
        text = " ".join(self.content.split())
        if len(text) <= length:
            return text
        return text[:length].rsplit(" ", 1)[0] + "…"
