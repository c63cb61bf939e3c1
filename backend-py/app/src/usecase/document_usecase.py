"""Adding, listing, reading and deleting a user's documents.

Adding only stores the text and queues it (status ``pending``): the ingestion
worker, woken by the insert's NOTIFY, chunks and embeds it, so an upload
returns at once whatever its size and the client polls the status. A PDF or
HTML upload is not even parsed here (a hostile file could hold the event loop
for minutes): its bytes are stored and the worker extracts the text in a
bounded child process first.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from src.domain.entity.document import DocumentCreate, UserVisibility
from src.domain.entity.models import Documents
from src.domain.entity.user import CurrentUser
from src.domain.errors import NotFoundError, UnprocessableError
from src.domain.service.document_parsing import (
    PARSED_BY_THE_WORKER,
    ParsedDocument,
    detect_mime_type,
    fallback_title,
    parse_document,
)
from src.gateway.document_gateway import DocumentGateway


@dataclass(frozen=True)
class Upload:
    """A file posted to ``POST /api/documents``.

    Attributes:
        filename: The client's file name (its extension picks the reader).
        content_type: The part's declared media type.
        data: The file's bytes.
        title: A title chosen by the client, else the document's own.
        visibility: ``private`` or ``room``.
        chat_room_id: The room, for visibility ``room``.
    """

    filename: str
    content_type: str | None
    data: bytes
    title: str | None
    visibility: UserVisibility
    chat_room_id: int | None


@dataclass(frozen=True)
class AddedDocument:
    """The stored document, and whether this request created it.

    Attributes:
        document: The row.
        created: False when the caller already had this exact content there.
    """

    document: Documents
    created: bool


def content_hash(content: str) -> str:
    """The sha256 the ``documents_prepare`` trigger stores for this content."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class DocumentUseCase:
    """The documents API, in the caller's transaction."""

    def __init__(self, documents: DocumentGateway) -> None:
        self._documents = documents

    async def add_text(
        self, *, user: CurrentUser, body: DocumentCreate
    ) -> AddedDocument:
        """Store a document given as text and queue it for indexing."""
        return await self._add(
            user=user,
            parsed=ParsedDocument(
                title=body.title, content=body.content, mime_type="text/markdown"
            ),
            visibility=body.visibility,
            chat_room_id=body.chat_room_id,
            source=None,
        )

    async def add_upload(self, *, user: CurrentUser, upload: Upload) -> AddedDocument:
        """Store an uploaded file and queue it for parsing or indexing.

        Text and Markdown are decoded here (linear in the size, already
        bounded); PDF and HTML are stored as files for the worker to parse.

        Raises:
            UnsupportedMediaTypeError: The file type is not supported (415).
            UnprocessableError: A text file has no text (422).
        """
        mime_type = detect_mime_type(upload.filename, upload.content_type)
        if mime_type in PARSED_BY_THE_WORKER:
            return await self._add_file(user=user, upload=upload, mime_type=mime_type)
        parsed = parse_document(upload.filename, upload.data, upload.content_type)
        if upload.title:
            parsed = ParsedDocument(
                title=upload.title,
                content=parsed.content,
                mime_type=parsed.mime_type,
                metadata=parsed.metadata,
            )
        return await self._add(
            user=user,
            parsed=parsed,
            visibility=upload.visibility,
            chat_room_id=upload.chat_room_id,
            source=upload.filename,
        )

    async def list_own(
        self, *, user: CurrentUser, limit: int, offset: int
    ) -> Sequence[Documents]:
        """The caller's documents, newest first."""
        return await self._documents.list_owned(
            owner_id=user.id, limit=limit, offset=offset
        )

    async def get(self, *, document_id: int) -> Documents:
        """A document the caller may read: own, shared, or of one of their rooms.

        Raises:
            NotFoundError: No such document, or not visible to the caller.
        """
        document = await self._documents.get_visible(document_id)
        if document is None:
            raise NotFoundError("document not found")
        return document

    async def delete(self, *, user: CurrentUser, document_id: int) -> None:
        """Delete one of the caller's documents with its chunks.

        Raises:
            NotFoundError: No such document owned by the caller.
        """
        if not await self._documents.delete_owned(
            document_id=document_id, owner_id=user.id
        ):
            raise NotFoundError("document not found")

    async def _add(
        self,
        *,
        user: CurrentUser,
        parsed: ParsedDocument,
        visibility: UserVisibility,
        chat_room_id: int | None,
        source: str | None,
    ) -> AddedDocument:
        await self._check_placement(visibility, chat_room_id)
        existing = await self._documents.find_same_content(
            owner_id=user.id,
            content_hash=content_hash(parsed.content),
            visibility=visibility,
            chat_room_id=chat_room_id,
        )
        if existing is not None:
            return AddedDocument(existing, created=False)
        document = await self._documents.create(
            owner_id=user.id,
            title=parsed.title,
            content=parsed.content,
            visibility=visibility,
            chat_room_id=chat_room_id,
            source=source,
            mime_type=parsed.mime_type,
            metadata=parsed.metadata,
        )
        return AddedDocument(document, created=True)

    async def _add_file(
        self, *, user: CurrentUser, upload: Upload, mime_type: str
    ) -> AddedDocument:
        await self._check_placement(upload.visibility, upload.chat_room_id)
        file_hash = hashlib.sha256(upload.data).hexdigest()
        existing = await self._documents.find_same_file(
            owner_id=user.id,
            original_sha256=file_hash,
            visibility=upload.visibility,
            chat_room_id=upload.chat_room_id,
        )
        if existing is not None:
            return AddedDocument(existing, created=False)
        document = await self._documents.create(
            owner_id=user.id,
            title=upload.title or fallback_title(upload.filename),
            content="",
            visibility=upload.visibility,
            chat_room_id=upload.chat_room_id,
            source=upload.filename,
            mime_type=mime_type,
            original=upload.data,
            original_sha256=file_hash,
        )
        return AddedDocument(document, created=True)

    async def _check_placement(
        self, visibility: UserVisibility, chat_room_id: int | None
    ) -> None:
        if visibility == "private":
            if chat_room_id is not None:
                raise UnprocessableError(
                    "chat_room_id is only allowed with visibility 'room'"
                )
            return
        if chat_room_id is None:
            raise UnprocessableError("visibility 'room' needs a chat_room_id")
        if not await self._documents.is_room_member(chat_room_id):
            raise NotFoundError("chat room not found")
