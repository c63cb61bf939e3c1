"""OpenAI (or any OpenAI-compatible server) through LangChain.

The ``openai`` SDK clients are built once at start-up with the base URL,
timeout and retry budget from settings; the SDK retries 429 and 5xx answers
with exponential backoff (honouring ``Retry-After``). Every ``ChatOpenAI`` (one
per model, temperature and max tokens) shares the chat client, whose pool holds
a connection per open stream; the embeddings have an async client of their
own, so their short requests do not scan (or wait behind) the pool of every
open chat stream. Both pools keep up to ``LLM_MAX_CONNECTIONS`` connections
alive: the SDK's default of 100 would close and reopen connections once more
answers stream at once.
"""

from dataclasses import dataclass

import httpx2
import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from src.infra.llm.chat_models import ChatModels
from src.settings import Settings

MAX_CACHED_MODELS = 32
"""Distinct (model, temperature, max tokens) chat models kept; oldest dropped."""


@dataclass(frozen=True)
class OpenAIClients:
    """The SDK clients, built once.

    Attributes:
        sync: For synchronous LangChain calls (chat and embeddings).
        asynchronous: For the chat models the app awaits.
        embeddings: For the embeddings the app awaits (a pool of its own).
    """

    sync: openai.OpenAI
    asynchronous: openai.AsyncOpenAI
    embeddings: openai.AsyncOpenAI

    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAIClients":
        """Build the clients from ``OPENAI_*`` and ``LLM_*`` settings.

        Raises:
            ValueError: ``OPENAI_API_KEY`` is not set.
        """
        if settings.openai_api_key is None:
            raise ValueError("OPENAI_API_KEY is required for the OpenAI provider")
        key = settings.openai_api_key.get_secret_value()
        return cls(
            sync=openai.OpenAI(
                api_key=key,
                base_url=settings.openai_base_url,
                timeout=settings.llm_timeout_s,
                max_retries=settings.llm_max_retries,
            ),
            asynchronous=_async_client(key, settings),
            embeddings=_async_client(key, settings),
        )

    async def aclose(self) -> None:
        """Close the connection pools (at shutdown)."""
        await self.asynchronous.close()
        await self.embeddings.close()
        self.sync.close()


def _async_client(key: str, settings: Settings) -> openai.AsyncOpenAI:
    """An async client with a pool of its own, sized by ``LLM_MAX_CONNECTIONS``."""
    limits = httpx2.Limits(
        max_connections=settings.llm_max_connections,
        max_keepalive_connections=settings.llm_max_connections,
    )
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        http_client=openai.DefaultAsyncHttpxClient(
            limits=limits, timeout=settings.llm_timeout_s
        ),
    )


class OpenAIChatModels(ChatModels):
    """``ChatOpenAI`` models on the shared clients, one per persona setting."""

    provider = "openai"

    def __init__(self, clients: OpenAIClients, settings: Settings) -> None:
        """Hand out chat models on ``clients``.

        Args:
            clients: The shared SDK clients.
            settings: Default model, temperature, max tokens and allowed models
                (the clients' timeout bounds each read, also between streamed
                chunks).
        """
        super().__init__(
            default_model=settings.openai_chat_model,
            allowed_models=settings.allowed_chat_models,
        )
        self._clients = clients
        self._settings = settings
        self._models: dict[tuple[str, float, int], ChatOpenAI] = {}

    def get(
        self,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> BaseChatModel:
        """The ``ChatOpenAI`` for these options, settings filling the gaps."""
        key = (
            model or self.default_model,
            self._settings.llm_temperature if temperature is None else temperature,
            max_tokens or self._settings.llm_max_tokens,
        )
        chat = self._models.get(key)
        if chat is None:
            if len(self._models) >= MAX_CACHED_MODELS:
                self._models.pop(next(iter(self._models)))
            chat = self._models[key] = self._build(*key)
        return chat

    def _build(self, model: str, temperature: float, max_tokens: int) -> ChatOpenAI:
        settings = self._settings
        assert settings.openai_api_key is not None  # noqa: S101 - checked by clients
        return ChatOpenAI(
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            api_key=SecretStr(settings.openai_api_key.get_secret_value()),
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            stream_usage=True,
            # The SDK client's timeout bounds every read of a stream, so a
            # stalled stream fails without LangChain's timer on each chunk.
            stream_chunk_timeout=None,
            client=self._clients.sync.chat.completions,
            async_client=self._clients.asynchronous.chat.completions,
            root_client=self._clients.sync,
            root_async_client=self._clients.asynchronous,
        )
