"""Providers in the app: chosen at start-up, logged, handed to routes, closed."""

import logging

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.controller.dependencies import LLMGatewayDep
from src.domain.service.prompt_builder import build_chat_messages
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.runtime import runtime
from src.settings import Settings
from tests.ai.conftest import API_KEY
from tests.conftest import make_settings
from tests.support.fake_openai import FakeOpenAI

PROMPT = build_chat_messages(
    system_prompt="You are Ada.",
    question="Hello?",
    sources=[],
    history=[],
    history_token_budget=0,
)


def add_generate_route(app: FastAPI) -> None:
    async def generate(llm: LLMGatewayDep) -> dict[str, str]:
        generation = await llm.generate(PROMPT, model=None, temperature=None)
        return {"text": generation.text, "model": generation.model}

    app.add_api_route("/test-generate", generate, methods=["POST"])


async def test_runtime_builds_logs_and_closes_the_openai_providers(
    database_url: str,
    database: Database,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    openai_settings = make_settings(
        database_url,
        openai_api_key=API_KEY,
        openai_base_url=fake_openai.base_url,
    )
    app = FastAPI()

    with caplog.at_level(logging.INFO, logger="src.infra.ai_providers"):
        async with runtime(app, openai_settings, database):
            ai: AIProviders = app.state.ai
            clients = ai.openai_clients
            assert ai.chat.provider == "openai"
            assert clients is not None
            assert not clients.asynchronous.is_closed()

    assert clients.asynchronous.is_closed()
    assert clients.sync.is_closed()
    assert (
        "AI providers: chat=openai (default model gpt-4o-mini), "
        "embeddings=text-embedding-3-small, tracing=off"
    ) in caplog.messages


async def test_prebuilt_providers_are_used_and_left_open(
    settings: Settings, database: Database, ai_providers: AIProviders
) -> None:
    app = FastAPI()

    async with runtime(app, settings, database, ai=ai_providers):
        assert app.state.ai is ai_providers

    assert ai_providers.chat.get() is not None  # still usable by later tests


async def test_routes_generate_through_the_llm_gateway_dependency(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    add_generate_route(app)

    response = await client.post("/test-generate")

    assert response.status_code == 200
    assert response.json()["model"] == "offline-extractive"
    assert "No language model is configured" in response.json()["text"]


async def test_provider_failures_reach_clients_as_502_without_the_key(
    database_url: str, database: Database, fake_openai: FakeOpenAI
) -> None:
    openai_settings = make_settings(
        database_url,
        openai_api_key=API_KEY,
        openai_base_url=fake_openai.base_url,
        llm_max_retries=0,
    )
    app = create_app(openai_settings)
    add_generate_route(app)
    fake_openai.fail_next(1, status=401, message=f"bad key {API_KEY}")

    async with runtime(app, openai_settings, database):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.post("/test-generate")

    assert response.status_code == 502
    assert response.json()["error"] == "llm_provider_error"
    assert API_KEY not in response.text
