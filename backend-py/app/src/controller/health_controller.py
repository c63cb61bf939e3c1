"""Liveness and readiness."""

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.controller.dependencies import DatabaseDep, SettingsDep

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
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})
