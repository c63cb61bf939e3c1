"""Retrieval evaluation: recall@5 and MRR of vector, full-text and hybrid search.

Two corpora, so that nothing is tuned to one (``eval_python_docs.py``,
``eval_postgres_docs.py``): the Python 3.11 library reference and the
PostgreSQL 15 manual, HTML from Debian's ``python3.11-doc`` and
``postgresql-doc-15`` packages (fetched with ``apt-get download`` and unpacked
with ``dpkg-deb -x``, so any Debian/Ubuntu machine with the package archive can
rebuild them). The labelled pages are loaded through the project's own pipeline
(``make ingest``'s loader: HTML -> Markdown-headed text -> chunks -> the offline
embedding model) into one database per corpus on a separate embedded server
(``EMBEDDED_DB_DIR``, default ``/tmp/ragchat-eval-pg``); a second run reuses the
indexed chunks.

Cases, each labelled with the page(s) that answer it; a hit is relevant when
its chunk comes from a labelled page:

- single-turn questions, searched as they are;
- two-turn conversations: a first question, then a follow-up that leans on it
  with a pronoun or an ellipsis ("and write one?"). The follow-up is searched
  three ways: as it is (``none``); with the offline deterministic rewrite
  (``offline``: the question alone and joined with the previous user message,
  fused by reciprocal rank); and with a model's rewrite (``model``:
  ``LLMGateway.standalone_question`` through LangChain and the OpenAI client,
  against a scripted OpenAI-compatible server on 127.0.0.1 that answers each
  follow-up with the standalone question a good model would write:
  ``fake_openai_server.py``'s server, run in this process's event loop).

Usage: ``make eval`` (``--fresh`` rebuilds the databases, ``--corpus`` picks one).
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import eval_postgres_docs
import eval_python_docs
import psycopg
from eval_types import Conversation
from fake_openai_server import Behaviour, FakeOpenAI
from sqlalchemy import text

APP_DIR = Path(__file__).resolve().parents[1] / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.cli.ingest import index_documents, load_files  # noqa: E402
from src.domain.entity.knowledge import RetrievedChunk  # noqa: E402
from src.domain.service.follow_up import fuse_rankings, retrieval_queries  # noqa: E402
from src.gateway.embeddings_gateway import EmbeddingsGateway  # noqa: E402
from src.gateway.llm_gateway import LLMGateway  # noqa: E402
from src.infra.ai_providers import AIProviders, build_ai_providers  # noqa: E402
from src.infra.db_client import Database, create_engine  # noqa: E402
from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.embeddings.minilm import MiniLMEmbeddings  # noqa: E402
from src.infra.migrations import apply_compat_layer, apply_migrations  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.worker.ingestion_worker import IngestionWorker  # noqa: E402

CORPORA: dict[str, ModuleType] = {
    "python": eval_python_docs,
    "postgres": eval_postgres_docs,
}
CACHE = Path(os.environ.get("EVAL_CACHE_DIR", "/tmp/ragchat-eval-corpus"))  # noqa: S108 - a scratch server of its own
K = 5
DEPTH = 10
REWRITES = ("none", "offline", "model")
ANSWER_CHARS = 300


@dataclass
class Search:
    """What one search needs: the database, a caller, the model and settings."""

    database: Database
    claims: dict[str, str]
    embeddings: MiniLMEmbeddings
    pages: dict[int, str]

    async def ranking(
        self, settings: Settings, query: str, vector: Sequence[float]
    ) -> list[RetrievedChunk]:
        async with self.database.user_transaction(self.claims) as session:
            gateway = EmbeddingsGateway(
                self.embeddings, self.embeddings.model_name, settings
            )
            return await gateway.search_with_embedding(
                session,
                query=query,
                embedding=list(vector),
                k=DEPTH,
                chat_room_id=None,
            )


def log(message: str) -> None:
    print(message, flush=True)


def corpus_dir(corpus: ModuleType = eval_python_docs) -> Path:
    """The corpus's HTML pages, downloaded and unpacked on the first run."""
    extracted = CACHE / str(corpus.PACKAGE) / "extracted"
    html = extracted / str(corpus.HTML_DIR)
    if html.is_dir():
        return html
    extracted.mkdir(parents=True, exist_ok=True)
    # Debian's own tools, found on PATH; the arguments are constants.
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {corpus.PACKAGE} with apt-get ...")
        download = ["apt-get", "download", corpus.PACKAGE]
        if subprocess.run(download, cwd=tmp, check=False).returncode != 0:  # noqa: S603
            subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
            subprocess.run(download, cwd=tmp, check=True)  # noqa: S603
        [deb] = Path(tmp).glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)  # noqa: S603, S607
    return html


def labelled_pages(corpus: ModuleType) -> list[str]:
    pages = {page for _, labels in corpus.QUESTIONS for page in labels}
    for conversation in corpus.CONVERSATIONS:
        pages.update(conversation.first_pages, conversation.pages)
    return sorted(pages - set(getattr(corpus, "EXCLUDED", ())))


