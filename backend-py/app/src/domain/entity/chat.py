"""Request and response models of the chat API (rooms, members, messages, personas)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from src.domain.entity.knowledge import RetrievedChunk
from src.domain.entity.request import RequestModel, RowId, publish_storable_text

MAX_MESSAGE_CHARS = 4000
"""The schema's bound; the configured ``MAX_MESSAGE_CHARS`` may be lower."""

MessageText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS
    ),
]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class ChatRequest(RequestModel):
    """A message to a room (a new room when ``chat_room_id`` is null)."""

    model_config = ConfigDict(extra="forbid")

    message: MessageText
    chat_room_id: RowId | None = None
    virtual_user_id: RowId | None = None


class RoomMessageCreate(RequestModel):
    """A person's message to a room."""

    model_config = ConfigDict(extra="forbid")

    content: MessageText


AIRepliesSetting = Annotated[
    Literal["mention", "always"] | None,
    Field(
        description=(
            "When the persona answers: `mention` (a message naming it as @Name, "
            "case-insensitive), `always`, or null (always while the room has "
            "one member, mention with more)"
        )
    ),
]


class PageRange(BaseModel):
    """The PDF pages a passage covers (``first == last`` for one page)."""

    first: int
    last: int


class TextSpan(BaseModel):
    """Character offsets of a passage in its document's text (``content``)."""

    start: int
    end: int


class Source(BaseModel):
    """A retrieved chunk an answer is based on (cited as [n], n = position + 1).

    ``pages``, ``heading_path`` and ``span`` say where the passage is: the PDF
    pages it covers, the headings above it (Markdown, HTML) and its characters
    in the document's text, ``content[start:end]``, which the snippet opens.
    """

    # Fields with a default are still sent: required in the response schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    document_id: int
    chunk_id: int
    title: str
    snippet: str
    score: float
    heading_path: str = ""
    pages: PageRange | None = None
    span: TextSpan | None = None

    @classmethod
    def from_chunk(cls, chunk: RetrievedChunk) -> "Source":
        """The citation of a retrieved chunk."""
        return cls(
            document_id=chunk.document_id,
            chunk_id=chunk.chunk_id,
            title=chunk.title,
            snippet=chunk.snippet(),
            score=round(chunk.score, 6),
            heading_path=chunk.heading_path,
            pages=page_range(chunk.pages),
            span=text_span(chunk.span),
        )


def page_range(pages: tuple[int, int] | None) -> PageRange | None:
    """``(first, last)`` as the API shows it."""
    return None if pages is None else PageRange(first=pages[0], last=pages[1])


def text_span(span: tuple[int, int] | None) -> TextSpan | None:
    """``(start, end)`` as the API shows it."""
    return None if span is None else TextSpan(start=span[0], end=span[1])


class ChatResponse(BaseModel):
    """The saved user message, the AI answer and its sources."""

    chat_room_id: int
    user_message_id: int
    ai_message_id: int
    ai_response: str
    sources: list[Source]


class Sender(BaseModel):
    """Who wrote a message: a human member or an AI persona."""

    kind: Literal["user", "virtual_user", "system"]
    id: str | None
    name: str | None


class MessageOut(BaseModel):
    """A message as members see it in the history."""

    id: int
    chat_room_id: int
    role: Literal["user", "assistant", "system"]
    content: str
    status: Literal["complete", "failed"]
    sender: Sender
    sources: list[Source]
    created_at: datetime


class MessagePage(BaseModel):
    """A page of history, oldest to newest; ``next_before`` fetches older ones."""

    messages: list[MessageOut]
    next_before: int | None


class PersonaSummary(BaseModel):
    """The AI persona answering in a room."""

    id: int
    name: str


class RoomMember(BaseModel):
    """A human member of a room."""

    user_id: uuid.UUID
    account_name: str
    display_name: str
    role: Literal["owner", "member"]
    joined_at: datetime


class RoomOut(BaseModel):
    """A room as its members see it.

    Every field is sent: a list of rooms has ``members`` null, one room has
    ``last_message_preview`` null.
    """

    # Fields with a default are still sent: required in the response schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: int
    title: str
    created_by: uuid.UUID
    virtual_user: PersonaSummary | None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    last_message_preview: str | None = None
    members: list[RoomMember] | None = None
    ai_replies: AIRepliesSetting = None


class RoomCreate(RequestModel):
    """A new room."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    virtual_user_id: RowId | None = None


def _refuse_null(model: BaseModel, *fields: str) -> None:
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} may not be null")


class RoomUpdate(RequestModel):
    """Change a room's title, persona or ``ai_replies`` (owner; the fields given)."""

    model_config = ConfigDict(extra="forbid")

    title: Title | SkipJsonSchema[None] = None
    virtual_user_id: RowId | None = None
    ai_replies: AIRepliesSetting = None

    @model_validator(mode="after")
    def _title_not_null(self) -> Self:
        _refuse_null(self, "title")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (``virtual_user_id: null`` = default persona)."""
        return self.model_dump(exclude_unset=True)


def _one_of_user_id_or_account_name(schema: dict[str, Any]) -> None:
    """``oneOf``: a non-null ``user_id`` or a non-null ``account_name``."""
    properties = schema["properties"]
    schema["oneOf"] = [
        {"required": [name], "properties": {name: _not_null(properties[name])}}
        for name in ("user_id", "account_name")
    ]
    publish_storable_text(schema)


def _not_null(field: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    return options[0] if len(options) == 1 else {"anyOf": options}


class MemberAdd(RequestModel):
    """Add a member by id or by account name (exactly one)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_of_user_id_or_account_name
    )

    user_id: uuid.UUID | None = None
    account_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=64)] | None
    ) = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.user_id is None) == (self.account_name is None):
            raise ValueError("give exactly one of user_id or account_name")
        return self


def hundredths(temperature: float) -> float:
    """A temperature rounded to hundredths.

    The column is a ``real``: a value as tiny as ``1e-250`` underflows (a
    database error), 0.9 reads back as 0.8999999761581421, and finer steps
    mean nothing anyway.
    """
    return round(temperature, 2)


Temperature = Annotated[float, Strict(), Field(ge=0, le=2), AfterValidator(hundredths)]
"""A sampling temperature, as written and as read back (see :func:`hundredths`).

Strict: ``false`` is refused (422), not read as 0.0; integers are accepted."""


class PersonaOut(BaseModel):
    """An AI persona: the admins' (``owner_id`` null) or the user's own."""

    id: int
    name: str
    description: str
    system_prompt: str
    model: str | None
    temperature: Temperature | None
    max_tokens: int | None
    owner_id: uuid.UUID | None
    is_default: bool
    created_at: datetime
    updated_at: datetime


PersonaName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
SystemPrompt = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)
]


MaxTokens = Annotated[int, Field(ge=1, le=32000)]
"""The most tokens an answer may have (the column's check constraint)."""


class PersonaCreate(RequestModel):
    """A persona of the user's own."""

    model_config = ConfigDict(extra="forbid")

    name: PersonaName
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    system_prompt: SystemPrompt
    model: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None


class PersonaUpdate(RequestModel):
    """Change a persona of the user's own (only the fields given)."""

    model_config = ConfigDict(extra="forbid")

    name: PersonaName | SkipJsonSchema[None] = None
    description: (
        Annotated[str, StringConstraints(max_length=1000)] | SkipJsonSchema[None]
    ) = None
    system_prompt: SystemPrompt | SkipJsonSchema[None] = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> Self:
        _refuse_null(self, "name", "description", "system_prompt")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent."""
        return self.model_dump(exclude_unset=True)
