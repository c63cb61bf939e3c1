"""Follow-up questions are searched as standalone questions, offline and with a model.

"What is the capital of Zorbania?" then "And what do people eat there?": the
second question names nothing, so it is searched with its subject.
"""

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from src.domain.entity.chat import ChatRequest
from src.gateway.llm_gateway import LLMGateway
from src.infra.ai_providers import AIProviders
from src.infra.db_client import Database
from src.settings import Settings
from tests.ai.conftest import (  # noqa: F401 - fixtures
    BuildProviders,
    build_openai,
    fake_openai,
    fake_openai_server,
)
from tests.chat.conftest import ScriptedLLM, add_shared_document, chat_use_case
from tests.support.fake_openai import FakeOpenAI

CAPITAL = "What is the capital of Zorbania?"
FOOD = "And what do people eat there?"
STANDALONE = "What do people eat in Zorbania?"


async def zorbania(
    connection: AsyncConnection,
    database: Database,
    ai: AIProviders,
    settings: Settings,
) -> int:
    """Two shared documents; returns the id of the one about food."""
    await add_shared_document(
        connection,
        database,
        ai,
        settings,
        title="Zorbania",
        content="The capital of Zorbania is Zorbport, a harbour city.",
    )
    return await add_shared_document(
        connection,
        database,
        ai,
        settings,
        title="Zorbanian cuisine",
        content="In Zorbania people eat blorf stew with barley bread.",
    )


async def test_offline_a_follow_up_is_also_searched_with_its_subject(
    database: Database,
    connection: AsyncConnection,
    user: uuid.UUID,
    ai_providers: AIProviders,
    settings: Settings,
) -> None:
    food = await zorbania(connection, database, ai_providers, settings)
    use_case = chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings
    )
    first = await use_case.execute(ChatRequest(message=CAPITAL))
    turn = await use_case.ask(
        ChatRequest(message=FOOD, chat_room_id=first.chat_room_id)
    )

    assert turn.retrieval.searched == (FOOD, f"{CAPITAL} {FOOD}")
    assert food in [chunk.document_id for chunk in turn.sources()]


async def test_a_rooms_first_question_is_searched_as_asked(
    database: Database, user: uuid.UUID, ai_providers: AIProviders, settings: Settings
) -> None:
    use_case = chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings
    )
    turn = await use_case.ask(ChatRequest(message=CAPITAL))
    assert turn.retrieval.searched == (CAPITAL,)


async def test_with_a_model_the_follow_up_is_rewritten_and_the_answer_says_so(
    database: Database,
    connection: AsyncConnection,
    user: uuid.UUID,
    ai_providers: AIProviders,
    settings: Settings,
    fake_openai: FakeOpenAI,  # noqa: F811 - fixture
    build_openai: BuildProviders,  # noqa: F811 - fixture
) -> None:
    food = await zorbania(connection, database, ai_providers, settings)
    fake_openai.script[FOOD] = STANDALONE
    llm = LLMGateway(build_openai().chat)
    offline = chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings
    )
    first = await offline.execute(ChatRequest(message=CAPITAL))
    use_case = chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings, llm=llm
    )

    answer = await use_case.execute(
        ChatRequest(message=FOOD, chat_room_id=first.chat_room_id)
    )

    assert answer.sources[0].document_id == food
    metadata = await connection.scalar(
        text("select metadata from messages where id = :id"),
        {"id": answer.ai_message_id},
    )
    assert metadata["searched"] == [STANDALONE]


async def test_a_scripted_model_that_does_not_rewrite_searches_the_question(
    database: Database, user: uuid.UUID, ai_providers: AIProviders, settings: Settings
) -> None:
    llm = ScriptedLLM()
    use_case = chat_use_case(
        database=database, user_id=user, ai=ai_providers, settings=settings, llm=llm
    )
    first = await use_case.execute(ChatRequest(message=CAPITAL))
    turn = await use_case.ask(
        ChatRequest(message=FOOD, chat_room_id=first.chat_room_id)
    )
    assert len(turn.retrieval.searched) == 2
