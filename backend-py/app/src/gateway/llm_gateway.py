"""LLMGateway: the chat use case's only door to text generation.

It picks the chat model for the persona (OpenAI or the offline extractive
model, as chosen at start-up), measures latency, reports token usage, and turns
provider failures into the project's errors: ``LLMRateLimitError`` (502, the
provider still refused after the SDK's retries), ``LLMTimeoutError`` (504) and
``LLMProviderError`` (502), none of which carries the provider's own message.
"""

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

from src.domain.errors import UnprocessableError
from src.domain.service.follow_up import (
    STANDALONE_MAX_TOKENS,
    clean_standalone_question,
    contextualize_messages,
    is_follow_up,
)
from src.domain.service.prompt_builder import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from src.infra.llm.chat_models import ChatModels
from src.infra.llm.errors import PROVIDER_ERRORS, provider_error
from src.infra.tracing import TraceRun, Tracing

__all__ = [
    "Generation",
    "LLMGateway",
    "StreamEvent",
    "TokenUsage",
    "TraceRun",
    "check_model_allowed",
    "validate_chat_model",
]
from src.settings import Settings


class TokenUsage(TypedDict):
    """Tokens of one generation (JSON-ready, stored in the message metadata)."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Generation:
    """A finished answer.

    Attributes:
        text: The answer.
        model: The model that produced it, as the provider names it.
        usage: Its token usage (estimated when the provider sent none).
        latency_ms: From the request to the last token.
    """

    text: str
    model: str
    usage: TokenUsage
    latency_ms: int


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed generation: a text delta, or the final result.

    Attributes:
        delta: New text (empty on the final event).
        generation: Set on the final event only: the whole answer and usage.
    """

    delta: str = ""
    generation: Generation | None = None


def check_model_allowed(model: str | None, allowed: Sequence[str] | None) -> None:
    """Refuse a model name outside ``allowed`` (None allows any; None model is OK).

    Raises:
        UnprocessableError: The model is not one of ``allowed``.
    """
    if model is None or allowed is None or model in allowed:
        return
    raise UnprocessableError(
        f"model: {model!r} is not available; choose one of: {', '.join(allowed)}"
    )


def validate_chat_model(settings: Settings, model: str | None) -> None:
    """Check a persona's model name before it is saved.

    With OpenAI configured, the name must be one of ``ALLOWED_CHAT_MODELS``;
    offline, any name is accepted (the extractive model answers anyway).

    Args:
        settings: The app's settings.
        model: The persona's model; None means the configured default.

    Raises:
        UnprocessableError: The model is not allowed.
    """
    offline = settings.openai_api_key is None
    check_model_allowed(model, None if offline else settings.allowed_chat_models)


