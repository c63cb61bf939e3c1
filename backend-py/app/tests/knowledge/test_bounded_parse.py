"""Parsing in a child process: the result, its errors, and its two limits."""

import pytest

from src.domain.errors import UnprocessableError, UnsupportedMediaTypeError
from src.domain.service.document_parsing import ParseLimits
from src.domain.service.pages import PageSpan
from src.infra.bounded_parse import BoundedParser, ParseBounds, parse_bounded
from tests.knowledge.samples import HTML, deep_html, make_pdf, pdf_bomb

BOUNDS = ParseBounds(
    timeout_s=30.0,
    memory_bytes=1024 * 2**20,
    limits=ParseLimits.relative_to(10 * 2**20),
)


async def test_the_child_returns_the_parsed_document() -> None:
    parsed = await parse_bounded(
        "solar.pdf", make_pdf(["Sunlight."], title="Solar"), None, bounds=BOUNDS
    )
    assert (parsed.title, parsed.content, parsed.mime_type) == (
        "Solar",
        "Sunlight.",
        "application/pdf",
    )
    assert parsed.metadata["page_count"] == 1
    assert parsed.metadata["page_spans"]["spans"] == [[1, 0, len("Sunlight.")]]
    assert parsed.pages == (PageSpan(1, 0, len("Sunlight.")),)
    html = await parse_bounded("bike.html", HTML.encode(), None, bounds=BOUNDS)
    assert html.title == "Bicycle maintenance"


async def test_the_childs_errors_keep_their_kind() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        await parse_bounded("a.png", b"\x89PNG", "image/png", bounds=BOUNDS)
    with pytest.raises(UnprocessableError, match="cannot be read"):
        await parse_bounded("a.pdf", b"%PDF-broken", None, bounds=BOUNDS)


async def test_a_parse_past_the_time_limit_is_killed() -> None:
    quick = ParseBounds(
        timeout_s=1.0, memory_bytes=BOUNDS.memory_bytes, limits=BOUNDS.limits
    )
    with pytest.raises(UnprocessableError, match="took longer than 1 s"):
        await parse_bounded("deep.html", deep_html(100_000), None, bounds=quick)


async def test_a_parse_past_the_memory_limit_fails() -> None:
    # The stream limit alone would let this one inflate to 400 MB.
    roomy = ParseLimits(max_chars=10**9, max_stream_bytes=10**9)
    small = ParseBounds(timeout_s=60.0, memory_bytes=200 * 2**20, limits=roomy)
    with pytest.raises(UnprocessableError, match="200 MB"):
        await parse_bounded("bomb.pdf", pdf_bomb(400_000_000), None, bounds=small)


async def test_one_child_parses_file_after_file_with_the_same_answers() -> None:
    files = [
        ("solar.pdf", make_pdf(["Sunlight."], title="Solar")),
        ("bike.html", HTML.encode()),
        ("a.png", b"\x89PNG"),
        ("broken.pdf", b"%PDF-broken"),
        ("bike-again.html", HTML.encode()),
    ]
    async with BoundedParser(BOUNDS) as parser:
        answers: list[object] = []
        for name, data in files:
            try:
                answers.append(await parser.parse(name, data, None))
            except (UnprocessableError, UnsupportedMediaTypeError) as exc:
                answers.append(type(exc))
        child = parser._child  # the one child that served every file

    alone: list[object] = []
    for name, data in files:
        try:
            alone.append(await parse_bounded(name, data, None, bounds=BOUNDS))
        except (UnprocessableError, UnsupportedMediaTypeError) as exc:
            alone.append(type(exc))
    assert answers == alone
    assert answers[2] is UnsupportedMediaTypeError
    assert child is not None
    assert child.returncode is not None  # stopped with the block


async def test_the_shared_child_keeps_the_time_and_memory_limits() -> None:
    quick = ParseBounds(
        timeout_s=1.0, memory_bytes=BOUNDS.memory_bytes, limits=BOUNDS.limits
    )
    roomy = ParseLimits(max_chars=10**9, max_stream_bytes=10**9)
    async with BoundedParser(quick) as parser:
        with pytest.raises(UnprocessableError, match="took longer than 1 s"):
            await parser.parse("deep.html", deep_html(100_000), None)
        after_timeout = await parser.parse("bike.html", HTML.encode(), None)
    small = ParseBounds(timeout_s=60.0, memory_bytes=200 * 2**20, limits=roomy)
    async with BoundedParser(small) as parser:
        with pytest.raises(UnprocessableError, match="200 MB"):
            await parser.parse("bomb.pdf", pdf_bomb(400_000_000), None)
        after_bomb = await parser.parse("bike.html", HTML.encode(), None)
    assert after_timeout.title == after_bomb.title == "Bicycle maintenance"
