"""Request and response bodies of the documents and search API."""

import datetime
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from src.domain.entity.chat import PageRange, TextSpan
from src.domain.entity.request import RequestModel, RowId

DocumentStatus = Literal["pending", "processing", "ready", "failed"]
UserVisibility = Literal["private", "room"]


class DocumentCreate(RequestModel):
    """A document given as text (``POST /api/documents`` with a JSON body).

    Attributes:
        title: Shown in citations.
        content: Markdown or plain text.
        visibility: ``private`` (only you) or ``room`` (members of the room,
            searched only in that room).
        chat_room_id: The room, required when visibility is ``room``.
    """

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1)
    visibility: UserVisibility = "private"
    chat_room_id: RowId | None = None


class DocumentOut(BaseModel):
    """A document and its indexing state (its content is not repeated)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    source: str | None
    mime_type: str
    visibility: str
    chat_room_id: int | None
    owner_id: uuid.UUID | None
    status: DocumentStatus
    error: str | None
    attempts: int
    chunk_count: int
    index_progress: float | None = Field(
        description="While a large document is indexed a slice at a time: the "
        "share of its chunks embedded so far (0 to 1); null otherwise.",
    )
    embedding_model: str | None
    content_hash: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @field_validator("index_progress")
    @classmethod
    def _to_a_thousandth(cls, progress: float | None) -> float | None:
        # Stored as a 4-byte real: 0.0333 rather than 0.03327786922454834.
        return None if progress is None else round(progress, 3)


class DocumentList(BaseModel):
    """A page of the caller's documents, newest first."""

    items: list[DocumentOut]


class SearchRequest(RequestModel):
    """``POST /api/search``.

    Attributes:
        query: What to look for (words, a question).
        k: How many hits; the server's default when omitted, at most
            ``MAX_SEARCH_K``.
        chat_room_id: Also search the documents attached to this room.
    """

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1)
    chat_room_id: RowId | None = None


class SearchHit(BaseModel):
    """One chunk found, with what a citation shows.

    ``pages`` (a PDF's) and ``span`` (``content``'s characters in the
    document's text) say where the chunk lies; null when unknown.
    """

    # Fields with a default are still sent: required in the response schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    chunk_id: int
    document_id: int
    title: str
    heading_path: str
    snippet: str
    content: str
    score: float
    pages: PageRange | None = None
    span: TextSpan | None = None


class SearchResponse(BaseModel):
    """The fused hits, best first."""

    hits: list[SearchHit]
