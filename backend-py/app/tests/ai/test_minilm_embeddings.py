import asyncio

import numpy as np

from src.infra.ai_providers import AIProviders
from src.infra.embeddings.minilm import MiniLMEmbeddings
from src.infra.llm.chat_models import OfflineChatModels


async def test_offline_providers_are_minilm_and_the_extractive_model(
    ai_providers: AIProviders,
) -> None:
    assert ai_providers.embedding_model_name == "all-MiniLM-L6-v2-int8"
    assert isinstance(ai_providers.chat, OfflineChatModels)
    assert ai_providers.chat.default_model == "offline-extractive"
    assert not ai_providers.tracing.enabled


async def test_minilm_ranks_a_paraphrase_above_unrelated_text(
    ai_providers: AIProviders,
) -> None:
    embeddings = ai_providers.embeddings
    query = await embeddings.aembed_query("How do I reset my password?")
    paraphrase, unrelated = await embeddings.aembed_documents(
        [
            "Steps to recover your account when you forgot your login credentials.",
            "Whisk two eggs with a cup of flour to make the pancake batter.",
        ]
    )

    assert len(query) == 384
    assert np.dot(query, paraphrase) > np.dot(query, unrelated) + 0.1


async def test_a_question_is_embedded_while_a_document_batch_runs(
    ai_providers: AIProviders,
) -> None:
    embeddings = ai_providers.embeddings
    assert isinstance(embeddings, MiniLMEmbeddings)
    text = "Which port does the server listen on?"
    (as_document,) = await embeddings.aembed_documents([text])
    with embeddings._lock:  # ingestion's forward pass holds the document session
        as_query = await asyncio.wait_for(embeddings.aembed_query(text), 30)

    assert np.allclose(as_query, as_document, atol=1e-4)
