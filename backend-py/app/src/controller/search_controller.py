"""``POST /api/search``: hybrid (vector + full-text) search, for clients."""

from typing import Annotated

from fastapi import APIRouter, Depends

from src.controller.dependencies import (
    CurrentUserDep,
    EmbeddingsGatewayDep,
    SettingsDep,
    UserSessionDep,
)
from src.domain.entity.document import SearchRequest, SearchResponse
from src.gateway.document_gateway import DocumentGateway
from src.usecase.search_usecase import SearchUseCase

router = APIRouter(prefix="/api/search", tags=["knowledge"])


async def search_use_case(
    _: CurrentUserDep,
    session: UserSessionDep,
    knowledge: EmbeddingsGatewayDep,
    settings: SettingsDep,
) -> SearchUseCase:
    """The search use case in the request's transaction, as the caller."""
    return SearchUseCase(
        session=session,
        retrieval=knowledge,
        documents=DocumentGateway(session),
        settings=settings,
    )


SearchUseCaseDep = Annotated[SearchUseCase, Depends(search_use_case)]


@router.post("")
async def search(body: SearchRequest, use_case: SearchUseCaseDep) -> SearchResponse:
    """Search own, shared and (with ``chat_room_id``) the room's documents."""
    return await use_case.search(body)
