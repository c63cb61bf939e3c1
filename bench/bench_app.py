"""The API as ``make run`` builds it, with AI providers of constant cost.

Only for ``bench/load_bench.py``: the load benchmark measures the chat path
(HTTP, auth, row-level-security transactions, retrieval SQL, prompt building,
saving), so the model compute is taken out. Embeddings are one fixed unit
vector; the chat model is a LangChain ``BaseChatModel`` that returns a fixed
answer with usage metadata (it still goes through LangChain's ``ainvoke``, as
the real models do).

Served with ``uvicorn bench_app:create_bench_app --factory --app-dir bench``
from ``backend-py/app`` (so ``src`` imports), configured by the usual
environment variables (``DATABASE_URL``...).
"""

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from src.app import create_app
from src.infra.ai_providers import AIProviders
from src.infra.db_client import open_database
from src.infra.gc_tuning import tune_gc_for_serving
from src.infra.llm.chat_models import OneModelChatModels
from src.infra.tracing import Tracing
from src.runtime import runtime
from src.settings import Settings, get_settings

EMBEDDING_MODEL = "bench-constant"
CHAT_MODEL = "bench-constant-chat"
ANSWER = "According to the guide, the answer is in the first section [1]."
DIMENSIONS = 384


def constant_vector(dimensions: int = DIMENSIONS) -> list[float]:
    """The one embedding every text gets: a unit vector."""
    value = 1.0 / math.sqrt(dimensions)
    return [value] * dimensions


class ConstantEmbeddings(Embeddings):
    """Embeddings of constant cost: the same unit vector for every text."""

    def __init__(self) -> None:
        self._vector = constant_vector()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(self._vector) for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        del text
        return list(self._vector)

    # LangChain's async defaults hop to a thread; a constant needs none.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


class ConstantChatModel(BaseChatModel):
    """A chat model that answers every prompt with the same sentence."""

    answer: str = ANSWER

    @property
    def _llm_type(self) -> str:
        return CHAT_MODEL

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        prompt_tokens = sum(len(str(m.content)) // 4 for m in messages)
        output_tokens = len(self.answer) // 4
        message = AIMessage(
            content=self.answer,
            response_metadata={"model_name": CHAT_MODEL},
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "total_tokens": prompt_tokens + output_tokens,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del stop, run_manager, kwargs
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del stop, run_manager, kwargs
        return self._result(messages)


class ConstantChatModels(OneModelChatModels):
    """The constant model for every persona."""

    provider = "bench"

    def __init__(self) -> None:
        super().__init__(ConstantChatModel(), model_name=CHAT_MODEL)


def constant_providers(settings: Settings) -> AIProviders:
    """The AI providers of the load benchmark (tracing as settings say: off)."""
    return AIProviders(
        embeddings=ConstantEmbeddings(),
        embedding_model_name=EMBEDDING_MODEL,
        chat=ConstantChatModels(),
        tracing=Tracing.from_settings(settings),
    )


@asynccontextmanager
async def bench_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's own lifespan, with the constant providers handed to runtime."""
    settings: Settings = app.state.settings
    database = await open_database(settings)
    providers = constant_providers(settings)
    try:
        async with runtime(app, settings, database, ai=providers):
            tune_gc_for_serving()
            yield
    finally:
        await providers.aclose()
        await database.dispose()


def create_bench_app() -> FastAPI:
    """The normal app (routers, middleware, handlers) on constant providers."""
    app = create_app(get_settings())
    app.router.lifespan_context = bench_lifespan
    return app
