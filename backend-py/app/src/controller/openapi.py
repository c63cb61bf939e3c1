"""What the OpenAPI document takes from the app's settings.

Routes are declared once, at import; a bound that is a setting (``MAX_PAGE_SIZE``)
is written into each app's document when the app first builds it.
"""

from typing import Any

from fastapi import FastAPI

from src.controller.dependencies import default_page_size
from src.settings import Settings


def publish_settings(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` state the bounds ``settings`` set.

    Every ``limit`` query parameter (``PageLimitDep``) gets ``maximum:
    MAX_PAGE_SIZE``, the bound ``page_limit`` enforces, and the default it uses.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        document = build()
        if first:
            _bound_page_limits(document, settings)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _bound_page_limits(document: dict[str, Any], settings: Settings) -> None:
    for parameter in _parameters(document):
        if parameter["in"] == "query" and parameter["name"] == "limit":
            parameter["schema"]["maximum"] = settings.max_page_size
            parameter["schema"]["default"] = default_page_size(settings)


def _parameters(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        parameter
        for path in document.get("paths", {}).values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
    ]
