"""Splitting a document into retrieval chunks that remember where they came from.

Markdown headings split the text into sections first (so a chunk never straddles
two sections and keeps its heading path for citations); sections longer than the
chunk size are then cut by LangChain's recursive splitter on paragraph, line,
sentence and word boundaries, with overlap.
"""

import re
from dataclasses import dataclass

from langchain_text_splitters import (
    MarkdownHeaderTextSplitter,
    RecursiveCharacterTextSplitter,
)

HEADING_LEVELS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
HEADING_SEPARATOR = " > "
# MarkdownHeaderTextSplitter joins the paragraphs of a section with this.
_PARAGRAPH_JOIN = "  \n"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING_ONLY = re.compile(r"^#{1,6} [^\n]*$")


@dataclass(frozen=True)
class Chunk:
    """One retrieval unit of a document.

    Attributes:
        index: 0-based position within the document.
        content: The chunk's text (its section heading included).
        heading_path: Headings above the chunk joined with " > ".
        token_count: Estimated number of model tokens.
    """

    index: int
    content: str
    heading_path: str
    token_count: int


def estimate_tokens(text: str) -> int:
    """Approximate a WordPiece/BPE token count: words and punctuation marks.

    Good to within ~20% for English prose, which is all the budget needs; the
    exact count would tie the domain to one model's tokenizer.
    """
    words_and_marks = _TOKEN.findall(text)
    long_words = sum(1 for w in words_and_marks if len(w) > 8)
    return len(words_and_marks) + long_words


def chunk_text(text: str, *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split text (Markdown or plain) into ordered chunks with heading paths.

    Args:
        text: The document's text.
        chunk_size: Maximum characters per chunk.
        chunk_overlap: Characters shared by consecutive chunks of a section.

    Returns:
        The chunks in document order; empty when the text has no content.
    """
    sections = MarkdownHeaderTextSplitter(
        headers_to_split_on=HEADING_LEVELS, strip_headers=False
    ).split_text(text)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    chunks: list[Chunk] = []
    for section in sections:
        heading_path = HEADING_SEPARATOR.join(
            section.metadata[name]
            for _, name in HEADING_LEVELS
            if section.metadata.get(name)
        )
        body = section.page_content.replace(_PARAGRAPH_JOIN, "\n\n")
        for content in _attach_lone_headings(splitter.split_text(body)):
            chunks.append(
                Chunk(
                    index=len(chunks),
                    content=content,
                    heading_path=heading_path,
                    token_count=estimate_tokens(content),
                )
            )
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """The text to embed: the heading path gives a chunk its section's context."""
    if not chunk.heading_path:
        return chunk.content
    return f"{chunk.heading_path}\n\n{chunk.content}"


def _attach_lone_headings(pieces: list[str]) -> list[str]:
    """Join a piece that is only a heading line to the piece that follows it."""
    merged: list[str] = []
    pending_heading = ""
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if _HEADING_ONLY.match(piece):
            pending_heading = f"{pending_heading}\n{piece}".strip()
            continue
        merged.append(f"{pending_heading}\n{piece}" if pending_heading else piece)
        pending_heading = ""
    if pending_heading:
        merged.append(pending_heading)
    return merged
