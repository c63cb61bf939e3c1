"""The two plug points: the chat model and the embeddings, chosen once from settings.

Each is a LangChain interface with two real implementations: OpenAI (when
``OPENAI_API_KEY`` is set; any OpenAI-compatible server via ``OPENAI_BASE_URL``)
and an offline default that needs no key and no network (the extractive chat
model and MiniLM embeddings). LangSmith tracing rides along, off by default.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.infra.embeddings.openai_embeddings import openai_embeddings
from src.infra.llm.chat_models import ChatModels, OfflineChatModels
from src.infra.llm.openai_models import OpenAIChatModels, OpenAIClients
from src.infra.tracing import Tracing
from src.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AIProviders:
    """The providers the app uses, built once at start-up.

    Attributes:
        embeddings: Turns text into 384-dimension vectors.
        embedding_model_name: Recorded on every chunk; search compares only
            vectors of this model.
        chat: Hands out the chat model for a persona (use it through
            ``LLMGateway``).
        tracing: LangSmith tracing of chat turns (a no-op when off).
        openai_clients: The SDK clients of chat and embeddings, when the
            OpenAI provider is active; closed with the providers.
    """

    embeddings: Embeddings
    embedding_model_name: str
    chat: ChatModels
    tracing: Tracing
    openai_clients: OpenAIClients | None = None

    def describe(self) -> dict[str, Any]:
        """What is active, for the start-up log."""
        return {
            "chat_provider": self.chat.provider,
            "chat_default_model": self.chat.default_model,
            "embedding_model": self.embedding_model_name,
            "tracing": self.tracing.enabled,
            "tracing_endpoint": self.tracing.endpoint,
        }

    async def aclose(self) -> None:
        """Flush tracing and close the provider clients (at shutdown)."""
        await self.tracing.aclose()
        if self.openai_clients is not None:
            await self.openai_clients.aclose()


def build_ai_providers(settings: Settings) -> AIProviders:
    """Choose and build the providers from settings.

    Args:
        settings: ``OPENAI_*``, ``LLM_*``, ``EMBEDDING_*`` and ``LANGSMITH_*``.

    Returns:
        OpenAI chat and embeddings when ``OPENAI_API_KEY`` is set, the offline
        extractive model and MiniLM otherwise.
    """
    tracing = Tracing.from_settings(settings)
    if settings.openai_api_key is None:
        minilm = MiniLMEmbeddings()
        return AIProviders(
            embeddings=minilm,
            embedding_model_name=minilm.model_name,
            chat=OfflineChatModels(),
            tracing=tracing,
        )
    clients = OpenAIClients.from_settings(settings)
    return AIProviders(
        embeddings=openai_embeddings(settings, clients),
        embedding_model_name=settings.openai_embedding_model,
        chat=OpenAIChatModels(clients, settings),
        tracing=tracing,
        openai_clients=clients,
    )


@asynccontextmanager
async def open_ai_providers(
    settings: Settings, prebuilt: AIProviders | None = None
) -> AsyncIterator[AIProviders]:
    """The providers for the app's lifetime; logs which are active.

    Args:
        settings: Used to build the providers when none are given.
        prebuilt: Providers built by the caller (tests build the offline ones
            once per session); the caller closes them.

    Yields:
        The providers, closed at the end of the block when built here.
    """
    providers = prebuilt or build_ai_providers(settings)
    active = providers.describe()
    logger.info(
        "AI providers: chat=%s (default model %s), embeddings=%s, tracing=%s",
        active["chat_provider"],
        active["chat_default_model"],
        active["embedding_model"],
        "on" if active["tracing"] else "off",
        extra=active,
    )
    try:
        yield providers
    finally:
        if prebuilt is None:
            await providers.aclose()
