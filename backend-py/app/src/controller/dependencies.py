"""Named dependencies: routes read like sentences."""

from typing import Annotated, cast

from fastapi import Depends, Request

from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings


def get_settings_from_app(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


def get_database(request: Request) -> Database:
    """The database built in the lifespan."""
    return cast(Database, request.app.state.database)


def get_ai_providers(request: Request) -> AIProviders:
    """The chat model and embeddings chosen at start-up."""
    return cast(AIProviders, request.app.state.ai)


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
DatabaseDep = Annotated[Database, Depends(get_database)]
AIProvidersDep = Annotated[AIProviders, Depends(get_ai_providers)]
