"""Row-level security, checked in SQL as the roles Supabase uses."""

import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import create_room

PUBLIC_TABLES = [
    "general_users",
    "user_profiles",
    "virtual_users",
    "chat_rooms",
    "user_chats",
    "messages",
    "documents",
    "document_chunks",
]


async def create_user(conn: AsyncConnection, email: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    await conn.execute(
        text(
            "insert into auth.users (id, email, aud, role, raw_user_meta_data) "
            "values (:id, :email, 'authenticated', 'authenticated', '{}')"
        ),
        {"id": user_id, "email": email},
    )
    return user_id


async def act_as(conn: AsyncConnection, user_id: uuid.UUID | None) -> None:
    if user_id is None:
        await conn.execute(text("select set_config('role', 'anon', true)"))
        return
    claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
    await conn.execute(
        text(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', :claims, true)"
        ),
        {"claims": claims},
    )


async def as_service(conn: AsyncConnection) -> None:
    await conn.execute(text("select set_config('role', 'none', true)"))


async def count(conn: AsyncConnection, table: str) -> int:
    result = await conn.execute(text(f"select count(*) from public.{table}"))  # noqa: S608
    return int(result.scalar_one())


async def test_signup_creates_general_user_and_profile(
    connection: AsyncConnection,
) -> None:
    user_id = await create_user(connection, "New.Person+x@example.com")
    row = (
        await connection.execute(
            text("select account_name, display_name from general_users where id = :id"),
            {"id": user_id},
        )
    ).one()
    assert row.account_name == "new_person_x"
    assert row.display_name == "New.Person+x"
    profiles = await connection.execute(
        text("select count(*) from user_profiles where user_id = :id"), {"id": user_id}
    )
    assert profiles.scalar_one() == 1


async def test_each_user_sees_only_their_rooms_messages_and_documents(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-rls@example.com")
    bob = await create_user(connection, "bob-rls@example.com")

    await act_as(connection, alice)
    room = await create_room(connection, alice)
    await connection.execute(
        text(
            "insert into messages (chat_room_id, sender_user_id, role, content) "
            "values (:room, :me, 'user', 'secret plans')"
        ),
        {"room": room, "me": alice},
    )
    await connection.execute(
        text(
            "insert into documents (owner_id, title, content) "
            "values (:me, 'private', 'alice only')"
        ),
        {"me": alice},
    )
    assert await count(connection, "chat_rooms") == 1
    assert await count(connection, "messages") == 1

    await as_service(connection)
    await connection.execute(
        text("insert into documents (title, content) values ('handbook', 'shared')")
    )

    await act_as(connection, bob)
    assert await count(connection, "chat_rooms") == 0
    assert await count(connection, "user_chats") == 0
    assert await count(connection, "messages") == 0
    titles = (await connection.execute(text("select title from documents"))).scalars()
    assert set(titles) >= {"handbook"}
    assert "private" not in set(
        (await connection.execute(text("select title from documents"))).scalars()
    )


async def test_a_user_cannot_post_into_a_room_they_are_not_in(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-post@example.com")
    bob = await create_user(connection, "bob-post@example.com")
    await act_as(connection, alice)
    room = (
        await connection.execute(
            text(
                "insert into chat_rooms (title, created_by) values ('A', :me) "
                "returning id"
            ),
            {"me": alice},
        )
    ).scalar_one()
    await act_as(connection, bob)
    savepoint = await connection.begin_nested()
    try:
        await connection.execute(
            text(
                "insert into messages (chat_room_id, sender_user_id, role, content) "
                "values (:room, :me, 'user', 'intrusion')"
            ),
            {"room": room, "me": bob},
        )
    except Exception as exc:  # noqa: BLE001
        error = str(exc)
    else:
        error = ""
    await savepoint.rollback()
    assert "row-level security" in error


async def test_a_member_cannot_forge_ai_messages(connection: AsyncConnection) -> None:
    alice = await create_user(connection, "alice-forge@example.com")
    await act_as(connection, alice)
    room = await create_room(connection, alice)
    refused = []
    for role, sender in (("assistant", None), ("system", None), ("user", None)):
        savepoint = await connection.begin_nested()
        try:
            await connection.execute(
                text(
                    "insert into messages (chat_room_id, sender_user_id, role, "
                    "content) values (:room, :sender, :role, 'I am the AI')"
                ),
                {"room": room, "sender": sender, "role": role},
            )
        except Exception as exc:  # noqa: BLE001
            refused.append("row-level security" in str(exc))
        else:
            refused.append(False)
        await savepoint.rollback()
    own = await connection.execute(
        text(
            "insert into messages (chat_room_id, sender_user_id, role, content) "
            "values (:room, :me, 'user', 'hello') returning role"
        ),
        {"room": room, "me": alice},
    )
    assert refused == [True, True, True]
    assert own.scalar_one() == "user"


async def test_anon_sees_nothing(connection: AsyncConnection) -> None:
    alice = await create_user(connection, "alice-anon@example.com")
    await act_as(connection, alice)
    await connection.execute(
        text("insert into chat_rooms (title, created_by) values ('A', :me)"),
        {"me": alice},
    )
    await as_service(connection)
    await connection.execute(
        text("insert into documents (title, content) values ('shared', 'x')")
    )
    await act_as(connection, None)
    for table in PUBLIC_TABLES:
        assert await count(connection, table) == 0, table


async def test_every_public_table_has_row_level_security(
    connection: AsyncConnection,
) -> None:
    rows = await connection.execute(
        text(
            "select relname from pg_class where relnamespace = 'public'::regnamespace "
            "and relkind = 'r' and not relrowsecurity"
        )
    )
    assert rows.scalars().all() == []


async def test_admin_document_insert_is_shared_pending_and_notified(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("listen document_pending"))
    row = (
        await connection.execute(
            text(
                "insert into documents (title, content) values ('faq', 'q and a') "
                "returning visibility, status, content_hash"
            )
        )
    ).one()
    assert row.visibility == "shared"
    assert row.status == "pending"
    assert len(row.content_hash) == 64


async def test_members_read_the_messages_of_exactly_the_rooms_they_are_in(
    connection: AsyncConnection,
) -> None:
    carol = await create_user(connection, "carol-rls@example.com")
    dave = await create_user(connection, "dave-rls@example.com")
    await act_as(connection, carol)
    rooms = [await create_room(connection, carol) for _ in range(2)]
    await act_as(connection, dave)
    daves_room = await create_room(connection, dave)
    await as_service(connection)
    for room in [*rooms, daves_room]:
        await connection.execute(
            text(
                "insert into messages (chat_room_id, role, content) "
                "values (:room, 'assistant', 'hello')"
            ),
            {"room": room},
        )
    read_rooms = text("select chat_room_id from messages order by chat_room_id")

    await act_as(connection, carol)
    assert list((await connection.execute(read_rooms)).scalars()) == rooms

    await connection.execute(  # Carol leaves her second room
        text("delete from user_chats where chat_room_id = :room and user_id = :me"),
        {"room": rooms[1], "me": carol},
    )
    assert list((await connection.execute(read_rooms)).scalars()) == rooms[:1]


async def test_only_the_backend_may_post_a_turn_with_claims_of_its_choice(
    connection: AsyncConnection,
) -> None:
    # post_chat_turn takes the JWT claims as an argument: whoever may call it
    # may claim to be anyone. hybrid_search runs as its caller, so users may.
    privileges = await connection.execute(
        text(
            "select r.rolname, "
            "has_function_privilege(r.rolname, "
            "  'public.post_chat_turn(text, bigint, text, int, bigint, "
            "extensions.vector, text, text, regconfig, int, int, int, float8, "
            "float8, int)', 'execute'), "
            "has_function_privilege(r.rolname, "
            "  'public.post_chat_turns(text[], bigint[], text[], bigint[], "
            "extensions.vector[], text[], int, text, regconfig, int, int, int, "
            "float8, float8, int)', 'execute'), "
            "has_function_privilege(r.rolname, "
            "  'public.hybrid_search(extensions.vector, text, text, bigint, "
            "regconfig, int, int, int, float8, float8, int)', 'execute') "
            "from pg_roles r "
            "where r.rolname in ('anon', 'authenticated', 'service_role') "
            "order by r.rolname"
        )
    )
    assert [tuple(row) for row in privileges] == [
        ("anon", False, False, False),
        ("authenticated", False, False, True),
        ("service_role", False, False, True),
    ]


async def test_a_turn_runs_with_its_callers_search_path(
    connection: AsyncConnection,
) -> None:
    # With a SET search_path clause, every turn re-planned the foreign-key
    # checks of messages, whose cached plans the backend's own inserts share.
    settings = await connection.execute(
        text(
            "select proname, proconfig from pg_proc "
            "where oid in ('public.post_chat_turn(text, bigint, text, int, bigint, "
            "extensions.vector, text, text, regconfig, int, int, int, float8, "
            "float8, int)'::regprocedure, 'public.post_chat_turns(text[], "
            "bigint[], text[], bigint[], extensions.vector[], text[], int, text, "
            "regconfig, int, int, int, float8, float8, int)'::regprocedure) "
            "order by proname"
        )
    )
    assert [tuple(row) for row in settings] == [
        ("post_chat_turn", None),
        ("post_chat_turns", None),
    ]


async def test_turns_whose_arrays_differ_in_length_are_refused(
    connection: AsyncConnection,
) -> None:
    # A turn must never take another's claims, room or message.
    with pytest.raises(DBAPIError, match="differ in length"):
        await connection.execute(
            text(
                "select * from public.post_chat_turns("
                "array['{}', '{}'], array[1, 2]::bigint[], array['only one'], "
                "array[null, null]::bigint[], array[null, null]::extensions.vector[], "
                "array[null, null]::text[], 5, null, 'english', 5, 40, 100, 1, 1, 60)"
            )
        )


async def test_a_turn_posted_with_claims_runs_as_that_user(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-turn@example.com")
    bob = await create_user(connection, "bob-turn@example.com")
    room = await create_room(connection, alice)
    await as_service(connection)

    async def post_as(user: uuid.UUID, message: str) -> list[tuple[object, ...]]:
        rows = await connection.execute(
            text(
                "select message_id, current_user from public.post_chat_turn("
                ":claims, :room, :message, 5, null, null, null, null, 'english', "
                "5, 40, 100, 1, 1, 60)"
            ),
            {
                "claims": json.dumps({"sub": str(user), "role": "authenticated"}),
                "room": room,
                "message": message,
            },
        )
        await as_service(connection)
        return [tuple(row) for row in rows]

    assert await post_as(bob, "intrusion") == []  # not in the room: nothing
    [(message_id, role)] = await post_as(alice, "hello")
    assert role == "authenticated"
    sender = await connection.execute(
        text("select sender_user_id, content from messages where id = :id"),
        {"id": message_id},
    )
    assert tuple(sender.one()) == (alice, "hello")
    assert await count(connection, "messages") == 1


async def test_a_turn_returns_its_room_once_then_the_history_newest_first(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-history@example.com")
    room = await create_room(connection, alice)
    await as_service(connection)
    claims = json.dumps({"sub": str(alice), "role": "authenticated"})
    turn = text(
        "select chat_room_id, message_id, role, content "
        "from public.post_chat_turn(:claims, :room, :message, 5, null, null, "
        "null, null, 'english', 5, 40, 100, 1, 1, 60)"
    )

    answers = []
    for message in ("one", "two", "three"):
        rows = await connection.execute(
            turn, {"claims": claims, "room": room, "message": message}
        )
        answers.append([tuple(row) for row in rows])
        await as_service(connection)

    third_id = answers[2][0][1]
    assert answers[0] == [(room, answers[0][0][1], None, None)]
    assert answers[2] == [
        (room, third_id, None, None),  # the room (and persona) once
        (None, None, "user", "two"),
        (None, None, "user", "one"),
    ]


async def test_the_full_text_routes_and_their_statistics_are_not_for_users(
    connection: AsyncConnection,
) -> None:
    # Users search through match_document_chunks_text; the two routes behind
    # it run as its owner, and the common words are the service's business
    # (service_role keeps Supabase's default rights on tables).
    signature = "(text, regconfig, text, bigint, int, int)"
    privileges = await connection.execute(
        text(
            "select r.rolname, "
            "has_function_privilege(r.rolname, :search, 'execute'), "
            "has_function_privilege(r.rolname, :planned, 'execute'), "
            "has_function_privilege(r.rolname, :indexed, 'execute'), "
            "has_function_privilege(r.rolname, :refresh, 'execute'), "
            "has_table_privilege(r.rolname, :lexemes, 'select'), "
            "has_table_privilege(r.rolname, :lexemes, 'insert') "
            "from pg_roles r "
            "where r.rolname in ('anon', 'authenticated', 'service_role') "
            "order by r.rolname"
        ),
        {
            "search": f"public.match_document_chunks_text{signature}",
            "planned": f"public.match_document_chunks_text_planned{signature}",
            "indexed": f"public.match_document_chunks_text_indexed{signature}",
            "refresh": "public.refresh_document_chunk_common_lexemes()",
            "lexemes": "public.document_chunk_common_lexemes",
        },
    )
    assert [tuple(row) for row in privileges] == [
        ("anon", False, False, False, False, False, False),
        ("authenticated", True, False, False, False, False, False),
        ("service_role", True, False, False, True, True, True),
    ]
