"""The composition root: builds the heavy clients once, on the app's state.

Both the lifespan and the tests use :func:`runtime`, so a test app holds the
same objects as a served one (only its database is the test's).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from src.gateway.current_user_gateway import CurrentUserGateway, KnownUserCache
from src.gateway.rate_limit_gateway import RateLimitGateway
from src.infra.ai_providers import AIProviders, open_ai_providers
from src.infra.db_client import Database
from src.infra.embedded_postgres import supervised
from src.infra.room_events import RoomEventHub
from src.infra.server_shutdown import on_server_shutdown
from src.middleware.auth_middleware import TokenVerifier
from src.settings import Settings
from src.worker.ingestion_worker import ingestion_worker_running

logger = logging.getLogger(__name__)


@asynccontextmanager
async def runtime(
    app: FastAPI,
    settings: Settings,
    database: Database,
    *,
    ai: AIProviders | None = None,
) -> AsyncIterator[None]:
    """Create the clients on ``app.state`` and close them when the block ends.

    Args:
        app: The app whose state receives the clients.
        settings: The settings to build them from.
        database: The database (the test's transaction in tests).
        ai: Prebuilt AI providers (tests build the offline ones once); the
            caller closes them. Built from settings when omitted.
    """
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http_client,
        AsyncExitStack() as stack,
    ):
        app.state.settings = settings
        app.state.database = database
        app.state.http_client = http_client
        # -- issue 19: the embedded database (development) is started again
        # when its postmaster dies --
        if database.embedded is not None:
            await stack.enter_async_context(supervised(database.embedded))
        # -- auth (issue 3): token verifier --
        app.state.token_verifier = TokenVerifier.from_settings(settings, http_client)
        app.state.current_user_gateway = CurrentUserGateway(database, KnownUserCache())
        # -- per-user rate limits, in the database (shared by every process) --
        app.state.rate_limits = RateLimitGateway(database)
        # -- AI providers (issue 5): chat model, embeddings, tracing --
        app.state.ai = await stack.enter_async_context(open_ai_providers(settings, ai))
        # -- rooms for people (issue 20): one LISTEN connection, opened on use --
        app.state.room_events = RoomEventHub.for_database(database, settings)
        stack.push_async_callback(app.state.room_events.aclose)
        stack.callback(on_server_shutdown(app.state.room_events.end_all))
        # -- knowledge (issue 8): ingestion worker --
        async with ingestion_worker_running(app, settings, database):
            yield
