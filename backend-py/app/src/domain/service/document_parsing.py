"""Turning an uploaded file into the text that is stored and indexed.

Plain text and Markdown are kept as they are; PDF text is extracted page by page
with pypdf; HTML is reduced to its readable text with BeautifulSoup, headings
rewritten as Markdown headings so chunking keeps the document's structure.

PDF and HTML parsing can take time and memory out of proportion to the file
(deep nesting, compression bombs): those types are parsed by the ingestion
worker in a child process with a time and memory limit
(``src/infra/bounded_parse.py``), and :class:`ParseLimits` bounds what a
parse may produce.
"""

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from bs4 import BeautifulSoup, Tag
from pypdf import Configuration, PdfReader, apply_configuration, get_configuration
from pypdf.errors import LimitReachedError, PdfReadError

from src.domain.errors import UnprocessableError, UnsupportedMediaTypeError
from src.domain.service.pages import PageSpan, page_spans_metadata

MIME_BY_EXTENSION = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".htm": "text/html",
}
SUPPORTED_EXTENSIONS = tuple(MIME_BY_EXTENSION)
_MIME_ALIASES = {
    "text/x-markdown": "text/markdown",
    "application/xhtml+xml": "text/html",
}
SUPPORTED_MEDIA_TYPES = (*dict.fromkeys(MIME_BY_EXTENSION.values()), *_MIME_ALIASES)
"""The declared types read when a file's extension is none of the supported ones."""
_UNREADABLE_HTML = ("script", "style", "noscript", "template", "nav", "footer", "svg")
_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BLOCK_TAGS = (
    *("p", "div", "section", "article", "li", "dt", "dd", "tr", "pre"),
    *("blockquote", "table", "ul", "ol", "dl", "br", "hr", "figure"),
)
PARSED_BY_THE_WORKER = frozenset({"application/pdf", "text/html"})
"""Types whose parse may be costly: stored as files, parsed out of the API."""
_BLANK_LINES = re.compile(r"\n{3,}")
_MAX_TITLE_CHARS = 200
MAX_PAGE_CHARS = 100_000
"""Text of one PDF page: a dense printed page holds a few thousand characters."""
MAX_CHARS_PER_FILE_BYTE = 20
"""Extracted characters per byte of the file: text compresses a few times, a
compression bomb (or pages that share one stream) by far more."""
STREAM_BYTES_PER_UPLOAD_BYTE = 4
"""A decompressed PDF stream may be this many times the upload limit."""


@dataclass(frozen=True)
class ParseLimits:
    """What parsing one file may produce.

    Attributes:
        max_chars: Characters of extracted text for the whole document.
        max_page_chars: Characters of extracted text per PDF page.
        max_stream_bytes: Bytes one PDF stream may decompress to.
    """

    max_chars: int
    max_page_chars: int = MAX_PAGE_CHARS
    max_stream_bytes: int = 75_000_000

    @classmethod
    def relative_to(cls, max_upload_bytes: int) -> "ParseLimits":
        """The limits for uploads of at most ``max_upload_bytes``.

        A document's text may be as long as a plain-text upload could be; a
        stream may inflate to a few times the upload limit.
        """
        return cls(
            max_chars=max_upload_bytes,
            max_page_chars=min(MAX_PAGE_CHARS, max_upload_bytes),
            max_stream_bytes=STREAM_BYTES_PER_UPLOAD_BYTE * max_upload_bytes,
        )

    def max_chars_for(self, file_bytes: int) -> int:
        """The text allowed from a file of this size (and never past the limit)."""
        return min(self.max_chars, max(file_bytes, 1024) * MAX_CHARS_PER_FILE_BYTE)


_PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class ParsedDocument:
    """The text of a file and what could be learned about it.

    Attributes:
        title: The document's own title, else the file name without extension.
        content: The extracted text (Markdown or plain).
        mime_type: The type the file was read as.
        metadata: Extra facts (page count of a PDF).
        pages: Where each non-empty page lies in ``content`` (PDF only), for
            ``chunk_text(..., pages=...)``.
    """

    title: str
    content: str
    mime_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[PageSpan, ...] = ()


def detect_mime_type(filename: str, content_type: str | None) -> str:
    """The supported type of a file, from its extension or declared type.

    Raises:
        UnsupportedMediaTypeError: Neither names a supported type.
    """
    by_extension = MIME_BY_EXTENSION.get(PurePath(filename).suffix.lower())
    if by_extension:
        return by_extension
    declared = (content_type or "").split(";")[0].strip().lower()
    declared = _MIME_ALIASES.get(declared, declared)
    if declared in MIME_BY_EXTENSION.values():
        return declared
    raise UnsupportedMediaTypeError(
        f"cannot read {filename!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def fallback_title(filename: str) -> str:
    """The title of a file that names none: its name without the extension."""
    return PurePath(filename).stem or "Untitled"


def parse_document(
    filename: str,
    data: bytes,
    content_type: str | None = None,
    limits: ParseLimits | None = None,
) -> ParsedDocument:
    """Extract the text and a title from an uploaded file.

    Args:
        filename: The uploaded file's name (its extension decides the reader).
        data: The file's bytes.
        content_type: The declared media type, used when the extension is unknown.
        limits: What the parse may produce; by default relative to the file.

    Returns:
        The parsed document.

    Raises:
        UnsupportedMediaTypeError: The file type is not supported.
        UnprocessableError: The file is damaged, contains no text, or more
            text than ``limits`` allow.
    """
    mime_type = detect_mime_type(filename, content_type)
    limits = limits or ParseLimits.relative_to(max(len(data), 1024))
    parsed = _READERS[mime_type](data, fallback_title(filename), limits)
    if not parsed.content.strip():
        raise UnprocessableError(f"{filename!r} contains no text")
    allowed = limits.max_chars_for(len(data))
    if len(parsed.content) > allowed:
        raise UnprocessableError(
            f"{filename!r} holds more than {allowed} characters of text"
            f" ({len(data)} bytes of file)"
        )
    return parsed


def guess_markdown_title(text: str, fallback: str) -> str:
    """The first top-level Markdown heading, else ``fallback``."""
    for line in text.splitlines():
        if line.startswith("# "):
            return _clip_title(line[2:]) or fallback
    return fallback


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM), falling back to Windows-1252."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\x00", "")


