"""Knowledge benchmarks: ingestion throughput, hybrid search latency, recall.

Runs against its own embedded PostgreSQL (``EMBEDDED_DB_DIR``, default
``/tmp/ragchat-bench-pg``) in a fresh database, never the development one.

Data: real text and real embeddings. The Python 3.11 documentation (Debian's
``python3.11-doc``, fetched like ``make eval`` does) is cut into 12-word
windows; each bench chunk is the ~1,000 characters around one window (so
common words match a large share of chunks, as in real chunks) and its vector
is the offline MiniLM embedding of that window (embedding 100,000 short texts
takes minutes; 100,000 full 1,000-character chunks would take over an hour). 10% of the
documents are private to another user, so every search also filters. The
server runs with ``shared_buffers = 1GB`` and the tables prewarmed: the steady
state of a server that has been answering queries (the default 128 MB holds
less than the 200 MB HNSW index).

Measured:
  * ingestion into the live HNSW index through the worker's own write path
    (``DocumentIndexGateway.replace_chunks``: COPY + mark ready), embedding
    excluded, with 1 and 2 parallel writers;
  * ingestion with the offline embedding included (``IngestionWorker``);
  * hybrid search latency p50/p99 at 100,000 chunks through
    ``EmbeddingsGateway`` as a signed-in user (row-level security on), for
    ordinary and common-word queries, the full-text leg alone for the same
    queries, and an unbounded ``ts_rank`` for comparison;
  * recall@5 of the vector leg against exact (brute-force) search.

Usage: ``make bench-knowledge`` (``BENCH_CHUNKS=20000`` for a quicker run;
``--search-only`` re-measures search and recall on the last run's data, after
applying any new migration to it). Settings come from the environment as in
the app (e.g. ``HNSW_EF_SEARCH=48``, ``RETRIEVAL_TEXT_SCAN_LIMIT=100``).
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import text

APP_DIR = Path(__file__).resolve().parents[1] / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.domain.service.chunking import (  # noqa: E402
    Chunk,
    chunk_text,
    embedding_text,
)
from src.domain.service.document_parsing import (  # noqa: E402
    ParsedDocument,
    parse_document,
)
from src.gateway.document_index_gateway import (  # noqa: E402
    DocumentIndexGateway,
    EmbeddedChunk,
)
from src.gateway.embeddings_gateway import (  # noqa: E402
    EmbeddingsGateway,
    full_text_query,
    vector_literal,
)
from src.infra.db_client import Database, create_engine  # noqa: E402
from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.embeddings.minilm import MiniLMEmbeddings  # noqa: E402
from src.infra.migrations import apply_compat_layer, apply_migrations  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.worker.ingestion_worker import IngestionWorker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval_eval import corpus_dir  # noqa: E402

DB_NAME = "knowledge_bench"
WINDOW = 12
CHUNKS = int(os.environ.get("BENCH_CHUNKS", "100000"))
CHUNKS_PER_DOC = 100
LIVE_CHUNKS_PER_WRITER = 1500
QUERIES = 200
RECALL_QUERIES = 200
SEED = 20261122
MODEL = "all-MiniLM-L6-v2-int8"
HNSW_INDEX = (
    "create index document_chunks_embedding_hnsw_idx on public.document_chunks "
    "using hnsw (embedding extensions.vector_cosine_ops)"
)


def log(message: str) -> None:
    print(message, flush=True)


def corpus_windows(pages: list[ParsedDocument], limit: int) -> list[tuple[str, str]]:
    """(16-word window, ~1,000-character context) pairs, shuffled."""
    pairs = []
    for page in pages:
        words = page.content.split()
        for start in range(0, max(len(words) - WINDOW, 0), WINDOW // 2):
            window = " ".join(words[start : start + WINDOW])
            context = " ".join(words[max(start - 60, 0) : start + 100])[:1000]
            pairs.append((window, context))
    random.Random(SEED).shuffle(pairs)
    return pairs[:limit]


def documentation_pages() -> list[ParsedDocument]:
    """Every HTML page of the Python documentation, parsed like an upload."""
    root = corpus_dir().parent
    return [
        parse_document(path.name, path.read_bytes())
        for path in sorted(root.rglob("*.html"))
        if path.stat().st_size > 2000
    ]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def fmt_ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.2f} ms, p99 {percentile(values, 99):.2f} ms"
        f" (n={len(values)})"
    )


class Bench:
    def __init__(self, *, fresh: bool) -> None:
        data_dir = Path(os.environ.get("EMBEDDED_DB_DIR", "/tmp/ragchat-bench-pg"))  # noqa: S108 - a scratch server of its own
        server = start_embedded_postgres(data_dir)
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            restart = conn.execute("show shared_buffers").fetchone() != ("1GB",)
            conn.execute("alter system set shared_buffers = '1GB'")
        if restart:
            server.stop()
            server = start_embedded_postgres(data_dir)
        self.server = server
        self.conninfo = self.server.conninfo(DB_NAME)
        if fresh:
            with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
                conn.execute(f"drop database if exists {DB_NAME} with (force)")
                conn.execute(f"create database {DB_NAME}")
            apply_compat_layer(self.conninfo)
        # On the last run's data too: search uses the newest SQL functions.
        apply_migrations(self.conninfo)
        self.settings = Settings(
            _env_file=None,
            environment="test",
            database_url=self.server.url(DB_NAME),
            worker_enabled=False,
            log_level="WARNING",
            db_statement_timeout_ms=0,
        )
        assert self.settings.database_url
        self.database = Database(
            engine=create_engine(self.settings.database_url, self.settings)
        )
        self.embeddings = MiniLMEmbeddings()
        self.rng = np.random.default_rng(SEED)
        self.results: dict[str, Any] = {"chunks": CHUNKS}

    # -- data ---------------------------------------------------------------
    def build_corpus(self) -> None:
        self.pages = documentation_pages()
        pairs = corpus_windows(self.pages, CHUNKS + RECALL_QUERIES)
        log(f"corpus: {len(self.pages)} documentation pages, {len(pairs)} windows")
        self.windows = [w for w, _ in pairs]
        self.contexts = [c for _, c in pairs]
        started = time.perf_counter()
        # Batches of similar length waste no time on padding.
        order = np.argsort([len(w) for w in self.windows])
        vectors = self.embeddings.embed_array([self.windows[i] for i in order])
        self.all_vectors = np.empty_like(vectors)
        self.all_vectors[order] = vectors
        seconds = time.perf_counter() - started
        rate = len(self.windows) / seconds
        self.results["embedding_12_word_windows_per_s"] = round(rate, 1)
        log(f"embedded {len(self.windows)} windows in {seconds:.0f} s ({rate:.0f}/s)")

    def settle(self) -> None:
        """Vacuum (empties the GIN pending list), analyze, and prewarm.

        Then copy the common words as the ingestion worker does after each
        round (``refresh_document_chunk_common_lexemes``): the full-text leg
        reads them to plan queries of common words for themselves.
        """
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("vacuum analyze documents, document_chunks")
            conn.execute("select public.refresh_document_chunk_common_lexemes()")
            conn.execute("create extension if not exists pg_prewarm")
            conn.execute(
                "select pg_prewarm(c.oid) from pg_class c join pg_namespace n on "
                "n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in "
                "('r', 'i') union all select pg_prewarm(reltoastrelid) from pg_class "
                "where relname = 'document_chunks'"
            )

    def hold_out_queries(self) -> None:
        self.query_texts = self.windows[CHUNKS:]
        self.recall_vectors = self.all_vectors[CHUNKS : CHUNKS + RECALL_QUERIES]

    def load_existing(self) -> None:
        """Reuse the chunks of an earlier run (``--search-only``)."""
        with psycopg.connect(self.conninfo) as conn:
            rows = conn.execute(
                "select c.id, c.embedding::text, c.content, d.owner_id "
                "from document_chunks c join documents d on d.id = c.document_id "
                "order by c.document_id, c.chunk_index"
            ).fetchall()
            self.stranger = next(r[3] for r in rows if r[3] is not None)
            owner = conn.execute(
                "select id from auth.users where id <> %s", (self.stranger,)
            ).fetchone()
            assert owner is not None, "the last run's users are gone"
            self.owner = owner[0]
        self.chunk_ids = np.array([r[0] for r in rows])
        # What --ingest-only writes again: the stored texts and vectors.
        self.contexts = [r[2] for r in rows]
        self.vectors = np.array(
            [np.fromstring(r[1][1:-1], sep=",") for r in rows], dtype=np.float32
        )
        self.all_vectors = self.vectors
        self.visible = np.array([r[3] is None for r in rows])
        self.results["chunks"] = len(rows)
        picks = random.Random(SEED).sample(range(len(rows)), RECALL_QUERIES)
        self.query_texts = [" ".join(rows[i][2].split()[:12]) for i in picks]
        self.recall_vectors = self.embeddings.embed_array(self.query_texts)
        log(f"reusing {len(rows)} chunks of the last run")

    def sample_rows(self, count: int) -> tuple[list[str], np.ndarray]:
        rows = self.rng.integers(0, min(CHUNKS, len(self.contexts)), size=count)
        return [self.contexts[i] for i in rows], self.all_vectors[rows]

    def bulk_load(self) -> None:
        """100k chunks via COPY, then the HNSW index built once."""
        self.owner = uuid.uuid4()
        self.stranger = uuid.uuid4()
        texts, vectors = self.contexts[:CHUNKS], self.all_vectors[:CHUNKS]
        self.vectors = vectors
        docs = CHUNKS // CHUNKS_PER_DOC
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            for user in (self.owner, self.stranger):
                conn.execute(
                    "insert into auth.users (id, email, aud, role, raw_user_meta_data)"
                    " values (%s, %s, 'authenticated', 'authenticated', '{}')",
                    (user, f"{user.hex[:8]}@bench.example"),
                )
            conn.execute("drop index public.document_chunks_embedding_hnsw_idx")
            with conn.cursor() as cur:
                cur.execute(
                    "insert into documents (owner_id, title, content, status, "
                    "embedding_model, chunk_count) select case when g %% 10 = 0 "
                    "then %s::uuid end, 'bench ' || g, 'bench ' || g, 'ready', %s, "
                    "%s from generate_series(1, %s) g",
                    (self.stranger, MODEL, CHUNKS_PER_DOC, docs),
                )
                ids = [
                    r[0] for r in cur.execute("select id from documents order by id")
                ]
            self.private_docs = {d for i, d in enumerate(ids, 1) if i % 10 == 0}
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(
                    "copy document_chunks (document_id, chunk_index, content, "
                    "token_count, embedding, embedding_model) from stdin"
                ) as copy,
            ):
                for i, (content, vector) in enumerate(zip(texts, vectors, strict=True)):
                    doc = ids[i // CHUNKS_PER_DOC]
                    literal = "[" + ",".join(map(str, vector.tolist())) + "]"
                    copy.write_row(
                        (doc, i % CHUNKS_PER_DOC, content, 200, literal, MODEL)
                    )
            copied = time.perf_counter() - started
            conn.execute("set maintenance_work_mem = '1GB'")
            started = time.perf_counter()
            conn.execute(HNSW_INDEX)
            built = time.perf_counter() - started
            self.chunk_ids = np.array(
                [
                    r[0]
                    for r in conn.execute(
                        "select id from document_chunks order by document_id, "
                        "chunk_index"
                    )
                ]
            )
            doc_of_chunk = np.array(ids)[np.arange(CHUNKS) // CHUNKS_PER_DOC]
            self.visible = ~np.isin(doc_of_chunk, list(self.private_docs))
        self.results["bulk_copy_rows_per_s"] = round(CHUNKS / copied)
        self.results["hnsw_build_s"] = round(built, 1)
        log(
            f"bulk: {CHUNKS} chunks copied at {CHUNKS / copied:.0f} rows/s (no vector"
            f" index); HNSW built in {built:.1f} s"
        )

    # -- ingestion ----------------------------------------------------------
    async def new_claims(self, count: int) -> list[Any]:
        claims = []
        async with self.database.service_transaction() as session:
            await session.execute(
                text(
                    "insert into documents (title, content) select 'live ' || g || "
                    "' ' || :tag, 'live ' || g || ' ' || :tag "
                    "from generate_series(1, :n) g"
                ),
                {"n": count, "tag": uuid.uuid4().hex},
            )
        for _ in range(count):
            async with self.database.service_transaction() as session:
                claim = await DocumentIndexGateway(session).claim_next(
                    lease_s=600, max_attempts=5
                )
            claims.append(claim)
        return claims

    def embedded_batch(self, count: int) -> list[EmbeddedChunk]:
        texts, vectors = self.sample_rows(count)
        return [
            EmbeddedChunk(Chunk(i, t, "", 200), vector_literal(v))
            for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
        ]

    async def write_documents(self, claims: list[Any], per_doc: int) -> float:
        batches = [self.embedded_batch(per_doc) for _ in claims]
        started = time.perf_counter()
        for claim, batch in zip(claims, batches, strict=True):
            async with self.database.service_transaction() as session:
                ok = await DocumentIndexGateway(session).replace_chunks(
                    claim, batch, model=MODEL, ts_config="english"
                )
                assert ok
        return time.perf_counter() - started

    async def live_ingestion(self) -> None:
        per_doc = 100
        docs = LIVE_CHUNKS_PER_WRITER // per_doc
        for writers in (1, 2):
            claims = await self.new_claims(docs * writers)
            groups = [claims[i::writers] for i in range(writers)]
            started = time.perf_counter()
            seconds = await asyncio.gather(
                *(self.write_documents(g, per_doc) for g in groups)
            )
            wall = time.perf_counter() - started
            total = docs * writers * per_doc
            per_writer = [docs * per_doc / s for s in seconds]
            self.results[f"live_index_{writers}_writer"] = {
                "chunks_per_s_total": round(total / wall),
                "chunks_per_s_per_writer": round(statistics.mean(per_writer)),
            }
            log(
                f"live HNSW ingestion, embedding excluded, {writers} writer(s): "
                f"{total / wall:.0f} chunks/s total, "
                f"{statistics.mean(per_writer):.0f} chunks/s per writer"
            )

    async def ingestion_with_embedding(self) -> None:
        documents = [page.content[:12000] for page in self.pages[100:125]]
        chunks = [
            embedding_text(c)
            for d in documents
            for c in chunk_text(
                d,
                chunk_size=self.settings.chunk_size,
                chunk_overlap=self.settings.chunk_overlap,
            )
        ]
        started = time.perf_counter()
        self.embeddings.embed_array(chunks)
        model_rate = len(chunks) / (time.perf_counter() - started)
        async with self.database.service_transaction() as session:
            for i, content in enumerate(documents):
                await session.execute(
                    text("insert into documents (title, content) values (:t, :c)"),
                    {"t": f"embedded {i}", "c": content},
                )
        worker = IngestionWorker(
            database=self.database,
            embeddings=self.embeddings,
            embedding_model_name=MODEL,
            settings=self.settings,
        )
        started = time.perf_counter()
        results = await worker.drain()
        seconds = time.perf_counter() - started
        written = sum(r.chunk_count for r in results)
        assert all(r.outcome == "ready" for r in results), results
        self.results["with_embedding_chunks_per_s"] = round(written / seconds, 1)
        self.results["embedding_only_chunks_per_s"] = round(model_rate, 1)
        log(
            f"ingestion with offline embedding: {len(results)} documents, {written}"
            f" chunks in {seconds:.1f} s = {written / seconds:.1f} chunks/s "
            f"(the model alone on the same chunks: {model_rate:.1f} chunks/s)"
        )

    # -- search -------------------------------------------------------------
    async def common_words(self) -> list[tuple[str, float]]:
        async with self.database.service_transaction() as session:
            rows = await session.execute(
                text(
                    "select word, ndoc from ts_stat('select fts from "
                    "document_chunks where id % 20 = 0') order by ndoc desc limit 12"
                )
            )
            sample = (
                await session.execute(
                    text("select count(*) from document_chunks where id % 20 = 0")
                )
            ).scalar_one()
        return [(r.word, r.ndoc / sample) for r in rows]

    async def timed_searches(
        self, queries: list[tuple[str, np.ndarray]], settings: Settings
    ) -> list[float]:
        claims = {"sub": str(self.owner), "role": "authenticated"}
        timings = []
        for query, vector in queries:
            async with self.database.user_transaction(claims) as session:
                gateway = EmbeddingsGateway(self.embeddings, MODEL, settings)
                started = time.perf_counter()
                hits = await gateway.search_with_embedding(
                    session,
                    query=query,
                    embedding=vector.tolist(),
                    k=5,
                    chat_room_id=None,
                )
                timings.append((time.perf_counter() - started) * 1000)
                assert hits
        return timings

    async def search_latency(self) -> None:
        common = await self.common_words()
        self.results["common_words"] = {w: round(f, 3) for w, f in common}
        log(
            "most common words (share of chunks): "
            + ", ".join(f"{w} {f:.0%}" for w, f in common[:8])
        )
        rng = random.Random(SEED)
        ordinary = [" ".join(t.split()[:8]) for t in self.query_texts[:QUERIES]]
        words = [w for w, _ in common]
        common_queries = [
            " ".join(rng.sample(words, rng.choice([1, 2, 2, 3]))) for _ in range(100)
        ]
        started = time.perf_counter()
        vectors = self.embeddings.embed_array(ordinary + common_queries)
        embed_ms = (time.perf_counter() - started) * 1000 / len(vectors)
        ordinary_q = list(zip(ordinary, vectors[:QUERIES], strict=True))
        common_q = list(zip(common_queries, vectors[QUERIES:], strict=True))
        await self.timed_searches(ordinary_q[:30], self.settings)  # warm-up
        for name, queries in (("ordinary", ordinary_q), ("common_words", common_q)):
            timings = await self.timed_searches(queries, self.settings)
            self.results[f"hybrid_{name}_ms"] = {
                "p50": round(percentile(timings, 50), 2),
                "p99": round(percentile(timings, 99), 2),
            }
            log(f"hybrid search, {name} queries, k=5: {fmt_ms(timings)}")
        self.results["query_embedding_ms"] = round(embed_ms, 1)
        log(f"query embedding (MiniLM, batched): {embed_ms:.1f} ms per query")
        await self.text_leg_latency(ordinary, common_queries)
        await self.unbounded_text_rank(common_queries[:30])

    async def text_leg_latency(self, ordinary: list[str], common: list[str]) -> None:
        """The full-text leg alone (``private.match_document_chunks_text``)."""
        claims = {"sub": str(self.owner), "role": "authenticated"}
        settings = self.settings
        statement = text(
            "select chunk_id from private.match_document_chunks_text(:q, "
            "cast(:config as text), :model, null, :scan_limit, :candidates)"
        )
        for name, queries in (("ordinary", ordinary), ("common_words", common)):
            timings = []
            for query in queries:
                async with self.database.user_transaction(claims) as session:
                    started = time.perf_counter()
                    await session.execute(
                        statement,
                        {
                            "q": full_text_query(query),
                            "config": settings.text_search_config,
                            "model": MODEL,
                            "scan_limit": settings.retrieval_text_scan_limit,
                            "candidates": settings.retrieval_text_candidates,
                        },
                    )
                    timings.append((time.perf_counter() - started) * 1000)
            self.results[f"text_leg_{name}_ms"] = {
                "p50": round(percentile(timings, 50), 2),
                "p99": round(percentile(timings, 99), 2),
            }
            log(f"full-text leg alone, {name} queries: {fmt_ms(timings)}")

    async def unbounded_text_rank(self, queries: list[str]) -> None:
        """The naive full-text ranking the bound replaces, for comparison."""
        timings = []
        async with self.database.service_transaction() as session:
            for query in queries:
                started = time.perf_counter()
                await session.execute(
                    text(
                        "select id from document_chunks, websearch_to_tsquery("
                        "'english', :q) q where fts @@ q "
                        "order by ts_rank_cd(fts, q) desc limit 40"
                    ),
                    {"q": query},
                )
                timings.append((time.perf_counter() - started) * 1000)
        self.results["unbounded_ts_rank_common_ms"] = {
            "p50": round(percentile(timings, 50), 2)
        }
        log(f"unbounded ts_rank over all matches, common words: {fmt_ms(timings)}")

    # -- recall -------------------------------------------------------------
    async def vector_leg(self, vector: np.ndarray, ef_search: int) -> list[int]:
        claims = {"sub": str(self.owner), "role": "authenticated"}
        async with self.database.user_transaction(claims) as session:
            await session.execute(
                text(
                    "select set_config('hnsw.ef_search', :ef, true), "
                    "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
                ),
                {"ef": str(ef_search)},
            )
            rows = await session.execute(
                text(
                    "select c.id from document_chunks c join documents d "
                    "on d.id = c.document_id where c.embedding_model = :m "
                    "and d.status = 'ready' and (d.visibility = 'shared' or "
                    "(d.visibility = 'private' and d.owner_id = auth.uid())) "
                    "order by c.embedding <=> cast(:v as extensions.vector) limit 5"
                ),
                {"m": MODEL, "v": vector_literal(vector.tolist())},
            )
            return [r.id for r in rows]

    async def recall(self) -> None:
        """Found / 5, a hit being any chunk as near as the exact 5th neighbour.

        The documentation repeats itself (boilerplate, overlapping windows), so
        many vectors are exact duplicates; comparing ids would count a tie won
        by a different duplicate as a miss.
        """
        queries = self.recall_vectors
        visible_vectors = self.vectors[self.visible]
        row_of = {int(c): i for i, c in enumerate(self.chunk_ids)}
        fifth = [np.sort(1.0 - visible_vectors @ q)[4] for q in queries]
        sweep = {}
        for ef in sorted({20, 40, 80, self.settings.hnsw_ef_search}):
            found = [await self.vector_leg(q, ef) for q in queries]
            recall = statistics.mean(
                sum(1.0 - float(self.vectors[row_of[c]] @ q) <= kth + 1e-5 for c in ids)
                / 5
                for q, kth, ids in zip(queries, fifth, found, strict=True)
            )
            sweep[ef] = round(recall, 3)
            log(f"vector leg recall@5 vs exact, ef_search={ef}: {recall:.3f}")
        self.results["vector_recall_at_5"] = sweep

    async def run(self, *, search_only: bool, ingest_only: bool = False) -> None:
        if ingest_only:
            self.load_existing()
            self.settle()
            await self.live_ingestion()
            log("RESULTS " + json.dumps(self.results))
            await self.database.dispose()
            return
        if search_only:
            self.load_existing()
        else:
            self.build_corpus()
            self.hold_out_queries()
            self.bulk_load()
        self.settle()
        await self.search_latency()
        await self.recall()
        if not search_only:
            await self.live_ingestion()
            await self.ingestion_with_embedding()
        log("RESULTS " + json.dumps(self.results))
        await self.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="reuse the last run's 100,000 chunks; measure search and recall only",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="reuse the last run's chunks; measure writes into the live index only",
    )
    args = parser.parse_args()
    reuse = args.search_only or args.ingest_only
    asyncio.run(
        Bench(fresh=not reuse).run(
            search_only=args.search_only, ingest_only=args.ingest_only
        )
    )


if __name__ == "__main__":
    main()
