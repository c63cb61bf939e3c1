"""RoomPostUseCase: a member's message in a room, and the persona's answer.

1. **Post** (:meth:`RoomPostUseCase.post`): the message is admitted as a
   turn's question is (length, chat token); then, in one short transaction as
   the caller: the room (membership), the persona answering in it, the
   history, the message saved and read back as the room shows it, and how
   many members the room has. Whether the persona answers follows the
   mentions rule (:mod:`src.domain.service.mentions`).
2. **Answer** (:meth:`RoomPostUseCase.answer`), after the post's response:
   a chat turn (the :class:`ChatUseCase`'s retrieval, generation and saved
   answer) whose tokens go to the room's event streams.
"""

import logging

from src.domain.entity.turn import (
    Persona,
    PersonaCall,
    RoomPost,
    Turn,
    citations,
)
from src.domain.errors import DomainError
from src.domain.service.mentions import ai_replies_of, persona_answers
from src.domain.service.prompt_builder import HISTORY_MESSAGES
from src.gateway.chat_room_gateway import ChatRoomGateway
from src.gateway.llm_gateway import Generation
from src.gateway.message_gateway import MessageGateway, MessageView
from src.gateway.room_events_gateway import RoomEventsGateway
from src.gateway.virtual_user_gateway import VirtualUserGateway
from src.usecase.chat_room_usecase import message_out
from src.usecase.chat_usecase import ChatUseCase, finished, to_history

logger = logging.getLogger(__name__)


class RoomPostUseCase:
    """Posts a member's message; answers as the room's persona when called."""

    def __init__(self, turns: ChatUseCase) -> None:
        """Take the caller's chat use case: a called persona answers as a turn."""
        self.turns = turns

    async def post(self, room_id: int, content: str) -> RoomPost:
        """Save a member's message in a room; say whether the persona answers.

        The persona answers a message that mentions it (``@Name``), or every
        message when the room's ``ai_replies`` is ``always`` (see
        :mod:`src.domain.service.mentions`). The answer is then written by
        :meth:`answer`, after this message is committed.

        Raises:
            NotFoundError: The room does not exist for the caller.
            UnprocessableError: The message is over the configured limit.
            RateLimitedError: Over ``RATE_LIMIT_CHAT_PER_MINUTE``.
        """
        await self.turns.admit(content)
        async with self.turns.as_caller() as session:
            rooms = ChatRoomGateway(session)
            joined = await rooms.joined(room_id, self.turns.user.id)
            room = joined.room
            persona = Persona.of(await VirtualUserGateway(session).answering_in(joined))
            messages = MessageGateway(session)
            history = await messages.history(
                room.id, before=None, limit=HISTORY_MESSAGES
            )
            saved = await self._save(messages, room.id, content)
            members = await rooms.member_count(room.id)
        replies = ai_replies_of(room.ai_replies, members)
        if not persona_answers(content, persona.name, replies):
            return RoomPost(message_out(saved), None)
        call = PersonaCall(
            chat_room_id=room.id,
            user_message_id=saved.id,
            question=content,
            persona=persona,
            history=to_history(history),
            asker_name=saved.sender_name if members > 1 else None,
        )
        return RoomPost(message_out(saved), call)

    async def answer(self, call: PersonaCall, events: RoomEventsGateway) -> None:
        """Answer a call as a chat turn, telling the room's streams as it goes.

        Publishes ``answer.started``, the tokens (``answer.token``), then saves
        the answer (its ``message`` event comes from the database); on failure
        ``answer.failed`` with the error's code, and no AI message is stored.
        """
        reply = {"reply_to": call.user_message_id}
        await events.publish(
            call.chat_room_id,
            "answer.started",
            {**reply, "persona": {"id": call.persona.id, "name": call.persona.name}},
        )
        try:
            await self._answer(call, events)
        except DomainError as exc:
            failure = {"code": exc.code, "message": exc.message}
            await events.publish(call.chat_room_id, "answer.failed", reply | failure)
        except Exception:
            logger.exception("room answer failed")
            failure = {"code": "internal_error", "message": "The answer failed."}
            await events.publish(call.chat_room_id, "answer.failed", reply | failure)

    async def _answer(self, call: PersonaCall, events: RoomEventsGateway) -> None:
        """Retrieve for the call, write the answer token by token, save it."""
        turns = self.turns
        turn = Turn(
            chat_room_id=call.chat_room_id,
            user_message_id=call.user_message_id,
            question=call.question,
            persona=call.persona,
            history=call.history,
            retrieval=await turns.retrieve(
                call.question, call.history, call.chat_room_id
            ),
            asker_name=call.asker_name,
        )
        tokens = events.tokens(call.chat_room_id, call.user_message_id)
        async with turns.trace(turn) as run:
            run.add_retrieval(turn.retrieval)
            sources = turn.sources()
            written: Generation | None = None
            async for event in turns.write(turn, sources):
                if event.generation is not None:
                    written = event.generation
                elif event.delta:
                    await tokens.add(event.delta)
            # Every token reaches the room before the saved answer does.
            await tokens.flush()
            answer = finished(written)
            ai_message_id = await turns.save_answer(turn, citations(sources), answer)
            run.add_metadata(ai_message_id=ai_message_id)
            run.record(answer=answer.text)

    async def _save(
        self, messages: MessageGateway, room_id: int, content: str
    ) -> MessageView:
        """Save the member's message and read it back as the room shows it."""
        message_id = await messages.save_question(
            chat_room_id=room_id, sender_user_id=self.turns.user.id, content=content
        )
        saved = await messages.view(message_id)
        if saved is None:  # pragma: no cover - the caller just wrote it
            raise RuntimeError("a saved message is not readable by its sender")
        return saved
