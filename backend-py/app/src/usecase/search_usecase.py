"""``POST /api/search``: the hybrid retrieval the chat uses, for clients."""

from sqlalchemy.ext.asyncio import AsyncSession

from src.domain.entity.chat import page_range, text_span
from src.domain.entity.document import SearchHit, SearchRequest, SearchResponse
from src.domain.errors import NotFoundError, UnprocessableError
from src.gateway.document_gateway import DocumentGateway
from src.gateway.embeddings_gateway import EmbeddingsGateway
from src.settings import Settings


class SearchUseCase:
    """Validates a search against the limits and runs it as the caller."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        retrieval: EmbeddingsGateway,
        documents: DocumentGateway,
        settings: Settings,
    ) -> None:
        self._session = session
        self._retrieval = retrieval
        self._documents = documents
        self._settings = settings

    async def search(self, request: SearchRequest) -> SearchResponse:
        """The fused hits for the request, best first.

        Raises:
            UnprocessableError: ``k`` or the query is over its limit.
            NotFoundError: The caller is not a member of ``chat_room_id``.
        """
        k = request.k or self._settings.retrieval_k
        if k > self._settings.max_search_k:
            raise UnprocessableError(f"k must be at most {self._settings.max_search_k}")
        if len(request.query) > self._settings.max_message_chars:
            raise UnprocessableError(
                f"query must be at most {self._settings.max_message_chars} characters"
            )
        room_id = request.chat_room_id
        if room_id is not None and not await self._documents.is_room_member(room_id):
            raise NotFoundError("chat room not found")
        chunks = await self._retrieval.search(
            self._session, query=request.query, k=k, chat_room_id=room_id
        )
        return SearchResponse(
            hits=[
                SearchHit(
                    chunk_id=c.chunk_id,
                    document_id=c.document_id,
                    title=c.title,
                    heading_path=c.heading_path,
                    snippet=c.snippet(),
                    content=c.content,
                    score=c.score,
                    pages=page_range(c.pages),
                    span=text_span(c.span),
                )
                for c in chunks
            ]
        )