def evaluation_files(corpus: ModuleType, html: Path) -> list[Path]:
    pages = CACHE / corpus.PACKAGE / "pages"
    pages.mkdir(exist_ok=True)
    files = []
    for page in labelled_pages(corpus):
        target = pages / f"{page}.html"
        if not target.exists():
            shutil.copy(html / f"{page}.html", target)
        files.append(target)
    return files


def prepare_database(name: str, fresh: bool) -> str:
    data_dir = Path(os.environ.get("EMBEDDED_DB_DIR", "/tmp/ragchat-eval-pg"))  # noqa: S108 - a scratch server of its own
    server = start_embedded_postgres(data_dir)
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        if fresh:
            conn.execute(f"drop database if exists {name} with (force)")
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (name,)
        ).fetchone()
        if not exists:
            conn.execute(f"create database {name}")
    apply_compat_layer(server.conninfo(name))
    apply_migrations(server.conninfo(name))
    return server.url(name)


async def evaluator_user(database: Database) -> uuid.UUID:
    async with database.service_transaction() as session:
        result = await session.execute(
            text(
                "insert into auth.users (id, email, aud, role, raw_user_meta_data) "
                "values (gen_random_uuid(), 'eval-' || gen_random_uuid() || "
                "'@example.com', 'authenticated', 'authenticated', '{}') returning id"
            )
        )
        return uuid.UUID(str(result.scalar_one()))


async def page_of_documents(database: Database) -> dict[int, str]:
    async with database.service_transaction() as session:
        rows = await session.execute(
            text("select id, source from documents where owner_id is null")
        )
        return {r.id: Path(r.source).stem for r in rows}


def mode_settings(settings: Settings) -> dict[str, Settings]:
    no_pages = {"retrieval_page_weight": 0.0}
    return {
        "vector": settings.model_copy(update={"retrieval_text_weight": 0.0} | no_pages),
        "full-text": settings.model_copy(
            update={"retrieval_vector_weight": 0.0} | no_pages
        ),
        "hybrid": settings,
    }


def scores(
    ranked_pages: list[list[str]], labels: list[tuple[str, ...]]
) -> dict[str, float]:
    hits_at_k, reciprocal = [], []
    for pages, wanted in zip(ranked_pages, labels, strict=True):
        ranks = [i for i, page in enumerate(pages, 1) if page in wanted]
        first = ranks[0] if ranks else None
        hits_at_k.append(1.0 if first is not None and first <= K else 0.0)
        reciprocal.append(1.0 / first if first is not None else 0.0)
    return {
        f"recall@{K}": round(statistics.mean(hits_at_k), 3),
        f"mrr@{DEPTH}": round(statistics.mean(reciprocal), 3),
    }


async def single_turn(
    search: Search, corpus: ModuleType, settings: Settings
) -> dict[str, dict[str, float]]:
    questions = [q for q, _ in corpus.QUESTIONS]
    vectors = search.embeddings.embed_array(questions)
    report = {}
    for mode, settings_of_mode in mode_settings(settings).items():
        ranked = []
        for question, vector in zip(questions, vectors, strict=True):
            hits = await search.ranking(settings_of_mode, question, vector.tolist())
            ranked.append([search.pages[h.document_id] for h in hits])
        report[mode] = scores(ranked, [labels for _, labels in corpus.QUESTIONS])
    return report


async def histories(
    search: Search, conversations: list[Conversation], settings: Settings
) -> list[list[tuple[str, str]]]:
    """Each conversation's first turn: the question and the start of its top hit."""
    vectors = search.embeddings.embed_array([c.first for c in conversations])
    out = []
    for conversation, vector in zip(conversations, vectors, strict=True):
        hits = await search.ranking(settings, conversation.first, vector.tolist())
        answer = hits[0].content[:ANSWER_CHARS] if hits else "I found nothing."
        out.append([("user", conversation.first), ("assistant", answer)])
    return out


async def follow_up_pages(
    search: Search, settings: Settings, queries: Sequence[str]
) -> list[str]:
    """The pages of the fused ranking of several queries (one query: its own)."""
    vectors = search.embeddings.embed_array(list(queries))
    rankings = [
        await search.ranking(settings, query, vector.tolist())
        for query, vector in zip(queries, vectors, strict=True)
    ]
    by_id = {hit.chunk_id: hit for ranking in rankings for hit in ranking}
    fused = fuse_rankings(
        [[hit.chunk_id for hit in ranking] for ranking in rankings], limit=DEPTH
    )
    return [search.pages[by_id[chunk_id].document_id] for chunk_id in fused]


async def follow_ups(
    search: Search, corpus: ModuleType, settings: Settings, llm: LLMGateway
) -> dict[str, dict[str, dict[str, float]]]:
    conversations: list[Conversation] = corpus.CONVERSATIONS
    turns = await histories(search, conversations, settings)
    queries: dict[str, list[tuple[str, ...]]] = {
        "none": [(c.follow_up,) for c in conversations],
        "offline": [
            retrieval_queries(c.follow_up, history)
            for c, history in zip(conversations, turns, strict=True)
        ],
        "model": [],
    }
    for conversation, history in zip(conversations, turns, strict=True):
        standalone = await llm.standalone_question(conversation.follow_up, history)
        assert standalone == conversation.standalone, standalone
        queries["model"].append((standalone,))
    labels = [c.pages for c in conversations]
    report: dict[str, dict[str, dict[str, float]]] = {}
    for mode, settings_of_mode in mode_settings(settings).items():
        report[mode] = {}
        for rewrite in REWRITES:
            ranked = [
                await follow_up_pages(search, settings_of_mode, q)
                for q in queries[rewrite]
            ]
            report[mode][rewrite] = scores(ranked, labels)
    return report


