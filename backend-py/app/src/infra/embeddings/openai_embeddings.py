"""OpenAI embeddings (or any OpenAI-compatible server) through LangChain.

``check_embedding_ctx_length=False`` sends the raw text: the default would
tokenize with tiktoken, which downloads its encoding files on first use and
fails with no network. The chunker keeps chunks far below the model's limit.
"""

from langchain_core.embeddings import Embeddings
from langchain_openai import OpenAIEmbeddings

from src.infra.llm.errors import PROVIDER_ERRORS, provider_error
from src.infra.llm.openai_models import OpenAIClients
from src.settings import Settings


class ProviderErrorEmbeddings(Embeddings):
    """Embeddings whose provider failures are the project's 502/504 errors."""

    def __init__(self, inner: Embeddings) -> None:
        """Wrap ``inner``; successful calls pass through unchanged."""
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages for storage."""
        try:
            return self.inner.embed_documents(texts)
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        try:
            return self.inner.embed_query(text)
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages for storage."""
        try:
            return await self.inner.aembed_documents(texts)
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        try:
            return await self.inner.aembed_query(text)
        except PROVIDER_ERRORS as exc:
            raise provider_error(exc) from exc


def openai_embeddings(settings: Settings, clients: OpenAIClients) -> Embeddings:
    """``OpenAIEmbeddings`` on their own async client, at ``EMBEDDING_DIMENSIONS``.

    Args:
        settings: Model, dimensions, base URL, timeout and retries.
        clients: The SDK clients built at start-up.

    Returns:
        The embeddings, with provider failures mapped to the project's errors.
    """
    return ProviderErrorEmbeddings(
        OpenAIEmbeddings(
            model=settings.openai_embedding_model,
            dimensions=settings.embedding_dimensions,
            check_embedding_ctx_length=False,
            openai_api_key=settings.openai_api_key,
            openai_api_base=settings.openai_base_url,
            request_timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            client=clients.sync.embeddings,
            async_client=clients.embeddings.embeddings,
        )
    )
