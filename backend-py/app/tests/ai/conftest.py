"""Fixtures of the AI provider tests: a fake OpenAI server on 127.0.0.1."""

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from src.infra.ai_providers import AIProviders, build_ai_providers
from src.settings import Settings
from tests.support.fake_openai import FakeOpenAI

API_KEY = "sk-test-do-not-leak-0123456789"

BuildProviders = Callable[..., AIProviders]


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """One fake OpenAI server for the session."""
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake server, with no recorded request or pending fault."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


def openai_settings(base_url: str, **overrides: Any) -> Settings:
    """Settings that select the OpenAI provider at ``base_url``, no retries."""
    values: dict[str, Any] = {
        "environment": "test",
        "openai_api_key": API_KEY,
        "openai_base_url": base_url,
        "llm_max_retries": 0,
        "llm_timeout_s": 10.0,
        "langsmith_tracing": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def build_openai(fake_openai: FakeOpenAI) -> AsyncIterator[BuildProviders]:
    """Builds OpenAI providers on the fake server; closes them after the test."""
    built: list[AIProviders] = []

    def build(**overrides: Any) -> AIProviders:
        providers = build_ai_providers(
            openai_settings(fake_openai.base_url, **overrides)
        )
        built.append(providers)
        return providers

    yield build
    for providers in built:
        await providers.aclose()
