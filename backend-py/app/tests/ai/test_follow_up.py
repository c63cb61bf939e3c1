"""Follow-up questions: the offline queries, the fusion and the model's rewrite.

The model path runs over real HTTP against ``tests/support/fake_openai.py``.
"""

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from src.domain.service.follow_up import (
    CONTEXT_MESSAGE_CHARS,
    CONTEXT_MESSAGES,
    CONTEXTUALIZE_SYSTEM_PROMPT,
    STANDALONE_MAX_TOKENS,
    clean_standalone_question,
    contextualize_messages,
    fuse_rankings,
    is_follow_up,
    retrieval_queries,
)
from src.gateway.llm_gateway import LLMGateway
from tests.ai.conftest import BuildProviders
from tests.support.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
CAPITAL = "What is the capital of Zorbania?"
FOOD = "And what do people eat there?"
HISTORY = [("user", CAPITAL), ("assistant", "Its capital is Zorbport [1].")]


def test_a_rooms_first_question_is_searched_alone() -> None:
    assert retrieval_queries(CAPITAL, []) == (CAPITAL,)
    assert retrieval_queries(CAPITAL, [("assistant", "Hello, I am Ada.")]) == (CAPITAL,)
    assert not is_follow_up([("assistant", "Hello"), ("user", "  ")])


def test_a_follow_up_is_also_searched_with_the_previous_user_message() -> None:
    history = [("user", "Where is   Narnia?"), *HISTORY]

    queries = retrieval_queries(f"  {FOOD}\n", history)

    assert queries == (FOOD, f"{CAPITAL} {FOOD}")
    assert is_follow_up(history)


def test_a_repeated_question_is_searched_once() -> None:
    assert retrieval_queries(CAPITAL, HISTORY) == (CAPITAL,)


def test_fusion_favours_items_ranked_well_in_several_rankings() -> None:
    fused = fuse_rankings([["a", "b", "c"], ["c", "b", "d"]], limit=3)

    # c (3rd and 1st) and b (2nd twice) beat a (1st once) and d (3rd once).
    assert fused == ["c", "b", "a"]
    assert fuse_rankings([["x", "y"], ["y", "x"]], limit=2) == ["x", "y"]
    assert fuse_rankings([[1, 2], []], limit=5) == [1, 2]
    assert fuse_rankings([], limit=5) == []


def test_the_rewrite_prompt_keeps_only_the_recent_history_cut_short() -> None:
    long_answer = "word " * 400
    history = [("user", "old question"), ("assistant", "old answer")] * 3 + [
        ("user", CAPITAL),
        ("assistant", long_answer),
    ]

    messages = contextualize_messages(FOOD, history)

    assert isinstance(messages[0], SystemMessage)
    assert messages[0].content == CONTEXTUALIZE_SYSTEM_PROMPT
    assert len(messages) == 1 + CONTEXT_MESSAGES + 1
    assert [type(m) for m in messages[-3:]] == [HumanMessage, AIMessage, HumanMessage]
    assert messages[-3].content == CAPITAL
    assert len(str(messages[-2].content)) == CONTEXT_MESSAGE_CHARS
    assert messages[-1].content == FOOD


def test_the_models_answer_is_cleaned_to_one_question() -> None:
    assert clean_standalone_question(
        'Standalone question: "What do people eat in Zorbania?"\n', FOOD
    ) == ("What do people eat in Zorbania?")
    assert clean_standalone_question("  \n", FOOD) == FOOD
    assert clean_standalone_question("Note: eat in Zorbania?", FOOD) == (
        "Note: eat in Zorbania?"
    )


async def test_the_model_rewrites_a_follow_up_into_a_standalone_question(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    fake_openai.script[FOOD] = "What do people eat in Zorbania?"
    gateway = LLMGateway(build_openai(openai_chat_model="gpt-4.1-mini").chat)

    standalone = await gateway.standalone_question(FOOD, HISTORY)

    assert standalone == "What do people eat in Zorbania?"
    [request] = fake_openai.requests_to(CHAT)
    assert request.body["temperature"] == 0.0
    assert request.body["max_completion_tokens"] == STANDALONE_MAX_TOKENS
    assert request.body["model"] == "gpt-4.1-mini"
    assert [m["role"] for m in request.body["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert request.body["messages"][-1]["content"] == FOOD


async def test_a_rooms_first_question_is_not_sent_to_the_model(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai().chat)

    standalone = await gateway.standalone_question(CAPITAL, [("assistant", "Hi")])

    assert standalone == CAPITAL
    assert fake_openai.requests_to(CHAT) == []
