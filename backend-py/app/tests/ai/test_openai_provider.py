"""The OpenAI path over real HTTP: the real ``openai`` SDK and LangChain against
the fake server in ``tests/support/fake_openai.py``."""

from typing import Any

import openai
import pytest
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from src.domain.errors import (
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
    UnprocessableError,
)
from src.domain.service.prompt_builder import build_chat_messages
from src.gateway.llm_gateway import LLMGateway
from src.infra.llm.openai_models import OpenAIChatModels
from tests.ai.conftest import API_KEY, BuildProviders
from tests.support.fake_openai import GARBLES, FakeOpenAI, Garble, fake_embedding

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def prompt() -> list[BaseMessage]:
    return build_chat_messages(
        system_prompt="You are Ada.",
        question="Where is the guide?",
        sources=[],
        history=[],
        history_token_budget=100,
    )


async def test_generate_sends_the_persona_options_and_reports_usage(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    fake_openai.reply = "It is in the install guide [1]."
    gateway = LLMGateway(build_openai().chat)

    generation = await gateway.generate(
        prompt(), model="gpt-4o", temperature=0.2, max_tokens=50
    )

    assert generation.text == "It is in the install guide [1]."
    assert generation.model == "gpt-4o"
    assert generation.usage["output_tokens"] == 7
    assert generation.usage["total_tokens"] == (
        generation.usage["input_tokens"] + generation.usage["output_tokens"]
    )
    assert generation.latency_ms >= 0
    [request] = fake_openai.requests_to(CHAT)
    assert request.body["model"] == "gpt-4o"
    assert request.body["temperature"] == 0.2
    assert request.body["max_completion_tokens"] == 50
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_settings_fill_in_what_the_persona_leaves_out(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(
        build_openai(openai_chat_model="gpt-4.1-mini", llm_temperature=0.7).chat
    )

    await gateway.generate(prompt(), model=None, temperature=None)

    [request] = fake_openai.requests_to(CHAT)
    assert request.body["model"] == "gpt-4.1-mini"
    assert request.body["temperature"] == 0.7
    assert request.body["max_completion_tokens"] == 1024


async def test_stream_yields_deltas_then_the_whole_answer_with_usage(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    fake_openai.reply = "Streaming works one word at a time."
    gateway = LLMGateway(build_openai().chat)

    events = [
        event
        async for event in gateway.stream(prompt(), model="gpt-4o", temperature=0.1)
    ]

    deltas = [e.delta for e in events if e.generation is None]
    final = events[-1].generation
    assert len(deltas) == 7
    assert "".join(deltas) == fake_openai.reply
    assert final is not None
    assert final.text == fake_openai.reply
    assert final.model == "gpt-4o"  # as the provider's chunks name it
    assert final.usage["output_tokens"] == 7
    assert final.usage["input_tokens"] > 0
    [request] = fake_openai.requests_to(CHAT)
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}


async def test_chat_models_are_built_once_per_options_on_shared_clients(
    build_openai: BuildProviders,
) -> None:
    providers = build_openai()
    chat = providers.chat
    assert isinstance(chat, OpenAIChatModels)
    assert providers.openai_clients is not None

    first = chat.get(model="gpt-4o", temperature=0.5)
    again = chat.get(model="gpt-4o", temperature=0.5)
    other = chat.get(model="gpt-4o", temperature=0.9)

    assert first is again
    assert other is not first
    assert isinstance(other, ChatOpenAI)
    assert other.root_async_client is providers.openai_clients.asynchronous


def _pool(client: openai.AsyncOpenAI) -> Any:
    """The SDK client's connection pool (httpcore's, inside httpx)."""
    return client._client._transport._pool  # type: ignore[attr-defined]


async def test_chat_and_embeddings_have_pools_of_their_own_kept_alive(
    build_openai: BuildProviders,
) -> None:
    providers = build_openai()
    clients = providers.openai_clients
    assert clients is not None
    chat_pool, embeddings_pool = _pool(clients.asynchronous), _pool(clients.embeddings)

    await providers.embeddings.aembed_query("a question")
    assert (len(chat_pool.connections), len(embeddings_pool.connections)) == (0, 1)
    await providers.chat.get().ainvoke("hello")
    assert (len(chat_pool.connections), len(embeddings_pool.connections)) == (1, 1)
    for pool in (chat_pool, embeddings_pool):
        # LLM_MAX_CONNECTIONS, not the SDK's 100 kept alive
        assert pool._max_keepalive_connections == 1000
        assert pool._max_connections == 1000


async def test_embeddings_ask_for_384_dimensions_without_tiktoken(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    providers = build_openai()

    documents = await providers.embeddings.aembed_documents(["alpha", "beta"])
    query = providers.embeddings.embed_query("gamma")

    assert providers.embedding_model_name == "text-embedding-3-small"
    assert documents[0] == pytest.approx(fake_embedding("alpha", 384), abs=1e-6)
    assert documents[1] == pytest.approx(fake_embedding("beta", 384), abs=1e-6)
    assert query == pytest.approx(fake_embedding("gamma", 384), abs=1e-6)
    first, second = fake_openai.requests_to(EMBEDDINGS)
    assert first.body["input"] == ["alpha", "beta"]  # raw text, not token ids
    assert first.body["model"] == "text-embedding-3-small"
    assert first.body["dimensions"] == 384
    assert second.body["input"] == ["gamma"]


async def test_rate_limits_are_retried_until_the_provider_answers(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai(llm_max_retries=2).chat)
    fake_openai.fail_next(2, status=429)

    generation = await gateway.generate(prompt(), model=None, temperature=None)

    assert generation.text == fake_openai.reply
    assert len(fake_openai.requests_to(CHAT)) == 3


async def test_rate_limits_after_the_retries_are_an_llm_rate_limit_error(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai(llm_max_retries=1).chat)
    fake_openai.fail_next(2, status=429)

    with pytest.raises(LLMRateLimitError) as caught:
        await gateway.generate(prompt(), model=None, temperature=None)

    assert caught.value.status_code == 502
    assert "rate limiting" in caught.value.message
    assert len(fake_openai.requests_to(CHAT)) == 2


async def test_a_server_error_is_an_llm_provider_error(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai().chat)

    fake_openai.fail_next(1, status=500)
    with pytest.raises(LLMProviderError) as generating:
        await gateway.generate(prompt(), model=None, temperature=None)
    fake_openai.fail_next(1, status=500)
    with pytest.raises(LLMProviderError) as streaming:
        async for _ in gateway.stream(prompt(), model=None, temperature=None):
            pass

    for caught in (generating, streaming):
        assert type(caught.value) is LLMProviderError
        assert caught.value.status_code == 502
        assert caught.value.message == "The language model provider answered HTTP 500."


async def test_a_hang_past_the_timeout_is_an_llm_timeout_error(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai(llm_timeout_s=0.3).chat)

    fake_openai.hang_next(1)
    with pytest.raises(LLMTimeoutError) as generating:
        await gateway.generate(prompt(), model=None, temperature=None)
    fake_openai.hang_next(1)
    with pytest.raises(LLMTimeoutError):
        async for _ in gateway.stream(prompt(), model=None, temperature=None):
            pass

    assert generating.value.status_code == 504


async def test_provider_messages_never_reach_the_caller(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai().chat)
    fake_openai.fail_next(1, status=401, message=f"Incorrect API key: {API_KEY}")

    with pytest.raises(LLMProviderError) as caught:
        await gateway.generate(prompt(), model=None, temperature=None)

    assert API_KEY not in str(caught.value)
    assert API_KEY not in str(caught.value.body())
    assert "rejected the configured API key" in caught.value.message


async def test_embedding_failures_are_provider_errors(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    providers = build_openai()
    fake_openai.fail_next(1, status=503)

    with pytest.raises(LLMProviderError) as caught:
        await providers.embeddings.aembed_query("anything")

    assert caught.value.message == "The language model provider answered HTTP 503."


async def test_a_model_outside_the_allowed_list_is_refused_before_any_request(
    fake_openai: FakeOpenAI, build_openai: BuildProviders
) -> None:
    gateway = LLMGateway(build_openai(allowed_chat_models=["gpt-4o"]).chat)

    with pytest.raises(UnprocessableError) as caught:
        await gateway.generate(prompt(), model="gpt-3.5-turbo", temperature=None)

    assert "gpt-4o" in caught.value.message
    assert fake_openai.requests == []


UNREADABLE = "The language model provider sent an answer that could not be read."


@pytest.mark.parametrize("garble", GARBLES)
async def test_an_invalid_answer_is_an_llm_provider_error(
    fake_openai: FakeOpenAI, build_openai: BuildProviders, garble: Garble
) -> None:
    providers = build_openai()
    gateway = LLMGateway(providers.chat)

    fake_openai.garble_next(3, garble)
    with pytest.raises(LLMProviderError) as generating:
        await gateway.generate(prompt(), model=None, temperature=None)
    with pytest.raises(LLMProviderError) as streaming:
        async for _ in gateway.stream(prompt(), model=None, temperature=None):
            pass
    with pytest.raises(LLMProviderError) as embedding:
        await providers.embeddings.aembed_documents(["alpha", "beta"])

    assert generating.value.status_code == 502
    assert generating.value.code == "llm_provider_error"
    assert generating.value.message == UNREADABLE
    assert streaming.value.code == "llm_provider_error"
    assert embedding.value.code == "llm_provider_error"
    assert len(fake_openai.requests_to(CHAT)) == 2
