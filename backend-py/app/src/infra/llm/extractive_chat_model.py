"""The offline chat model: answers by quoting the most relevant source sentences.

No practical chat model runs offline here, so without ``OPENAI_API_KEY`` the
assistant is extractive and honest: it reads the numbered sources that
:mod:`src.domain.service.prompt_builder` wrote into the system message, quotes
the sentences that best match the question with their citations ``[n]``, and
says plainly when no language model is configured and nothing relevant was
found. It is a LangChain chat model (invoke, stream, usage metadata, tracing),
so the chat use case cannot tell it from the real one.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from src.domain.service.prompt_builder import (
    MESSAGE_OVERHEAD_TOKENS,
    estimate_tokens,
    parse_sources,
    strip_speaker,
)
from src.infra.llm.extractive_ranker import RankedSentence, rank_sentences

MODEL_NAME = "offline-extractive"

ANSWER_INTRO = "Here is what your documents say:"
ANSWER_NOTE = (
    "(No language model is configured, so this answer quotes the most relevant "
    "passages of your documents.)"
)
NOTHING_FOUND = (
    "No language model is configured for this assistant, and no relevant "
    "documents were found for your question, so I cannot answer it. Try "
    "rephrasing the question, or add documents that cover it."
)

_WORD_PIECE = re.compile(r"\S+\s*")


def extractive_answer(messages: list[BaseMessage], *, max_sentences: int = 3) -> str:
    """The answer the offline model gives to a prompt.

    Args:
        messages: A prompt built by ``build_chat_messages``.
        max_sentences: At most this many quoted sentences.

    Returns:
        The quoted sentences with their citations, or the plain statement that
        nothing relevant was found.
    """
    system = next((m for m in messages if isinstance(m, SystemMessage)), None)
    question = next(
        (strip_speaker(m) for m in reversed(messages) if isinstance(m, HumanMessage)),
        "",
    )
    sources = parse_sources(str(system.content)) if system is not None else []
    sentences = rank_sentences(question, sources, limit=max_sentences)
    return _compose(sentences) if sentences else NOTHING_FOUND


def word_pieces(text: str) -> list[str]:
    """The text cut into words with their trailing whitespace ("".join = text)."""
    return _WORD_PIECE.findall(text)


def _compose(sentences: list[RankedSentence]) -> str:
    quotes = "\n".join(f"- {s.text} [{s.source}]" for s in sentences)
    return f"{ANSWER_INTRO}\n\n{quotes}\n\n{ANSWER_NOTE}"


def _usage(messages: list[BaseMessage], answer: str) -> UsageMetadata:
    prompt = sum(
        estimate_tokens(str(m.content)) + MESSAGE_OVERHEAD_TOKENS for m in messages
    )
    output = estimate_tokens(answer)
    return UsageMetadata(
        input_tokens=prompt, output_tokens=output, total_tokens=prompt + output
    )


class ExtractiveChatModel(BaseChatModel):
    """An honest offline chat model that quotes the prompt's sources.

    Attributes:
        model_name: Reported as the model of every answer.
        max_sentences: At most this many quoted sentences per answer.
    """

    model_name: str = MODEL_NAME
    max_sentences: int = 3

    @property
    def _llm_type(self) -> str:
        return MODEL_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_sentences": self.max_sentences}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager, kwargs  # no callbacks without streaming; no sampling options
        answer = self._answer(messages, stop)
        message = AIMessage(
            content=answer,
            usage_metadata=_usage(messages, answer),
            response_metadata=self._response_metadata(),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager  # nothing streams; the answer is computed in microseconds
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        del kwargs  # no sampling options
        for chunk in self._chunks(messages, stop):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        del kwargs  # no sampling options
        for chunk in self._chunks(messages, stop):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            await asyncio.sleep(0)  # let other requests run between words

    def _answer(self, messages: list[BaseMessage], stop: list[str] | None) -> str:
        answer = extractive_answer(messages, max_sentences=self.max_sentences)
        cuts = [i for s in stop or [] if s and (i := answer.find(s)) >= 0]
        return answer[: min(cuts)] if cuts else answer

    def _chunks(
        self, messages: list[BaseMessage], stop: list[str] | None
    ) -> list[ChatGenerationChunk]:
        """Word chunks, then a last empty chunk with the usage (as OpenAI does)."""
        answer = self._answer(messages, stop)
        chunks = [
            ChatGenerationChunk(message=AIMessageChunk(content=piece))
            for piece in word_pieces(answer)
        ]
        last = AIMessageChunk(
            content="",
            usage_metadata=_usage(messages, answer),
            response_metadata=self._response_metadata(),
            chunk_position="last",
        )
        return [*chunks, ChatGenerationChunk(message=last)]

    def _response_metadata(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "finish_reason": "stop"}
