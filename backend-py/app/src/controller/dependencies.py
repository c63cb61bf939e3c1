"""Named dependencies: routes read like sentences.

Dependencies are ``async def`` even when they only read ``app.state``: FastAPI
runs a plain ``def`` dependency in its thread pool, a thread hop per request.
"""

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.entity.user import CurrentUser
from src.domain.errors import UnprocessableError
from src.gateway.current_user_gateway import CurrentUserGateway
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.gateway.llm_gateway import LLMGateway
from src.gateway.rate_limit_gateway import RateLimitGateway
from src.gateway.room_events_gateway import RoomEventsGateway
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.infra.room_events import RoomEventHub
from src.middleware.auth_middleware import TokenVerifier, bearer_token
from src.settings import Settings

bearer_scheme = HTTPBearer(
    auto_error=False, description="A Supabase access token (JWT)."
)
"""Declares the bearer scheme in OpenAPI; the header is parsed by current_user."""


async def get_settings_from_app(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


async def get_database(request: Request) -> Database:
    """The database built in the lifespan."""
    return cast(Database, request.app.state.database)


async def get_ai_providers(request: Request) -> AIProviders:
    """The chat model and embeddings chosen at start-up."""
    return cast(AIProviders, request.app.state.ai)


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
DatabaseDep = Annotated[Database, Depends(get_database)]


DEFAULT_PAGE_SIZE = 50
"""A list's page size when ``limit`` is not given (``MAX_PAGE_SIZE`` when lower)."""


def default_page_size(settings: Settings) -> int:
    """The page size of a list whose request gives no ``limit``."""
    return min(DEFAULT_PAGE_SIZE, settings.max_page_size)


async def page_limit(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[
        int, Query(ge=1, description="Page size (MAX_PAGE_SIZE at most)")
    ] = DEFAULT_PAGE_SIZE,
) -> int:
    """The ``limit`` query parameter of a list, bounded by ``MAX_PAGE_SIZE``.

    An absent ``limit`` is :func:`default_page_size`; one given over the bound
    is refused. Its maximum and default are written into the OpenAPI document per app
    (``src/controller/openapi.py``).

    Raises:
        UnprocessableError: The limit is over ``MAX_PAGE_SIZE``.
    """
    if "limit" not in request.query_params:
        return default_page_size(settings)
    if limit > settings.max_page_size:
        raise UnprocessableError(f"limit: at most {settings.max_page_size} allowed")
    return limit


PageLimitDep = Annotated[int, Depends(page_limit)]
AIProvidersDep = Annotated[AIProviders, Depends(get_ai_providers)]


async def get_llm_gateway(ai: AIProvidersDep) -> LLMGateway:
    """Generation with the chat model chosen at start-up (cheap to build)."""
    return LLMGateway(ai.chat, ai.tracing)


LLMGatewayDep = Annotated[LLMGateway, Depends(get_llm_gateway)]


async def get_embeddings_gateway(
    ai: AIProvidersDep, settings: SettingsDep
) -> EmbeddingsGateway:
    """Query embeddings and hybrid search with the model chosen at start-up."""
    return EmbeddingsGateway(ai.embeddings, ai.embedding_model_name, settings)


EmbeddingsGatewayDep = Annotated[EmbeddingsGateway, Depends(get_embeddings_gateway)]


async def get_rate_limits(request: Request) -> RateLimitGateway:
    """The per-user rate limits (kept in the database), built at start-up."""
    return cast(RateLimitGateway, request.app.state.rate_limits)


RateLimitsDep = Annotated[RateLimitGateway, Depends(get_rate_limits)]


async def get_room_events(request: Request, settings: SettingsDep) -> RoomEventsGateway:
    """Room events through the process's one listening connection."""
    hub = cast(RoomEventHub, request.app.state.room_events)
    return RoomEventsGateway(
        hub, token_interval_s=settings.room_events_token_interval_s
    )


RoomEventsDep = Annotated[RoomEventsGateway, Depends(get_room_events)]


async def current_user(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> CurrentUser:
    """The verified caller; a first request creates their ``general_users`` row.

    Raises:
        AuthenticationError: Missing, malformed or invalid token, or unknown user.
        ForbiddenError: A valid token whose role may not use the API.
        ServiceUnavailableError: The signing keys could not be fetched.
    """
    verifier = cast(TokenVerifier, request.app.state.token_verifier)
    gateway = cast(CurrentUserGateway, request.app.state.current_user_gateway)
    user = await verifier.verify(bearer_token(request.headers.get("authorization")))
    await gateway.ensure_exists(user.id)
    return user


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]


async def user_session(
    user: CurrentUserDep, database: DatabaseDep
) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, as the caller (row-level security applies).

    Commits when the route returns, rolls back when it raises. Scoped to the
    route function, so the commit happens before the response is sent and a
    failed commit is an error response, never a 200.
    """
    async with database.user_transaction(user.claims) as session:
        yield session


UserSessionDep = Annotated[AsyncSession, Depends(user_session, scope="function")]
