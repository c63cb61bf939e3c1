import pytest

from src.domain.entity.knowledge import RetrievedChunk
from src.domain.errors import UnprocessableError
from src.domain.service.prompt_builder import build_chat_messages
from src.gateway.llm_gateway import LLMGateway, validate_chat_model
from src.infra.ai_providers import AIProviders
from src.settings import Settings

SOURCE = RetrievedChunk(
    chunk_id=7,
    document_id=3,
    title="Handbook",
    content="Vacation requests must be filed two weeks in advance.",
    heading_path="Leave",
    score=0.8,
)
PROMPT = build_chat_messages(
    system_prompt="You are the HR assistant.",
    question="How early must vacation requests be filed?",
    sources=[SOURCE],
    history=[],
    history_token_budget=100,
)


async def test_offline_generation_quotes_the_source(ai_providers: AIProviders) -> None:
    gateway = LLMGateway(ai_providers.chat)

    generation = await gateway.generate(PROMPT, model="gpt-4o", temperature=0.4)

    assert generation.model == "offline-extractive"
    assert "filed two weeks in advance. [1]" in generation.text
    assert generation.usage["output_tokens"] > 0


async def test_offline_streaming_ends_with_the_generated_text(
    ai_providers: AIProviders,
) -> None:
    gateway = LLMGateway(ai_providers.chat)
    generated = await gateway.generate(PROMPT, model=None, temperature=None)

    events = [e async for e in gateway.stream(PROMPT, model=None, temperature=None)]

    final = events[-1].generation
    assert final is not None
    assert "".join(e.delta for e in events[:-1]) == generated.text
    assert final.text == generated.text
    assert final.usage == generated.usage


def test_offline_any_persona_model_is_accepted() -> None:
    offline = Settings(_env_file=None, openai_api_key=None)

    validate_chat_model(offline, "my-local-model")
    validate_chat_model(offline, None)


def test_with_openai_only_allowed_models_are_accepted() -> None:
    online = Settings(
        _env_file=None, openai_api_key="sk-x", allowed_chat_models=["gpt-4o"]
    )

    validate_chat_model(online, "gpt-4o")
    validate_chat_model(online, None)
    with pytest.raises(UnprocessableError) as caught:
        validate_chat_model(online, "gpt-5-pro")
    assert caught.value.status_code == 422
    assert "'gpt-5-pro' is not available" in caught.value.message
