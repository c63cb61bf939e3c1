"""Follow-up questions: what to search when a question leans on the conversation.

"What is the capital of Zorbania?" then "And what do people eat there?": the
second question says nothing about Zorbania, so it is not searched on its own
words alone. Two ways, both skipped for a room's first message:

- offline, with no model: :func:`retrieval_queries` gives the question alone and
  the question joined with the previous user message; the caller searches both
  and fuses the rankings with :func:`fuse_rankings` (reciprocal rank fusion), so
  a standalone follow-up keeps its own hits and a dependent one gets its subject;
- with a chat model: :func:`contextualize_messages` is LangChain's usual
  contextualize-question prompt, which the LLM gateway sends to get a standalone
  question (``LLMGateway.standalone_question``).

History is a sequence of ``(role, content)`` pairs, oldest first, where role is
``"user"`` (a person) or ``"assistant"`` (an AI answer); the current question
is not part of it.
"""

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

USER = "user"
ASSISTANT = "assistant"

CONTEXTUALIZE_SYSTEM_PROMPT = (
    "Given a chat history and the latest user question which might reference "
    "context in the chat history, formulate a standalone question which can be "
    "understood without the chat history. Do NOT answer the question, just "
    "reformulate it if needed and otherwise return it as is."
)
"""LangChain's contextualize-question prompt (``create_history_aware_retriever``)."""

CONTEXT_MESSAGES = 4
"""The most recent history messages sent to the model for the rewrite."""

CONTEXT_MESSAGE_CHARS = 600
"""Each history message is cut to this many characters in the rewrite prompt."""

STANDALONE_MAX_TOKENS = 96
"""The rewrite's token limit: a question, never an answer."""

RRF_K = 60
"""Reciprocal rank fusion's constant (the usual 60)."""

Item = TypeVar("Item", bound=Hashable)


def is_follow_up(history: Sequence[tuple[str, str]]) -> bool:
    """Whether a person already asked something in this room."""
    return any(role == USER and content.strip() for role, content in history)


def previous_user_message(history: Sequence[tuple[str, str]]) -> str | None:
    """The latest non-empty user message of the history, if any."""
    for role, content in reversed(history):
        if role == USER and content.strip():
            return " ".join(content.split())
    return None


def retrieval_queries(
    question: str, history: Sequence[tuple[str, str]]
) -> tuple[str, ...]:
    """The queries to search for a question, with no model (deterministic).

    Args:
        question: The latest user question.
        history: The room's earlier messages, oldest first.

    Returns:
        ``(question,)`` for a room's first question (or one that repeats the
        previous question); otherwise ``(question, previous + " " + question)``.
    """
    question = " ".join(question.split())
    previous = previous_user_message(history)
    if previous is None or previous == question:
        return (question,)
    return (question, f"{previous} {question}")


def fuse_rankings(
    rankings: Iterable[Sequence[Item]], *, limit: int, k: int = RRF_K
) -> list[Item]:
    """Reciprocal rank fusion of several rankings of the same kind of items.

    An item scores ``sum(1 / (k + rank))`` over the rankings it appears in
    (rank from 1); ties keep the order of first appearance.

    Args:
        rankings: Each ranking best first (e.g. chunk ids per query).
        limit: How many items to keep.
        k: The fusion constant; larger flattens the rank differences.

    Returns:
        At most ``limit`` distinct items, best first.
    """
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    ordered = sorted(scores, key=lambda item: scores[item], reverse=True)
    return ordered[:limit]


def contextualize_messages(
    question: str, history: Sequence[tuple[str, str]]
) -> list[BaseMessage]:
    """The prompt that asks a chat model for a standalone question.

    Args:
        question: The latest user question.
        history: The room's earlier messages, oldest first; the last
            ``CONTEXT_MESSAGES`` are sent, each cut to ``CONTEXT_MESSAGE_CHARS``.

    Returns:
        System prompt, the recent history as human/AI messages, then the question.
    """
    messages: list[BaseMessage] = [SystemMessage(CONTEXTUALIZE_SYSTEM_PROMPT)]
    for role, content in history[-CONTEXT_MESSAGES:]:
        text = content.strip()[:CONTEXT_MESSAGE_CHARS]
        messages.append(AIMessage(text) if role == ASSISTANT else HumanMessage(text))
    messages.append(HumanMessage(question.strip()))
    return messages


def clean_standalone_question(text: str, fallback: str) -> str:
    """A model's rewrite as a one-line query; ``fallback`` when it gave none.

    Models sometimes wrap the question in quotes or prefix it with a label
    ("Standalone question: ..."); both are removed.
    """
    line = " ".join(text.split())
    label, colon, rest = line.partition(":")
    if colon and label.lower().endswith("question") and len(label) < 40:
        line = rest.strip()
    line = line.strip("\"'“”` ")
    return line or " ".join(fallback.split())
