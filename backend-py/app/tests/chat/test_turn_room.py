"""MessageGateway.post_turns: the room, its answering persona and the message."""

import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.errors import NotFoundError
from src.gateway.chat_room_gateway import TurnRoom
from src.gateway.embeddings_gateway import search_settings
from src.gateway.message_gateway import MessageGateway, PostedMessage, UserTurn
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings
from tests.chat.conftest import add_shared_document, user_turn
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
    await connection.execute(
        text(
            "insert into user_chats (chat_room_id, user_id, role) "
            "values (:room, :owner, 'owner')"
        ),
        {"room": room_id, "owner": owner},
    )
    return room_id


async def prefer(connection: AsyncConnection, user: uuid.UUID, persona: int) -> None:
    await connection.execute(
        text(
            "update user_profiles set default_virtual_user_id = :persona "
            "where user_id = :user"
        ),
        {"persona": persona, "user": user},
    )


# Turns without an embedding retrieve nothing: no search settings needed.
NO_SEARCH = dict.fromkeys(
    (
        "model",
        "ts_config",
        "k",
        "candidates",
        "text_scan_limit",
        "vector_weight",
        "text_weight",
        "rrf_k",
    )
)


async def post_all(
    database: Database, turns: list[UserTurn], search: Mapping[str, Any] = NO_SEARCH
) -> list[PostedMessage | None]:
    async with database.statement() as session:
        return await MessageGateway(session).post_turns(turns, history=5, search=search)


async def post(
    database: Database, user: uuid.UUID, room_id: int, content: str
) -> PostedMessage:
    [posted] = await post_all(database, [user_turn(user, room_id, content)])
    if posted is None:
        raise NotFoundError(f"Chat room {room_id} not found")
    return posted


async def turn_room(database: Database, user: uuid.UUID, room_id: int) -> TurnRoom:
    return (await post(database, user, room_id, "Who answers?")).room


async def test_the_rooms_own_persona_answers(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    await insert_persona(connection, "Default", is_default=True)
    pirate = await insert_persona(connection, "Pirate", owner=user)
    room = await turn_room(database, user, await insert_room(connection, user, pirate))
    assert (room.virtual_user_id, room.persona_id, room.persona_name) == (
        pirate,
        pirate,
        "Pirate",
    )
    assert room.system_prompt == "You are Pirate."


async def test_without_one_the_creators_preference_then_the_default_answers(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    default = await insert_persona(connection, "Default", is_default=True)
    room_id = await insert_room(connection, user, None)
    assert (await turn_room(database, user, room_id)).persona_id == default
    poet = await insert_persona(connection, "Poet", owner=user)
    await prefer(connection, user, poet)
    preferred = await turn_room(database, user, room_id)
    assert (preferred.virtual_user_id, preferred.persona_id) == (None, poet)


async def test_no_persona_at_all_leaves_the_built_in_assistant(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    room = await turn_room(database, user, await insert_room(connection, user, None))
    assert room.persona_id is None
    assert room.persona_name is None


async def test_a_member_does_not_see_the_creators_private_preference(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    default = await insert_persona(connection, "Default", is_default=True)
    creator = await create_user(connection)
    poet = await insert_persona(connection, "Poet", owner=creator)
    await prefer(connection, creator, poet)
    room_id = await insert_room(connection, creator, None)
    await connection.execute(
        text(
            "insert into user_chats (chat_room_id, user_id, role) "
            "values (:room, :user, 'member')"
        ),
        {"room": room_id, "user": user},
    )
    # Row-level security hides the creator's profile from the member, as it
    # did for VirtualUserGateway.default_for: the admins' default answers.
    assert (await turn_room(database, user, room_id)).persona_id == default
    assert (await turn_room(database, creator, room_id)).persona_id == poet


async def test_a_room_of_others_is_not_found(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    stranger = await create_user(connection)
    room_id = await insert_room(connection, stranger, None)
    with pytest.raises(NotFoundError):
        await turn_room(database, user, room_id)
    count = await connection.execute(text("select count(*) from messages"))
    assert count.scalar_one() == 0  # nothing was posted there


async def test_the_history_is_the_messages_before_the_new_one_oldest_first(
    database: Database, connection: AsyncConnection, user: uuid.UUID
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
    posted = await post(database, user, room_id, "third")
    saved = await connection.execute(
        text("select content from messages where id = :id"), {"id": posted.id}
    )
    assert saved.scalar_one() == "third"
    assert [(m.role, m.content) for m in posted.history] == [
        ("user", "first"),
        ("assistant", "second"),
    ]


async def test_turns_of_several_users_are_each_posted_as_their_user(
    database: Database, connection: AsyncConnection, user: uuid.UUID
) -> None:
    other = await create_user(connection)
    mine = await insert_room(connection, user, None)
    theirs = await insert_room(connection, other, None)

    posted = await post_all(
        database,
        [
            user_turn(user, mine, "mine"),
            user_turn(user, theirs, "intrusion"),  # not a member: nothing saved
            user_turn(other, theirs, "theirs"),
            user_turn(user, mine, "mine again"),
        ],
    )

    assert posted[1] is None
    saved = await connection.execute(
        text("select id, chat_room_id, content, sender_user_id from messages")
    )
    by_id = {row.id: tuple(row)[1:] for row in saved}
    ids = [p.id for p in posted if p is not None]
    assert [by_id[i] for i in ids if i is not None] == [
        (mine, "mine", user),
        (theirs, "theirs", other),
        (mine, "mine again", user),
    ]
    assert len(by_id) == 3
    last = posted[3]
    assert last is not None
    # Each turn reads its own room's history, as of its place in the call.
    assert [m.content for m in last.history] == ["mine"]
    assert posted[2] is not None
    assert posted[2].history == []


async def test_each_turn_retrieves_with_its_own_embedding(
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
    question = "Where do shield volcanoes erupt basalt?"
    embedding = await ai_providers.embeddings.aembed_query(question)

    with_search, without = await post_all(
        database,
        [
            user_turn(user, room_id, question, embedding),
            user_turn(user, room_id, question),  # its embedding failed
        ],
        search_settings(settings, model=ai_providers.embedding_model_name, k=3),
    )

    assert with_search is not None
    assert without is not None
    assert [s.title for s in with_search.sources] == ["Volcanoes"]
    assert without.sources == []
    assert without.id is not None  # saved all the same