async def index_corpus(
    database: Database,
    embeddings: MiniLMEmbeddings,
    settings: Settings,
    files: list[Path],
) -> dict[str, Any]:
    summary = await load_files(database, files)
    worker = IngestionWorker(
        database=database,
        embeddings=embeddings,
        embedding_model_name=embeddings.model_name,
        settings=settings,
    )
    await index_documents(worker, database, summary)
    # What a running server has after autovacuum's ANALYZE and the worker's
    # next round: the common words that steer the full-text leg's scans.
    async with database.service_transaction() as session:
        await session.execute(text("analyze document_chunks"))
    await worker.refresh_text_statistics()
    async with database.service_transaction() as session:
        chunks = (
            await session.execute(text("select count(*) from document_chunks"))
        ).scalar_one()
    embedded = summary.embedded
    return {
        "pages": len(files),
        "chunks": chunks,
        "embedded_now": embedded,
        "chunks_per_second": (
            round(embedded / summary.seconds, 1)
            if embedded and summary.seconds
            else None
        ),
    }


async def evaluate_corpus(
    name: str, fresh: bool, embeddings: MiniLMEmbeddings, llm: LLMGateway
) -> dict[str, Any]:
    corpus = CORPORA[name]
    files = evaluation_files(corpus, corpus_dir(corpus))
    url = prepare_database(f"retrieval_eval_{name}", fresh)
    settings = Settings(
        _env_file=None, environment="test", database_url=url, worker_enabled=False
    )
    database = Database(engine=create_engine(url, settings))
    try:
        corpus_facts = await index_corpus(database, embeddings, settings, files)
        log(f"corpus {name}: {corpus.TITLE}, {json.dumps(corpus_facts)}")
        user = await evaluator_user(database)
        search = Search(
            database,
            {"sub": str(user), "role": "authenticated"},
            embeddings,
            await page_of_documents(database),
        )
        return {
            "corpus": corpus_facts,
            "questions": len(corpus.QUESTIONS),
            "conversations": len(corpus.CONVERSATIONS),
            "single": await single_turn(search, corpus, settings),
            "follow_up": await follow_ups(search, corpus, settings, llm),
        }
    finally:
        await database.dispose()


def scripted_model(base_url: str) -> AIProviders:
    settings = Settings(
        _env_file=None,
        environment="test",
        openai_api_key="sk-eval-scripted",
        openai_base_url=base_url,
        openai_chat_model="scripted-rewriter",
        llm_max_retries=0,
        langsmith_tracing=False,
    )
    return build_ai_providers(settings)


def print_report(name: str, report: dict[str, Any]) -> None:
    log(f"\n{name}: {report['questions']} single-turn questions")
    log(f"{'mode':<10} {'recall@5':>9} {'MRR@10':>8}")
    for mode, s in report["single"].items():
        log(f"{mode:<10} {s['recall@5']:>9.3f} {s['mrr@10']:>8.3f}")
    log(f"{name}: {report['conversations']} follow-ups")
    log(f"{'mode':<10} {'rewrite':<8} {'recall@5':>9} {'MRR@10':>8}")
    for mode, by_rewrite in report["follow_up"].items():
        for rewrite, s in by_rewrite.items():
            log(f"{mode:<10} {rewrite:<8} {s['recall@5']:>9.3f} {s['mrr@10']:>8.3f}")


async def run(corpora: list[str], fresh: bool) -> None:
    embeddings = MiniLMEmbeddings()
    script = {
        c.follow_up: c.standalone
        for corpus in CORPORA.values()
        for c in corpus.CONVERSATIONS
    }
    # Only non-streamed chat: the stream's timings do not matter.
    behaviour = Behaviour(tokens=1, first_token_s=0.0, stream_s=0.0, answer_s=0.0)
    fake = FakeOpenAI(behaviour, script)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    providers = scripted_model(f"http://127.0.0.1:{port}/v1")
    try:
        llm = LLMGateway(providers.chat)
        results = {
            name: await evaluate_corpus(name, fresh, embeddings, llm)
            for name in corpora
        }
    finally:
        await providers.aclose()
        server.close()
        await fake.close_connections()
        await server.wait_closed()
    log(f"\nembedding model: {embeddings.model_name}; relevant = a labelled page")
    for name, report in results.items():
        print_report(name, report)
    log("RESULTS " + json.dumps({"model": embeddings.model_name, **results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild the databases")
    parser.add_argument(
        "--corpus", choices=sorted(CORPORA), action="append", help="default: all"
    )
    arguments = parser.parse_args()
    asyncio.run(run(arguments.corpus or list(CORPORA), arguments.fresh))


if __name__ == "__main__":
    main()
