"""Text extraction of each supported file type, and chunking."""

import pytest

from src.domain.errors import UnprocessableError, UnsupportedMediaTypeError
from src.domain.service.chunking import chunk_text, embedding_text, estimate_tokens
from src.domain.service.document_parsing import (
    ParseLimits,
    detect_mime_type,
    parse_document,
)
from tests.knowledge.samples import (
    HTML,
    MARKDOWN,
    PLAIN,
    make_pdf,
    pdf_bomb,
    pdf_sharing_one_stream,
    text_stream,
)

UPLOAD_LIMITS = ParseLimits.relative_to(10 * 2**20)


def test_plain_text_keeps_its_text_and_titles_from_the_file_name() -> None:
    parsed = parse_document("report-q3.txt", PLAIN.encode())
    assert parsed.title == "report-q3"
    assert parsed.mime_type == "text/plain"
    assert "twelve percent" in parsed.content


def test_markdown_title_is_its_first_heading() -> None:
    parsed = parse_document("notes.md", MARKDOWN.encode())
    assert parsed.title == "Gardening guide"
    assert parsed.mime_type == "text/markdown"
    assert "## Watering" in parsed.content


def test_pdf_text_title_and_page_count_are_extracted() -> None:
    data = make_pdf(
        ["Solar panels convert light.", "Inverters make AC."], title="Solar"
    )
    parsed = parse_document("solar.pdf", data)
    assert parsed.title == "Solar"
    assert "Solar panels convert light." in parsed.content
    assert "Inverters make AC." in parsed.content
    assert parsed.metadata["page_count"] == 1


def test_html_drops_scripts_and_menus_and_keeps_headings_as_markdown() -> None:
    parsed = parse_document("bike.html", HTML.encode())
    assert parsed.title == "Bicycle maintenance"
    assert "# Bicycle maintenance" in parsed.content
    assert "## Brakes" in parsed.content
    assert "Keep the chain clean and lubricated every 300 kilometres." in (
        parsed.content
    )
    assert "console.log" not in parsed.content
    assert "Home | About" not in parsed.content


def test_latin1_text_is_decoded() -> None:
    parsed = parse_document("caf.txt", "Café crème".encode("cp1252"))
    assert parsed.content == "Café crème"


def test_unknown_extension_uses_the_declared_type() -> None:
    assert detect_mime_type("upload", "text/markdown; charset=utf-8") == (
        "text/markdown"
    )


def test_unsupported_type_is_415() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        parse_document("image.png", b"\x89PNG", "image/png")
    assert caught.value.status_code == 415


def test_damaged_pdf_is_422() -> None:
    with pytest.raises(UnprocessableError):
        parse_document("broken.pdf", b"%PDF-1.4 this is not a pdf")


def test_a_stream_that_inflates_past_the_limit_is_refused() -> None:
    bomb = pdf_bomb(74_000_000)  # 72 KB that inflate to 74 MB
    assert len(bomb) < 100_000
    with pytest.raises(UnprocessableError, match="over a parsing limit"):
        parse_document("bomb.pdf", bomb, limits=UPLOAD_LIMITS)


def test_pages_sharing_one_huge_text_stream_are_refused() -> None:
    # 100 pages that all show the same 198,000 characters: 19.8 million.
    shared = pdf_sharing_one_stream(text_stream(198_000), pages=100, deflate=True)
    assert len(shared) < 20_000
    with pytest.raises(UnprocessableError, match="page 1 holds more than 100000"):
        parse_document("shared.pdf", shared, limits=UPLOAD_LIMITS)


def test_text_out_of_proportion_to_the_file_is_refused() -> None:
    # Each page is under the page limit; together far more text than bytes.
    shared = pdf_sharing_one_stream(text_stream(50_000), pages=100, deflate=True)
    with pytest.raises(UnprocessableError, match="characters of text"):
        parse_document("shared.pdf", shared, limits=UPLOAD_LIMITS)


def test_a_pdf_whose_pages_share_a_small_stream_is_read() -> None:
    shared = pdf_sharing_one_stream(text_stream(2000), pages=3, deflate=True)
    parsed = parse_document("shared.pdf", shared, limits=UPLOAD_LIMITS)
    assert parsed.metadata["page_count"] == 3
    assert [n for n, _, _ in parsed.metadata["page_spans"]["spans"]] == [1, 2, 3]
    assert parsed.content.count("lorem ipsum") > 3 * 60


def test_limits_follow_the_upload_limit() -> None:
    limits = ParseLimits.relative_to(2048)
    assert (limits.max_chars, limits.max_page_chars) == (2048, 2048)
    assert limits.max_stream_bytes == 4 * 2048
    assert limits.max_chars_for(10) == 2048  # small files get a floor
    assert UPLOAD_LIMITS.max_chars_for(1000) == 20 * 1024


def test_empty_file_is_422() -> None:
    with pytest.raises(UnprocessableError, match="no text"):
        parse_document("empty.txt", b"  \n ")


def test_chunks_keep_order_heading_path_and_token_estimate() -> None:
    body = "Water tomatoes deeply. " * 40
    text = f"# Guide\n\nIntro.\n\n## Watering\n\n{body}\n\n## Pruning\n\nCut suckers."
    chunks = chunk_text(text, chunk_size=200, chunk_overlap=20)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].heading_path == "Guide"
    watering = [c for c in chunks if c.heading_path == "Guide > Watering"]
    assert len(watering) > 2
    assert all(len(c.content) <= 200 + len("## Watering\n") for c in watering)
    assert watering[0].content.startswith("## Watering\nWater tomatoes")
    assert chunks[-1].heading_path == "Guide > Pruning"
    assert chunks[-1].token_count == estimate_tokens(chunks[-1].content)
    assert embedding_text(chunks[-1]).startswith("Guide > Pruning\n\n")


def test_text_without_headings_is_one_section() -> None:
    chunks = chunk_text("Just one sentence.", chunk_size=200, chunk_overlap=20)
    assert [(c.content, c.heading_path) for c in chunks] == [("Just one sentence.", "")]
    assert embedding_text(chunks[0]) == "Just one sentence."


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text(" \n\n ", chunk_size=200, chunk_overlap=20) == []