def _read_plain(data: bytes, fallback_title: str, _: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
    return ParsedDocument(title=fallback_title, content=text, mime_type="text/plain")


def _read_markdown(data: bytes, fallback_title: str, _: ParseLimits) -> ParsedDocument:
    text = decode_text(data)
    return ParsedDocument(
        title=guess_markdown_title(text, fallback_title),
        content=text,
        mime_type="text/markdown",
    )


def _read_pdf(data: bytes, fallback_title: str, limits: ParseLimits) -> ParsedDocument:
    try:
        with apply_configuration(_pdf_configuration(limits)):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise UnprocessableError("the PDF is encrypted")
            pages = _pdf_pages_text(reader, limits, file_bytes=len(data))
            title = reader.metadata.title if reader.metadata else None
    except LimitReachedError as exc:
        raise UnprocessableError(f"the PDF is over a parsing limit: {exc}") from exc
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnprocessableError(f"the PDF cannot be read: {exc}") from exc
    content, spans = join_pages(pages)
    return ParsedDocument(
        title=_clip_title(title or "") or fallback_title,
        content=content,
        mime_type="application/pdf",
        metadata={"page_count": len(pages)} | page_spans_metadata(content, spans),
        pages=spans,
    )


def _pdf_configuration(limits: ParseLimits) -> Configuration:
    """The limits of pypdf, set from ours: no stream inflates past the bound."""
    stream = limits.max_stream_bytes
    return get_configuration().with_overwrites(
        **{
            "maximum_declared_stream_length": stream,
            "array_based_stream_maximum_output_length": stream,
            "jbig2_maximum_output_length": stream,
            "lzw_maximum_output_length": stream,
            "run_length_maximum_output_length": stream,
            "zlib_maximum_output_length": stream,
            "brotli_maximum_output_length": stream,
            "stream_decoding_work_maximum_length": 4 * stream,
        }
    )


def _pdf_pages_text(
    reader: PdfReader, limits: ParseLimits, *, file_bytes: int
) -> list[str]:
    """Each page's text, refusing a page or a total over the limits as it goes."""
    allowed = limits.max_chars_for(file_bytes)
    max_page_chars = limits.max_page_chars
    pages: list[str] = []
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        if len(text) > max_page_chars:
            raise UnprocessableError(
                f"page {number} holds more than {max_page_chars} characters of text"
            )
        total += len(text)
        if total > allowed:
            raise UnprocessableError(
                f"the PDF holds more than {allowed} characters of text"
                f" ({file_bytes} bytes of file)"
            )
        pages.append(text)
    return pages


def join_pages(pages: list[str]) -> tuple[str, tuple[PageSpan, ...]]:
    """Join the pages' texts with a blank line, remembering where each lies.

    Empty pages are left out of the text (and of the spans); the numbers stay
    those of the file.
    """
    parts: list[str] = []
    spans: list[PageSpan] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        page_text = page.replace("\x00", "").strip()
        if not page_text:
            continue
        if parts:
            offset += len(_PAGE_SEPARATOR)
        spans.append(PageSpan(number, offset, offset + len(page_text)))
        parts.append(page_text)
        offset += len(page_text)
    return _PAGE_SEPARATOR.join(parts), tuple(spans)


def _read_html(data: bytes, fallback_title: str, _: ParseLimits) -> ParsedDocument:
    soup = BeautifulSoup(data, "html.parser")
    title_tag = soup.find("title")
    first_h1 = soup.find("h1")
    title = _clip_title(title_tag.get_text(" ") if title_tag else "") or _clip_title(
        first_h1.get_text(" ") if first_h1 else ""
    )
    for tag in soup.find_all(_UNREADABLE_HTML):
        tag.decompose()
    for heading in soup.find_all(_HEADING_TAGS):
        _rewrite_heading_as_markdown(heading)
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_after("\n")
    root = soup.find("main") or soup.find("body") or soup
    text = root.get_text()
    lines = (" ".join(line.split()) for line in text.splitlines())
    content = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return ParsedDocument(
        title=title or fallback_title, content=content, mime_type="text/html"
    )


def _rewrite_heading_as_markdown(heading: Tag) -> None:
    level = int(heading.name[1])
    text = " ".join(heading.get_text(" ").split()).rstrip("¶ ")
    heading.replace_with(f"\n\n{'#' * level} {text}\n\n")


def _clip_title(text: str) -> str:
    return " ".join(text.split()).strip(" ¶")[:_MAX_TITLE_CHARS]


_READERS: dict[str, Callable[[bytes, str, ParseLimits], ParsedDocument]] = {
    "text/plain": _read_plain,
    "text/markdown": _read_markdown,
    "application/pdf": _read_pdf,
    "text/html": _read_html,
}
