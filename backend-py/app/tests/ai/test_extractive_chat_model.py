from langchain_core.messages import AIMessageChunk, BaseMessage

from src.domain.entity.knowledge import RetrievedChunk
from src.domain.service.prompt_builder import build_chat_messages
from src.infra.llm.extractive_chat_model import (
    MODEL_NAME,
    NOTHING_FOUND,
    ExtractiveChatModel,
)

INSTALL = RetrievedChunk(
    chunk_id=1,
    document_id=1,
    title="Install guide",
    content=(
        "# Linux\n"
        "To install the package on Linux, run sudo apt install ragchat. "
        "The whole setup takes about a minute.\n"
        "- Python 3.11 or newer is required."
    ),
    heading_path="Install > Linux",
    score=0.9,
)
PRICING = RetrievedChunk(
    chunk_id=2,
    document_id=2,
    title="Pricing",
    content=(
        "The team plan costs 10 euros per user per month. "
        "Refunds are possible within 30 days of the purchase."
    ),
    heading_path="",
    score=0.5,
)


def prompt(question: str, sources: list[RetrievedChunk]) -> list[BaseMessage]:
    return build_chat_messages(
        system_prompt="You are a helpful assistant.",
        question=question,
        sources=sources,
        history=[],
        history_token_budget=500,
    )


def test_it_answers_from_the_relevant_source_with_its_citation() -> None:
    answer = ExtractiveChatModel().invoke(
        prompt("How much does the team plan cost per month?", [INSTALL, PRICING])
    )

    text = str(answer.content)
    assert "The team plan costs 10 euros per user per month. [2]" in text
    assert "apt install" not in text
    assert "No language model is configured" in text
    assert answer.response_metadata["model_name"] == MODEL_NAME


def test_it_cites_each_quoted_sentence_with_its_own_source() -> None:
    answer = ExtractiveChatModel().invoke(
        prompt("install package on Linux, and refunds within days?", [INSTALL, PRICING])
    )

    text = str(answer.content)
    assert "run sudo apt install ragchat. [1]" in text
    assert "Refunds are possible within 30 days of the purchase. [2]" in text


def test_it_says_plainly_when_nothing_relevant_was_found() -> None:
    model = ExtractiveChatModel()

    unrelated = model.invoke(prompt("What is the weather on Mars?", [INSTALL, PRICING]))
    no_sources = model.invoke(prompt("How do I install it?", []))

    assert unrelated.content == NOTHING_FOUND
    assert no_sources.content == NOTHING_FOUND
    assert "no language model is configured" in NOTHING_FOUND.lower()
    assert "no relevant documents were found" in NOTHING_FOUND.lower()


def test_it_reports_token_usage() -> None:
    answer = ExtractiveChatModel().invoke(prompt("team plan cost?", [PRICING]))

    usage = answer.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_it_streams_word_by_word_the_text_it_generates() -> None:
    model = ExtractiveChatModel()
    messages = prompt("How do I install the package on Linux?", [INSTALL, PRICING])
    generated = await model.ainvoke(messages)

    chunks = [chunk async for chunk in model.astream(messages)]
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk

    assert isinstance(whole, AIMessageChunk)
    assert len(chunks) > 10
    assert whole.content == generated.content
    assert whole.usage_metadata == generated.usage_metadata


def test_sync_streaming_matches_too() -> None:
    model = ExtractiveChatModel()
    messages = prompt("refunds?", [PRICING])

    streamed = "".join(str(chunk.content) for chunk in model.stream(messages))

    assert streamed == model.invoke(messages).content


def test_stop_sequences_cut_the_answer() -> None:
    model = ExtractiveChatModel()
    messages = prompt(
        "install package on Linux, and refunds within days?", [INSTALL, PRICING]
    )

    answer = str(model.invoke(messages, stop=["[2]"]).content)
    streamed = "".join(str(c.content) for c in model.stream(messages, stop=["[2]"]))

    assert "[1]" in answer
    assert "[2]" not in answer
    assert streamed == answer
