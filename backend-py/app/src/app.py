"""FastAPI application factory and lifespan."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from src.controller import (
    chat_controller,
    chat_room_controller,
    document_controller,
    health_controller,
    search_controller,
    user_controller,
    virtual_user_controller,
)
from src.controller.openapi import publish_settings
from src.infra.db_client import open_database
from src.infra.gc_tuning import tune_gc_for_serving
from src.infra.logging import configure_logging
from src.middleware.body_limit import RequestBodyMiddleware
from src.middleware.error_handlers import ERROR_RESPONSES, install_error_handlers
from src.middleware.request_context import RequestContextMiddleware
from src.runtime import runtime
from src.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the heavy clients once; close them at shutdown."""
    settings: Settings = app.state.settings
    database = await open_database(settings)
    try:
        async with runtime(app, settings, database):
            tune_gc_for_serving()
            logger.info("startup complete", extra={"environment": settings.environment})
            yield
    finally:
        await database.dispose()
        if database.embedded is not None:
            await asyncio.to_thread(database.embedded.release)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application.

    Args:
        settings: The settings to use; read from the environment when omitted.

    Returns:
        The FastAPI app (clients are built when its lifespan starts).
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = FastAPI(
        title="RAG Chat API",
        version="0.1.0",
        description="Chat with AI personas over your documents (Supabase + pgvector).",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    publish_settings(app, settings)
    # Innermost of the middleware: its 4xx still get CORS headers and an id.
    app.add_middleware(RequestBodyMiddleware, settings=settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(health_controller.router)
    # -- routers of the API (one line each) --
    app.include_router(document_controller.router)
    app.include_router(search_controller.router)
    app.include_router(user_controller.router)
    app.include_router(chat_controller.router)
    app.include_router(chat_room_controller.router)
    app.include_router(virtual_user_controller.router)
    return app


app = create_app()
