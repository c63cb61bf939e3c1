"""The chat turn's domain types: who answers, what was asked, what is sent."""

from dataclasses import dataclass
from typing import Any

from src.domain.entity.chat import MessageOut, Source, hundredths
from src.domain.entity.knowledge import Retrieval, RetrievedChunk
from src.domain.entity.models import VirtualUsers
from src.domain.service.prompt_builder import HistoryMessage

ROOM_TITLE_CHARS = 60
FALLBACK_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer from the provided context and cite "
    "sources as [n]; say so when the context does not contain the answer."
)


@dataclass(frozen=True)
class Persona:
    """The AI persona answering a turn."""

    id: int | None
    name: str
    system_prompt: str
    model: str | None
    temperature: float | None
    max_tokens: int | None

    @classmethod
    def of(cls, row: VirtualUsers | None) -> "Persona":
        """The persona of a row, or the built-in assistant when there is none."""
        if row is None:
            return cls(None, "Assistant", FALLBACK_SYSTEM_PROMPT, None, None, None)
        temperature = None if row.temperature is None else hundredths(row.temperature)
        return cls(
            row.id,
            row.name,
            row.system_prompt,
            row.model,
            temperature,
            row.max_tokens,
        )


@dataclass(frozen=True)
class Turn:
    """A question saved in its room, with what answering it needs."""

    chat_room_id: int
    user_message_id: int
    question: str
    persona: Persona
    history: list[HistoryMessage]
    retrieval: Retrieval
    asker_name: str | None = None
    """Shown before the question in rooms of several people."""

    def sources(self) -> list[RetrievedChunk]:
        """The retrieved chunks.

        Raises:
            DomainError: The embedding provider failed (502/504).
        """
        if self.retrieval.error is not None:
            raise self.retrieval.error
        return self.retrieval.sources


@dataclass(frozen=True)
class PersonaCall:
    """A person's message in a room that the persona is to answer."""

    chat_room_id: int
    user_message_id: int
    question: str
    persona: Persona
    history: list[HistoryMessage]
    asker_name: str | None


@dataclass(frozen=True)
class RoomPost:
    """A person's saved message, and the persona's call when it answers."""

    message: MessageOut
    call: PersonaCall | None


@dataclass(frozen=True)
class ChatEvent:
    """One server-sent event of a streamed turn."""

    event: str
    data: dict[str, Any]


def citations(sources: list[RetrievedChunk]) -> list[Source]:
    """The retrieved chunks as the API shows them ([n] is position + 1)."""
    return [Source.from_chunk(chunk) for chunk in sources]


def room_title(message: str) -> str:
    """A room title from the first line of its first message."""
    first_line = message.strip().splitlines()[0].strip()
    if len(first_line) <= ROOM_TITLE_CHARS:
        return first_line
    return first_line[:ROOM_TITLE_CHARS].rsplit(" ", 1)[0].rstrip() + "…"
