"""Splitting a document into retrieval chunks that remember where they came from.

Markdown headings split the text into sections first (so a chunk never straddles
two sections and keeps its heading path for citations); sections longer than the
chunk size are then cut by LangChain's recursive splitter on paragraph, line,
sentence and word boundaries, with overlap.

A chunk also knows where it lies, for citations: its character span in the
document's text, and for a PDF the pages it covers. The splitters tidy
whitespace, so a chunk's text is found again in the document by its words, with
any run of whitespace between them.
"""

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_text_splitters import (
    MarkdownHeaderTextSplitter,
    RecursiveCharacterTextSplitter,
)

from src.domain.service.pages import PageSpan

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
        span: ``(start, end)`` character offsets of the chunk in the document's
            text (``text[start:end]`` holds its words); None if not found.
        pages: ``(first, last)`` PDF page numbers the chunk covers (equal for
            one page); None when the document has no pages.
    """

    index: int
    content: str
    heading_path: str
    token_count: int
    span: tuple[int, int] | None = None
    pages: tuple[int, int] | None = None


def estimate_tokens(text: str) -> int:
    """Approximate a WordPiece/BPE token count: words and punctuation marks.

    Good to within ~20% for English prose, which is all the budget needs; the
    exact count would tie the domain to one model's tokenizer.
    """
    words_and_marks = _TOKEN.findall(text)
    long_words = sum(1 for w in words_and_marks if len(w) > 8)
    return len(words_and_marks) + long_words


def chunk_text(
    text: str,
    *,
    chunk_size: int,
    chunk_overlap: int,
    pages: Sequence[PageSpan] = (),
) -> list[Chunk]:
    """Split text (Markdown or plain) into ordered chunks with their locations.

    Args:
        text: The document's text.
        chunk_size: Maximum characters per chunk.
        chunk_overlap: Characters shared by consecutive chunks of a section.
        pages: Where each page lies in ``text`` (``ParsedDocument.pages`` of a
            PDF), in order; empty for a document without pages.

    Returns:
        The chunks in document order, each with its heading path, span and
        pages; empty when the text has no content.
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
    cursor = 0
    for section in sections:
        heading_path = HEADING_SEPARATOR.join(
            section.metadata[name]
            for _, name in HEADING_LEVELS
            if section.metadata.get(name)
        )
        body = section.page_content.replace(_PARAGRAPH_JOIN, "\n\n")
        for content in _attach_lone_headings(splitter.split_text(body)):
            span = locate(text, content, cursor)
            if span is not None:
                cursor = span[0] + 1
            chunks.append(
                Chunk(
                    index=len(chunks),
                    content=content,
                    heading_path=heading_path,
                    token_count=estimate_tokens(content),
                    span=span,
                    pages=pages_of(span, pages),
                )
            )
    return chunks


def locate(text: str, passage: str, start: int = 0) -> tuple[int, int] | None:
    """The span of ``passage``'s words in ``text``, whatever whitespace between.

    Args:
        text: The document's text.
        passage: Text cut from it (whitespace may differ).
        start: Where to look from first; the whole text is searched after.

    Returns:
        ``(start, end)`` of the first match, or None when the words are not there.
    """
    words = passage.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(map(re.escape, words)))
    found = pattern.search(text, start) or pattern.search(text)
    return (found.start(), found.end()) if found else None


def pages_of(
    span: tuple[int, int] | None, pages: Sequence[PageSpan]
) -> tuple[int, int] | None:
    """The first and last page numbers a span of the text touches.

    A span that starts in the blank between two pages counts from the next one.
    """
    if span is None or not pages:
        return None
    ends = [page.end for page in pages]
    first = min(bisect.bisect_right(ends, span[0]), len(pages) - 1)
    last = min(bisect.bisect_left(ends, span[1]), len(pages) - 1)
    return (pages[first].number, pages[max(first, last)].number)


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
