"""ChatUseCase.ask: the room, its answering persona, the history and the question."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.entity.chat import ChatRequest
from src.domain.entity.turn import Turn
from src.domain.errors import NotFoundError, UnprocessableError
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings
from tests.chat.conftest import add_shared_document, chat_use_case
from tests.factories import create_user


async def insert_persona(
    connection: AsyncConnection,
    name: str,
    *,
    owner: uuid.UUID | None = None,
    is_default: bool = False,
) -> int:
    result = await connection.execute(
        text(
            "insert into virtual_users (name, system_prompt, owner_id, is_default) "
            "values (:name, :prompt, :owner, :is_default) returning id"
        ),
        {
            "name": name,
            "prompt": f"You are {name}.",
            "owner": owner,
            "is_default": is_default,
        },
    )
    return int(result.scalar_one())


async def insert_room(
    connection: AsyncConnection, owner: uuid.UUID, persona: int | None
) -> int:
    room = await connection.execute(
        text(
            "insert into chat_rooms (title, created_by, virtual_user_id) "
            "values ('t', :owner, :persona) returning id"
        ),
        {"owner": owner, "persona": persona},
    )
    room_id = int(room.scalar_one())
    await join(connection, room_id, owner, "owner")
    return room_id


async def join(
    connection: AsyncConnection, room_id: int, user: uuid.UUID, role: str = "member"
) -> None:
    await connection.execute(
        text(
            "insert into user_chats (chat_room_id, user_id, role) "
            "values (:room, :user, :role)"
        ),
        {"room": room_id, "user": user, "role": role},
    )


async def prefer(connection: AsyncConnection, user: uuid.UUID, persona: int) -> None:
    await connection.execute(
        text(
            "update user_profiles set default_virtual_user_id = :persona "
            "where user_id = :user"
        ),
        {"persona": persona, "user": user},
    )


@pytest.fixture
def ask_as(
    database: Database, ai_providers: AIProviders, settings: Settings
) -> "AskAs":
    return AskAs(database, ai_providers, settings)


class AskAs:
    """Asks questions as any user, through the chat use case."""

    def __init__(self, database: Database, ai: AIProviders, settings: Settings) -> None:
        self.database = database
        self.ai = ai
        self.settings = settings

    async def __call__(
        self,
        user: uuid.UUID,
        room_id: int | None,
        message: str = "Who answers?",
        virtual_user_id: int | None = None,
    ) -> Turn:
        use_case = chat_use_case(
            database=self.database, user_id=user, ai=self.ai, settings=self.settings
        )
        return await use_case.ask(
            ChatRequest(
                message=message, chat_room_id=room_id, virtual_user_id=virtual_user_id
            )
        )


async def test_the_rooms_own_persona_answers(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    await insert_persona(connection, "Default", is_default=True)
    pirate = await insert_persona(connection, "Pirate", owner=user)
    turn = await ask_as(user, await insert_room(connection, user, pirate))
    assert (turn.persona.id, turn.persona.name) == (pirate, "Pirate")
    assert turn.persona.system_prompt == "You are Pirate."


async def test_without_one_the_creators_preference_then_the_default_answers(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    default = await insert_persona(connection, "Default", is_default=True)
    room_id = await insert_room(connection, user, None)
    assert (await ask_as(user, room_id)).persona.id == default
    poet = await insert_persona(connection, "Poet", owner=user)
    await prefer(connection, user, poet)
    assert (await ask_as(user, room_id)).persona.id == poet


async def test_no_persona_at_all_leaves_the_built_in_assistant(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    turn = await ask_as(user, await insert_room(connection, user, None))
    assert turn.persona.id is None
    assert turn.persona.name == "Assistant"


async def test_a_new_room_gets_the_persona_asked_for_or_the_default(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    default = await insert_persona(connection, "Default", is_default=True)
    pirate = await insert_persona(connection, "Pirate", owner=user)
    chosen = await ask_as(user, None, virtual_user_id=pirate)
    assert chosen.persona.id == pirate
    plain = await ask_as(user, None)
    assert plain.persona.id == default
    rooms = await connection.execute(
        text("select id, virtual_user_id from chat_rooms order by id")
    )
    assert [tuple(r) for r in rooms] == [
        (chosen.chat_room_id, pirate),
        (plain.chat_room_id, default),
    ]


async def test_a_member_does_not_see_the_creators_private_preference(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    default = await insert_persona(connection, "Default", is_default=True)
    creator = await create_user(connection)
    poet = await insert_persona(connection, "Poet", owner=creator)
    await prefer(connection, creator, poet)
    room_id = await insert_room(connection, creator, None)
    await join(connection, room_id, user)
    # Row-level security hides the creator's profile from the member: the
    # admins' default answers for them.
    assert (await ask_as(user, room_id)).persona.id == default
    assert (await ask_as(creator, room_id)).persona.id == poet


async def test_a_room_of_others_is_not_found_and_nothing_is_saved(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    stranger = await create_user(connection)
    room_id = await insert_room(connection, stranger, None)
    with pytest.raises(NotFoundError):
        await ask_as(user, room_id)
    count = await connection.execute(text("select count(*) from messages"))
    assert count.scalar_one() == 0


async def test_another_persona_than_the_rooms_is_refused_and_nothing_is_saved(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    pirate = await insert_persona(connection, "Pirate", owner=user)
    poet = await insert_persona(connection, "Poet", owner=user)
    room_id = await insert_room(connection, user, pirate)
    with pytest.raises(UnprocessableError):
        await ask_as(user, room_id, virtual_user_id=poet)
    assert (await ask_as(user, room_id, virtual_user_id=pirate)).persona.id == pirate
    count = await connection.execute(text("select count(*) from messages"))
    assert count.scalar_one() == 1


async def test_the_history_is_the_messages_before_the_new_one_oldest_first(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    room_id = await insert_room(connection, user, None)
    for role, content, sender in (
        ("user", "first", user),
        ("assistant", "second", None),
    ):
        await connection.execute(
            text(
                "insert into messages (chat_room_id, role, content, sender_user_id) "
                "values (:room, :role, :content, :sender)"
            ),
            {"room": room_id, "role": role, "content": content, "sender": sender},
        )
    turn = await ask_as(user, room_id, "third")
    saved = await connection.execute(
        text("select content from messages where id = :id"),
        {"id": turn.user_message_id},
    )
    assert saved.scalar_one() == "third"
    assert [(m.role, m.content) for m in turn.history] == [
        ("user", "first"),
        ("assistant", "second"),
    ]


async def test_each_users_question_is_saved_as_that_user(
    ask_as: AskAs, connection: AsyncConnection, user: uuid.UUID
) -> None:
    other = await create_user(connection)
    room_id = await insert_room(connection, user, None)
    await join(connection, room_id, other)
    await ask_as(user, room_id, "mine")
    theirs = await ask_as(other, room_id, "theirs")
    saved = await connection.execute(
        text("select content, sender_user_id from messages order by id")
    )
    assert [tuple(r) for r in saved] == [("mine", user), ("theirs", other)]
    assert [m.content for m in theirs.history] == ["mine"]


async def test_the_question_retrieves_the_knowledge_it_asks_about(
    ask_as: AskAs,
    database: Database,
    connection: AsyncConnection,
    user: uuid.UUID,
    ai_providers: AIProviders,
    settings: Settings,
) -> None:
    await add_shared_document(
        connection,
        database,
        ai_providers,
        settings,
        title="Volcanoes",
        content="Basalt lava flows from shield volcanoes in Hawaii.",
    )
    room_id = await insert_room(connection, user, None)
    turn = await ask_as(user, room_id, "Where do shield volcanoes erupt basalt?")
    assert [s.title for s in turn.sources()] == ["Volcanoes"]
