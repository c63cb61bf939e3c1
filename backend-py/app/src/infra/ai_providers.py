"""The two plug points: the chat model and the embeddings, chosen once from settings.

Each is a LangChain interface with two real implementations: OpenAI (when
``OPENAI_API_KEY`` is set; any OpenAI-compatible server via ``OPENAI_BASE_URL``)
and an offline default that needs no key and no network.
"""

from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.settings import Settings


@dataclass(frozen=True)
class AIProviders:
    """The providers the app uses, built once at start-up.

    Attributes:
        embeddings: Turns text into 384-dimension vectors.
        embedding_model_name: Recorded on every chunk; search compares only
            vectors of this model.
    """

    embeddings: Embeddings
    embedding_model_name: str


def build_ai_providers(settings: Settings) -> AIProviders:
    """Choose and build the providers from settings."""
    del settings  # the OpenAI choice is added with issue 5
    embeddings = MiniLMEmbeddings()
    return AIProviders(
        embeddings=embeddings, embedding_model_name=embeddings.model_name
    )
