"""Where each chunk lies: character span, heading path, PDF pages."""

from src.domain.service.chunking import chunk_text, locate, pages_of
from src.domain.service.document_parsing import join_pages, parse_document
from src.domain.service.pages import PageSpan
from tests.knowledge.samples import HTML, MARKDOWN, make_pdf


def words(text: str) -> list[str]:
    return text.split()


def test_each_chunks_span_holds_its_words_in_order() -> None:
    body = " ".join(f"Sentence {n} about watering tomatoes." for n in range(60))
    text = f"# Guide\n\nIntro   line.\n\n## Watering\n\n{body}\n\n## Pruning\n\nCut."

    chunks = chunk_text(text, chunk_size=200, chunk_overlap=40)

    assert len(chunks) > 5
    starts = []
    for chunk in chunks:
        assert chunk.span is not None
        start, end = chunk.span
        assert words(text[start:end]) == words(chunk.content)
        starts.append(start)
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    # Overlapping chunks of one section share text, and the last chunk ends the text.
    assert chunks[2].span is not None
    assert chunks[3].span is not None
    assert chunks[3].span[0] < chunks[2].span[1]
    assert chunks[-1].span == (text.index("## Pruning"), len(text))
    assert all(c.pages is None for c in chunks)


def test_repeated_passages_get_the_span_of_their_own_occurrence() -> None:
    text = "# A\n\nSame words here.\n\n# B\n\nSame words here."

    chunks = chunk_text(text, chunk_size=200, chunk_overlap=0)

    assert [c.heading_path for c in chunks] == ["A", "B"]
    assert [c.span for c in chunks] == [(0, 21), (23, len(text))]


def test_markdown_and_html_chunks_carry_their_heading_path() -> None:
    markdown = chunk_text(MARKDOWN, chunk_size=500, chunk_overlap=0)
    html = parse_document("bike.html", HTML.encode())
    html_chunks = chunk_text(html.content, chunk_size=500, chunk_overlap=0)

    assert [c.heading_path for c in markdown] == [
        "Gardening guide",
        "Gardening guide > Watering",
        "Gardening guide > Pruning",
    ]
    assert [c.heading_path for c in html_chunks] == [
        "Bicycle maintenance",
        "Bicycle maintenance > Brakes",
    ]
    brakes = html_chunks[1]
    assert brakes.span is not None
    assert html.content[brakes.span[0] : brakes.span[1]].startswith("## Brakes")


def test_pdf_pages_are_joined_with_their_spans_and_empty_pages_skipped() -> None:
    content, pages = join_pages([" First page.\n", "", "Third\x00 page. "])

    assert content == "First page.\n\nThird page."
    assert pages == (PageSpan(1, 0, 11), PageSpan(3, 13, 24))
    assert [content[p.start : p.end] for p in pages] == ["First page.", "Third page."]


def test_a_parsed_pdf_knows_where_its_page_is() -> None:
    parsed = parse_document("solar.pdf", make_pdf(["Solar panels convert light."]))

    [page] = parsed.pages
    assert (page.number, page.start, page.end) == (1, 0, len(parsed.content))
    [chunk] = chunk_text(
        parsed.content, chunk_size=200, chunk_overlap=0, pages=parsed.pages
    )
    assert chunk.pages == (1, 1)


def test_chunks_of_a_pdf_carry_their_page_or_page_range() -> None:
    texts = [" ".join(f"Page {n} line {i}." for i in range(8)) for n in range(1, 7)]
    content, pages = join_pages(texts)

    chunks = chunk_text(content, chunk_size=300, chunk_overlap=0, pages=pages)

    assert chunks[0].pages == (1, 2)
    assert chunks[-1].pages is not None
    assert chunks[-1].pages[1] == 6
    spanning = [c for c in chunks if c.pages is not None and c.pages[0] < c.pages[1]]
    assert spanning, "a chunk that crosses a page boundary"
    for chunk in chunks:
        assert chunk.pages is not None
        first, last = chunk.pages
        assert f"Page {first} " in chunk.content
        assert f"Page {last} " in chunk.content


def test_locating_and_paging_edge_cases() -> None:
    pages = (PageSpan(1, 0, 10), PageSpan(2, 12, 20))

    assert locate("alpha  beta\ngamma", "beta gamma") == (7, 17)
    assert locate("alpha beta", "delta") is None
    assert locate("alpha", "   ") is None
    # Found before the cursor when it is not after it.
    assert locate("one two one", "one", start=5) == (8, 11)
    assert locate("one two", "one", start=5) == (0, 3)
    assert pages_of(None, pages) is None
    assert pages_of((0, 5), ()) is None
    assert pages_of((10, 15), pages) == (2, 2)
    assert pages_of((5, 15), pages) == (1, 2)
    assert pages_of((15, 99), pages) == (2, 2)