class LLMGateway:
    """Generates answers with the chat model a persona asks for, traced."""

    def __init__(self, chat_models: ChatModels, tracing: Tracing | None = None) -> None:
        """Use the chat models and tracing chosen at start-up (``AIProviders``)."""
        self._chat_models = chat_models
        self._tracing = tracing or Tracing(None, project="")

    def trace(
        self, *, metadata: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> AbstractAsyncContextManager[TraceRun]:
        """A LangSmith run around a turn (a no-op when tracing is off).

        The model calls inside it become its children.
        """
        return self._tracing.chat_trace(metadata=metadata, inputs=inputs)

    async def generate(
        self,
        messages: Sequence[BaseMessage],
        *,
        model: str | None,
        temperature: float | None,
        max_tokens: int | None = None,
    ) -> Generation:
        """Generate a whole answer.

        Args:
            messages: The prompt (see ``build_chat_messages``).
            model: The persona's model; None for the configured default.
            temperature: The persona's temperature; None for the default.
            max_tokens: The most tokens to generate; None for the default.

        Returns:
            The answer with its model, usage and latency.

        Raises:
            UnprocessableError: The model is not allowed.
            LLMRateLimitError: The provider kept refusing for rate limits.
            LLMTimeoutError: The provider did not answer in time.
            LLMProviderError: The provider failed otherwise.
        """
        chat = self._model(model, temperature, max_tokens)
        started = time.perf_counter()
        try:
            message = await chat.ainvoke(list(messages))
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc
        return _generation(messages, message, chat, started)

    async def stream(
        self,
        messages: Sequence[BaseMessage],
        *,
        model: str | None,
        temperature: float | None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream an answer: text deltas, then one final event with the whole.

        Takes the same arguments and raises the same errors as
        :meth:`generate`; an error can come after some deltas were sent.

        Yields:
            ``StreamEvent(delta=...)`` for each piece of text, then
            ``StreamEvent(generation=...)``.
        """
        chat = self._model(model, temperature, max_tokens)
        started = time.perf_counter()
        chunks = cast(
            AsyncGenerator[AIMessageChunk, None], chat.astream(list(messages))
        )
        answer = _Answer()
        try:
            # aclosing: a client that goes away closes the provider's stream now.
            async with aclosing(chunks):
                async for chunk in chunks:
                    if text := answer.add(chunk):
                        yield StreamEvent(delta=text)
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc
        yield StreamEvent(
            generation=_generation(messages, answer.message(), chat, started)
        )

    @property
    def rewrites_questions(self) -> bool:
        """Whether follow-ups are rewritten by the model (not the offline one).

        The offline model quotes passages: it cannot rewrite a question.
        """
        return self._chat_models.provider != "offline"

    async def standalone_question(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        *,
        model: str | None = None,
    ) -> str:
        """Rewrite a follow-up into a question that stands without the history.

        LangChain's contextualize-question prompt, at temperature 0 and a small
        token limit. A room's first question (no user message in ``history``)
        is returned as it is, with no model call.

        Args:
            question: The latest user question.
            history: The room's earlier ``(role, content)`` messages, oldest
                first (role ``"user"`` or ``"assistant"``).
            model: The chat model; None for the configured default.

        Returns:
            The standalone question (``question`` when the model gave nothing).

        Raises:
            UnprocessableError: The model is not allowed.
            LLMRateLimitError: The provider kept refusing for rate limits.
            LLMTimeoutError: The provider did not answer in time.
            LLMProviderError: The provider failed otherwise.
        """
        if not is_follow_up(history):
            return question
        generation = await self.generate(
            contextualize_messages(question, history),
            model=model,
            temperature=0.0,
            max_tokens=STANDALONE_MAX_TOKENS,
        )
        return clean_standalone_question(generation.text, question)

    def _model(
        self, model: str | None, temperature: float | None, max_tokens: int | None
    ) -> BaseChatModel:
        check_model_allowed(model, self._chat_models.allowed_models)
        return self._chat_models.get(
            model=model, temperature=temperature, max_tokens=max_tokens
        )


class _Answer:
    """A streamed answer put together once, not chunk by chunk.

    Adding ``AIMessageChunk`` s builds a new message per token; this keeps the
    text deltas in a list and adds up only the few chunks that carry the
    model's name or the token usage (the provider's last ones).
    """

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._metadata: AIMessageChunk | None = None

    def add(self, chunk: AIMessageChunk) -> str:
        """Take a chunk; return its text (empty when it carries none)."""
        text = str(chunk.text)
        if text:
            self._texts.append(text)
        if chunk.usage_metadata is not None or "model_name" in chunk.response_metadata:
            meta = self._metadata
            self._metadata = chunk if meta is None else meta + chunk
        return text

    def message(self) -> AIMessage:
        """The whole answer, with the model's name and usage when sent."""
        meta = self._metadata
        return AIMessage(
            content="".join(self._texts),
            usage_metadata=meta.usage_metadata if meta is not None else None,
            response_metadata=meta.response_metadata if meta is not None else {},
        )


def _generation(
    messages: Sequence[BaseMessage],
    message: AIMessage,
    chat: BaseChatModel,
    started: float,
) -> Generation:
    text = str(message.text)
    return Generation(
        text=text,
        model=_model_name(message, chat),
        usage=_usage(messages, message, text),
        latency_ms=round((time.perf_counter() - started) * 1000),
    )


def _model_name(message: AIMessage, chat: BaseChatModel) -> str:
    reported = message.response_metadata.get("model_name")
    if isinstance(reported, str) and reported:
        return reported
    return str(getattr(chat, "model_name", "unknown"))


def _usage(
    messages: Sequence[BaseMessage], message: AIMessage, text: str
) -> TokenUsage:
    usage = message.usage_metadata
    if usage is not None:
        return TokenUsage(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            total_tokens=usage["total_tokens"],
        )
    prompt = sum(
        estimate_tokens(str(m.content)) + MESSAGE_OVERHEAD_TOKENS for m in messages
    )
    output = estimate_tokens(text)
    return TokenUsage(
        input_tokens=prompt, output_tokens=output, total_tokens=prompt + output
    )
