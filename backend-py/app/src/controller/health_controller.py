"""Liveness and readiness."""

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.controller.dependencies import DatabaseDep, SettingsDep
from src.middleware.error_handlers import error_response

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=None)
async def ready(database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """The API can serve requests: the database answers in time."""
    try:
        async with asyncio.timeout(settings.db_connect_timeout_s):
            await database.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness check failed: %s", type(exc).__name__)
        reason = f"database: {type(exc).__name__}"
        return error_response(
            503,
            {
                "error": "database_unavailable",
                "message": "The database is unavailable; try again shortly.",
                "status": "unavailable",
                "reason": reason,
            },
            {"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": "ok"})
