"""Provider failures as the project's errors (502 or 504, with a clear message).

An answer that is not valid (a body that is not JSON, an HTML page sent with
status 200, JSON of another shape, no ``choices``, a stream chunk that does not
parse) surfaces from the SDK and LangChain as a ``ValueError`` (JSON decoding
among them), ``TypeError``, ``LookupError`` or ``AttributeError``: raised by a
provider call, those are the provider's failure (502), not ours.

The messages are ours: a provider's own message can echo part of the API key
(e.g. on 401), so it is never passed on.
"""

import logging
from collections.abc import Callable

import openai
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from src.domain.errors import (
    DomainError,
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
)

logger = logging.getLogger(__name__)

INVALID_ANSWER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
)
"""What reading a provider's answer raises when the answer is not valid."""

PROVIDER_ERRORS: tuple[type[Exception], ...] = (
    openai.OpenAIError,
    ModelError,
    TimeoutError,  # also langchain-openai's StreamChunkTimeoutError
    *INVALID_ANSWER_ERRORS,
)
"""What a LangChain model or embeddings call raises when the provider fails.

Catch them around the provider call only: elsewhere a ``ValueError`` is a bug.
"""

_KNOWN: tuple[tuple[tuple[type[Exception], ...], Callable[[], DomainError]], ...] = (
    (
        (openai.RateLimitError, ModelRateLimitError),
        lambda: LLMRateLimitError(
            "The language model provider is rate limiting requests; "
            "try again in a moment."
        ),
    ),
    (
        (openai.APITimeoutError, ModelTimeoutError, TimeoutError),
        lambda: LLMTimeoutError("The language model provider did not answer in time."),
    ),
    (
        (ContextOverflowError,),
        lambda: LLMProviderError(
            "The conversation is too long for the model's context window."
        ),
    ),
    (
        (openai.AuthenticationError, ModelAuthenticationError),
        lambda: LLMProviderError(
            "The language model provider rejected the configured API key."
        ),
    ),
    (
        (openai.APIConnectionError, ModelConnectionError),
        lambda: LLMProviderError("The language model provider could not be reached."),
    ),
    (
        (openai.APIResponseValidationError, *INVALID_ANSWER_ERRORS),
        lambda: LLMProviderError(
            "The language model provider sent an answer that could not be read."
        ),
    ),
)


def provider_error(exc: Exception) -> DomainError:
    """The project error for a provider failure.

    Args:
        exc: One of :data:`PROVIDER_ERRORS`.

    Returns:
        ``LLMRateLimitError`` (429 after retries), ``LLMTimeoutError`` (504) or
        ``LLMProviderError`` (502).
    """
    status = getattr(exc, "status_code", None)
    logger.warning(
        "LLM provider failure",
        extra={"error_type": type(exc).__name__, "provider_status": status},
        # An unreadable answer could also be a bug of ours: keep the traceback.
        exc_info=exc if isinstance(exc, INVALID_ANSWER_ERRORS) else None,
    )
    for kinds, make in _KNOWN:
        if isinstance(exc, kinds):
            return make()
    if isinstance(status, int):
        return LLMProviderError(f"The language model provider answered HTTP {status}.")
    return LLMProviderError("The language model provider failed.")
