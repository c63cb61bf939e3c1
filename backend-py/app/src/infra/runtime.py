"""Builds the heavy clients once and hands them to the app's state.

Both the lifespan and the tests use :func:`runtime`, so a test app holds the
same objects as a served one (only its database is the test's).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from src.infra.ai_providers import build_ai_providers
from src.infra.db_client import Database
from src.settings import Settings

logger = logging.getLogger(__name__)


@asynccontextmanager
async def runtime(
    app: FastAPI, settings: Settings, database: Database
) -> AsyncIterator[None]:
    """Create the clients on ``app.state`` and close them when the block ends."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http_client:
        app.state.settings = settings
        app.state.database = database
        app.state.http_client = http_client
        # -- auth (issue 3): token verifier --
        # -- AI providers (issue 5): chat model, embeddings, tracing --
        app.state.ai = build_ai_providers(settings)
        # -- knowledge (issue 8): ingestion worker --
        yield
