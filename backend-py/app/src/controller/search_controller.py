"""``POST /api/search``: hybrid (vector + full-text) search, for clients."""

from fastapi import APIRouter

from src.controller.dependencies import (
    AIProvidersDep,
    CurrentUserDep,
    SettingsDep,
    UserSessionDep,
)
from src.domain.entity.document import SearchRequest, SearchResponse
from src.gateway.document_gateway import DocumentGateway
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.usecase.search_usecase import SearchUseCase

router = APIRouter(prefix="/api/search", tags=["knowledge"])


@router.post("")
async def search(
    body: SearchRequest,
    _: CurrentUserDep,
    session: UserSessionDep,
    ai: AIProvidersDep,
    settings: SettingsDep,
) -> SearchResponse:
    """Search own, shared and (with ``chat_room_id``) the room's documents."""
    use_case = SearchUseCase(
        retrieval=EmbeddingsGateway(
            session, ai.embeddings, ai.embedding_model_name, settings
        ),
        documents=DocumentGateway(session),
        settings=settings,
    )
    return await use_case.search(body)
