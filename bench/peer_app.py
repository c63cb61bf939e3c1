"""The peer of the streaming benchmark: the RAG chat a LangChain user would write.

Built the way the LangChain documentation shows it, with no tuning of ours:
FastAPI; ``langchain-postgres``'s ``PGVectorStore`` (hybrid search: pgvector
plus a ``tsvector`` column fused by reciprocal rank) over a table of the same
chunks as the backend's knowledge base; ``PostgresChatMessageHistory`` for the
conversation (one session per room); ``ChatOpenAI`` and ``OpenAIEmbeddings``
(``check_embedding_ctx_length=False``: tiktoken would download its files);
streaming as server-sent events; the same Supabase JWT check (PyJWT, HS256,
audience ``authenticated``). Library defaults for the pools (SQLAlchemy's 5 + 10
for the vector store, psycopg's 4 for the history).

Routes: ``GET /health``, ``POST /api/chat`` and ``POST /api/chat/stream`` with
``{"message", "session_id"}``; the stream sends ``token`` events (``{"delta"}``),
then ``done`` or one ``error``, as the backend's does.

Served by ``bench/streaming_bench.py`` with
``uvicorn peer_app:create_peer_app --factory --app-dir bench``, configured by
``PEER_DATABASE_URL`` (a libpq URL), ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``
and ``SUPABASE_JWT_SECRET``. Not part of the backend: only the bench imports it.
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_postgres import PGEngine, PGVectorStore, PostgresChatMessageHistory
from langchain_postgres.v2.hybrid_search_config import (
    HybridSearchConfig,
    reciprocal_rank_fusion,
)
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import create_async_engine

CHUNKS_TABLE = "peer_chunks"
HISTORY_TABLE = "peer_chat_history"
APPLICATION_NAME = "bench-peer"
# The Supabase-like database keeps pgvector in the "extensions" schema.
CONNECT_OPTIONS = "-c search_path=public,extensions"
CANDIDATES = 40
K = 5
HISTORY_MESSAGES = 10
SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer from the provided context and cite "
    "sources as [n]; say so when the context does not contain the answer."
)


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    session_id: str


@dataclass(frozen=True)
class Peer:
    """What the lifespan builds once."""

    store: PGVectorStore
    history_pool: AsyncConnectionPool
    chat: ChatOpenAI
    search: HybridSearchConfig
    jwt_secret: str


def hybrid_search_config() -> HybridSearchConfig:
    return HybridSearchConfig(
        tsv_column="content_tsv",
        tsv_lang="pg_catalog.english",
        fusion_function=reciprocal_rank_fusion,
        primary_top_k=CANDIDATES,
        secondary_top_k=CANDIDATES,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["PEER_DATABASE_URL"]
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={
            "application_name": APPLICATION_NAME,
            "options": CONNECT_OPTIONS,
        },
    )
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small", dimensions=384, check_embedding_ctx_length=False
    )
    store = await PGVectorStore.create(
        PGEngine.from_engine(engine),
        table_name=CHUNKS_TABLE,
        embedding_service=embeddings,
        metadata_json_column="langchain_metadata",
        hybrid_search_config=hybrid_search_config(),
    )
    pool = AsyncConnectionPool(
        url,
        kwargs={"application_name": APPLICATION_NAME, "autocommit": True},
        open=False,
    )
    await pool.open()
    app.state.peer = Peer(
        store=store,
        history_pool=pool,
        chat=ChatOpenAI(model="gpt-4o-mini", temperature=0.3, stream_usage=True),
        search=hybrid_search_config(),
        jwt_secret=os.environ["SUPABASE_JWT_SECRET"],
    )
    try:
        yield
    finally:
        await pool.close()
        await engine.dispose()


def get_peer(request: Request) -> Peer:
    peer: Peer = request.app.state.peer
    return peer


PeerDep = Annotated[Peer, Depends(get_peer)]


def current_user(request: Request, peer: PeerDep) -> str:
    """The caller's id from a verified Supabase access token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token")
    try:
        claims = jwt.decode(
            token, peer.jwt_secret, algorithms=["HS256"], audience="authenticated"
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(401, "invalid token") from exc
    return str(claims["sub"])


UserDep = Annotated[str, Depends(current_user)]


async def retrieve(peer: Peer, question: str) -> list[Document]:
    # langchain-postgres 0.0.19 writes the query into the config it is given:
    # one copy per call, or concurrent requests would search each other's text.
    config = replace(peer.search, fusion_function_parameters={})
    return await peer.store.asimilarity_search(
        question, k=K, hybrid_search_config=config
    )


async def past_messages(peer: Peer, session_id: str) -> list[BaseMessage]:
    async with peer.history_pool.connection() as conn:
        history = PostgresChatMessageHistory(
            HISTORY_TABLE, session_id, async_connection=conn
        )
        messages = await history.aget_messages()
    return messages[-HISTORY_MESSAGES:]


async def remember(peer: Peer, session_id: str, question: str, answer: str) -> None:
    async with peer.history_pool.connection() as conn:
        history = PostgresChatMessageHistory(
            HISTORY_TABLE, session_id, async_connection=conn
        )
        await history.aadd_messages([HumanMessage(question), AIMessage(answer)])


async def prompt(peer: Peer, body: ChatBody) -> tuple[list[BaseMessage], list[str]]:
    documents = await retrieve(peer, body.message)
    history = await past_messages(peer, body.session_id)
    context = "\n\n".join(
        f"[{n}] {doc.page_content}" for n, doc in enumerate(documents, 1)
    )
    messages: list[BaseMessage] = [
        SystemMessage(f"{SYSTEM_PROMPT}\n\nContext:\n{context}"),
        *history,
        HumanMessage(body.message),
    ]
    return messages, [doc.page_content[:80] for doc in documents]


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def answer_events(
    peer: Peer, body: ChatBody, messages: list[BaseMessage], sources: list[str]
) -> AsyncIterator[str]:
    """The stream: sources, tokens, then done (the exchange saved) or error."""
    yield sse("sources", {"sources": sources})
    parts: list[str] = []
    try:
        async for chunk in peer.chat.astream(messages):
            if text := str(chunk.text):
                parts.append(text)
                yield sse("token", {"delta": text})
        answer = "".join(parts)
        await remember(peer, body.session_id, body.message, answer)
    except Exception as exc:  # noqa: BLE001 - the stream's last event
        yield sse("error", {"code": type(exc).__name__, "message": str(exc)})
        return
    yield sse("done", {"ai_response": answer})


router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/api/chat")
async def chat(body: ChatBody, user: UserDep, peer: PeerDep) -> dict[str, Any]:
    del user
    messages, sources = await prompt(peer, body)
    answer = await peer.chat.ainvoke(messages)
    await remember(peer, body.session_id, body.message, str(answer.text))
    return {"ai_response": answer.text, "sources": sources}


@router.post("/api/chat/stream")
async def chat_stream(
    body: ChatBody, user: UserDep, peer: PeerDep
) -> StreamingResponse:
    del user
    messages, sources = await prompt(peer, body)
    return StreamingResponse(
        answer_events(peer, body, messages, sources), media_type="text/event-stream"
    )


def create_peer_app() -> FastAPI:
    app = FastAPI(title="LangChain peer", lifespan=lifespan)
    app.include_router(router)
    return app
