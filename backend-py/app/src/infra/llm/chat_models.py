"""The chat plug point: which LangChain chat model answers a persona.

Two implementations, chosen once at start-up: :class:`OpenAIChatModels`
(``src.infra.llm.openai_models``) when ``OPENAI_API_KEY`` is set, and
:class:`OfflineChatModels`, the extractive model, otherwise.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from langchain_core.language_models import BaseChatModel

from src.infra.llm.extractive_chat_model import MODEL_NAME, ExtractiveChatModel


class ChatModels(ABC):
    """Hands out the chat model for a persona's model, temperature and max tokens.

    Attributes:
        provider: ``openai`` or ``offline``.
        default_model: Used when a persona names no model.
        allowed_models: The model names personas may use; None accepts any.
    """

    provider: ClassVar[str]

    def __init__(
        self, *, default_model: str, allowed_models: Sequence[str] | None
    ) -> None:
        self.default_model = default_model
        self.allowed_models = tuple(allowed_models) if allowed_models else None

    @abstractmethod
    def get(
        self,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> BaseChatModel:
        """The chat model to call; None means the configured default.

        Args:
            model: The persona's model name.
            temperature: The persona's sampling temperature.
            max_tokens: The most tokens to generate.

        Returns:
            A LangChain chat model, built once and reused.
        """


class OneModelChatModels(ChatModels):
    """One chat model answers every persona (it has no model choice or sampling)."""

    def __init__(self, chat_model: BaseChatModel, *, model_name: str) -> None:
        """Answer with ``chat_model``, reported as ``model_name``."""
        super().__init__(default_model=model_name, allowed_models=None)
        self._model = chat_model

    def get(
        self,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> BaseChatModel:
        """The one model, whatever the persona asks for."""
        del model, temperature, max_tokens
        return self._model


class OfflineChatModels(OneModelChatModels):
    """The extractive model for every persona (no key, no network)."""

    provider = "offline"

    def __init__(self) -> None:
        """Build the extractive model."""
        super().__init__(ExtractiveChatModel(), model_name=MODEL_NAME)
