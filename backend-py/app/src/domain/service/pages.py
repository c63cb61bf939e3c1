"""Where a PDF's pages lie in its extracted text, and how the spans are kept.

A module of its own, light to import: the parser's child process
(:mod:`src.infra.bounded_parse`) needs it, and starts once per file.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PAGE_SPANS_KEY = "page_spans"
"""The key of a PDF's page spans in ``documents.metadata``."""


@dataclass(frozen=True)
class PageSpan:
    """Where one page's text lies in a document's extracted text.

    Attributes:
        number: The page number, from 1.
        start: Offset of the page's first character.
        end: Offset just past its last character.
    """

    number: int
    start: int
    end: int


def page_spans_metadata(content: str, pages: Sequence[PageSpan]) -> dict[str, Any]:
    """The page spans of ``content`` as ``documents.metadata`` keeps them.

    The worker chunks the stored text, not the file: the spans travel from the
    parse to the chunking in the document's metadata, with the hash of the
    text they describe (an edited text no longer has those pages).

    Returns:
        ``{"page_spans": {"content_sha256": ..., "spans": [[n, start, end], ...]}}``,
        or an empty dict when there are no pages.
    """
    if not pages:
        return {}
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    spans = [[page.number, page.start, page.end] for page in pages]
    return {PAGE_SPANS_KEY: {"content_sha256": digest, "spans": spans}}


def stored_page_spans(
    stored: Mapping[str, Any] | None, content_hash: str | None
) -> tuple[PageSpan, ...]:
    """The page spans kept by :func:`page_spans_metadata`, if still valid.

    Args:
        stored: The ``page_spans`` value of a document's metadata.
        content_hash: The sha256 of the document's current text.

    Returns:
        The spans in order; empty when none were stored or the text changed.
    """
    if not stored or stored.get("content_sha256") != content_hash:
        return ()
    return tuple(PageSpan(int(n), int(a), int(b)) for n, a, b in stored["spans"])
