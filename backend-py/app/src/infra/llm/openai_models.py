"""OpenAI (or any OpenAI-compatible server) through LangChain.

The two ``openai`` SDK clients (sync and async) are built once at start-up with
the base URL, timeout and retry budget from settings; the SDK retries 429 and
5xx answers with exponential backoff (honouring ``Retry-After``). Every
``ChatOpenAI`` (one per model, temperature and max tokens) and the
``OpenAIEmbeddings`` share them, so they share one connection pool.
"""

from dataclasses import dataclass

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
    """The SDK clients shared by chat and embeddings.

    Attributes:
        sync: For synchronous LangChain calls.
        asynchronous: For everything the app awaits.
    """

    sync: openai.OpenAI
    asynchronous: openai.AsyncOpenAI

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
            asynchronous=openai.AsyncOpenAI(
                api_key=key,
                base_url=settings.openai_base_url,
                timeout=settings.llm_timeout_s,
                max_retries=settings.llm_max_retries,
            ),
        )

    async def aclose(self) -> None:
        """Close both connection pools (at shutdown)."""
        await self.asynchronous.close()
        self.sync.close()


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
