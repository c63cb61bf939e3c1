"""Row-level security, checked in SQL as the roles Supabase uses."""

import json
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import add_member, create_room

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


async def test_personas_read_are_admin_own_and_those_of_my_rooms(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-persona@example.com")
    bob = await create_user(connection, "bob-persona@example.com")
    carol = await create_user(connection, "carol-persona@example.com")
    await as_service(connection)
    personas = {}
    for name, owner in (("admin", None), ("alices", alice), ("bobs", bob)):
        personas[name] = (
            await connection.execute(
                text(
                    "insert into virtual_users (owner_id, name, system_prompt) "
                    "values (:owner, :name, 'p') returning id"
                ),
                {"owner": owner, "name": name},
            )
        ).scalar_one()
    room = await create_room(connection, alice)
    await connection.execute(
        text("update chat_rooms set virtual_user_id = :p where id = :room"),
        {"p": personas["alices"], "room": room},
    )
    await add_member(connection, room, bob)
    read = text("select name from virtual_users where id = any(:ids) order by name")
    ids = list(personas.values())

    seen = {}
    for who, user in (("alice", alice), ("bob", bob), ("carol", carol)):
        await act_as(connection, user)
        seen[who] = list((await connection.execute(read, {"ids": ids})).scalars())

    assert seen == {
        "alice": ["admin", "alices"],
        "bob": ["admin", "alices", "bobs"],  # Alice's persona answers in his room
        "carol": ["admin"],
    }


async def test_users_call_hybrid_search_and_the_policies_helpers_anon_nothing(
    connection: AsyncConnection,
) -> None:
    # hybrid_search runs as its caller; the policies call the helpers of
    # schema private as the caller too, so authenticated must execute them.
    functions = [
        "public.hybrid_search(extensions.vector, text, text, bigint, text, int, "
        "int, int, float8, float8, int, int, float8, int)",
        "private.is_room_member(bigint)",
        "private.is_room_owner(bigint)",
        "private.member_room_ids()",
        "private.is_persona_of_my_room(bigint)",
    ]
    privileges = await connection.execute(
        text(
            "select r.rolname, array_agg(has_function_privilege(r.rolname, f, "
            "'execute') order by f) "
            "from pg_roles r cross join unnest(cast(:functions as text[])) f "
            "where r.rolname in ('anon', 'authenticated', 'service_role') "
            "group by r.rolname order by r.rolname"
        ),
        {"functions": functions},
    )
    everything = [True] * len(functions)
    assert [tuple(row) for row in privileges] == [
        ("anon", [False] * len(functions)),
        ("authenticated", everything),
        ("service_role", everything),
    ]


async def test_the_search_legs_are_for_users_the_word_statistics_are_not(
    connection: AsyncConnection,
) -> None:
    # Users search through hybrid_search, which calls both legs as them (each
    # runs as its owner); the common words are the service's business
    # (service_role keeps Supabase's default rights on tables).
    privileges = await connection.execute(
        text(
            "select r.rolname, "
            "has_function_privilege(r.rolname, :search, 'execute'), "
            "has_function_privilege(r.rolname, :nearest, 'execute'), "
            "has_function_privilege(r.rolname, :many, 'execute'), "
            "has_function_privilege(r.rolname, :refresh, 'execute'), "
            "has_table_privilege(r.rolname, :lexemes, 'select'), "
            "has_table_privilege(r.rolname, :lexemes, 'insert'), "
            "has_table_privilege(r.rolname, :statistics, 'select'), "
            "has_table_privilege(r.rolname, :statistics, 'insert'), "
            "has_function_privilege(r.rolname, :idf, 'execute'), "
            "has_function_privilege(r.rolname, :average, 'execute') "
            "from pg_roles r "
            "where r.rolname in ('anon', 'authenticated', 'service_role') "
            "order by r.rolname"
        ),
        {
            "search": "private.match_document_chunks_text"
            "(text, text, text, bigint, int, int)",
            "nearest": "private.match_document_chunks_vector"
            "(extensions.vector, text, bigint, int)",
            "many": "private.text_query_matches_many(text, text)",
            "refresh": "public.refresh_document_chunk_common_lexemes()",
            "lexemes": "public.document_chunk_common_lexemes",
            "statistics": "public.document_chunk_text_statistics",
            "idf": "private.lexeme_idf(text[])",
            "average": "private.chunk_average_lexemes()",
        },
    )
    assert [tuple(row) for row in privileges] == [
        ("anon", *[False] * 10),
        ("authenticated", True, True, *[False] * 8),
        ("service_role", *[True] * 10),
    ]


async def test_users_write_their_documents_text_not_its_indexing_state(
    connection: AsyncConnection,
) -> None:
    alice = await create_user(connection, "alice-columns@example.com")
    await act_as(connection, alice)
    doc = (
        await connection.execute(
            text(
                "insert into documents (owner_id, title, content) "
                "values (:me, 'Notes', 'first draft') returning id"
            ),
            {"me": alice},
        )
    ).scalar_one()
    await connection.execute(
        text("update documents set title = 'Notes v2', content = 'v2' where id = :id"),
        {"id": doc},
    )
    refused = []
    for statement in (
        "update documents set status = 'ready' where id = :id",
        "update documents set attempts = 0, next_attempt_at = now() where id = :id",
        "update documents set centroid = null, chunk_count = 9 where id = :id",
        "update documents set indexed_hash = content_hash where id = :id",
        "insert into documents (owner_id, title, content, status) "
        "select owner_id, 'x', 'y', 'ready' from documents where id = :id",
    ):
        savepoint = await connection.begin_nested()
        try:
            await connection.execute(text(statement), {"id": doc})
        except Exception as exc:  # noqa: BLE001
            refused.append("permission denied" in str(exc))
        else:
            refused.append(False)
        await savepoint.rollback()
    await as_service(connection)
    row = (
        await connection.execute(
            text("select title, status from documents where id = :id"), {"id": doc}
        )
    ).one()
    assert refused == [True] * 5
    assert tuple(row) == ("Notes v2", "pending")
