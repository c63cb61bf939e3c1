"""Named dependencies: routes read like sentences."""

from typing import Annotated, cast

from fastapi import Depends, Request

from src.infra.db_client import Database
from src.settings import Settings


def get_settings_from_app(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


def get_database(request: Request) -> Database:
    """The database built in the lifespan."""
    return cast(Database, request.app.state.database)


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
DatabaseDep = Annotated[Database, Depends(get_database)]
