"""Retrieval evaluation: recall@5 and MRR of vector, full-text and hybrid search.

Corpus: the Python 3.11 library reference, HTML from Debian's
``python3.11-doc`` package (fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x``, so any Debian/Ubuntu machine with the package archive can
rebuild it). 58 module pages are loaded through the project's own pipeline
(``make ingest``'s loader: HTML -> Markdown-headed text -> chunks -> MiniLM)
into a separate embedded database (``EMBEDDED_DB_DIR``, default
``/tmp/ragchat-eval-pg``); a second run reuses the indexed chunks.

Questions: 70 hand-written questions, each labelled with the page(s) that
answer it. Most are paraphrases that avoid the page's wording; a few are bare
identifiers (``nlargest``), where full-text search should shine. A hit is
relevant when its chunk comes from a labelled page.

Usage: ``make eval`` (``--fresh`` rebuilds the database).
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
from pathlib import Path

import psycopg
from sqlalchemy import text

APP_DIR = Path(__file__).resolve().parents[1] / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.cli.ingest import index_documents, load_files  # noqa: E402
from src.gateway.embeddings_gateway import EmbeddingsGateway  # noqa: E402
from src.infra.db_client import Database, create_engine  # noqa: E402
from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.embeddings.minilm import MiniLMEmbeddings  # noqa: E402
from src.infra.migrations import apply_compat_layer, apply_migrations  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.worker.ingestion_worker import IngestionWorker  # noqa: E402

DB_NAME = "retrieval_eval"
CACHE = Path(os.environ.get("EVAL_CACHE_DIR", "/tmp/ragchat-eval-corpus"))  # noqa: S108 - a scratch server of its own
PACKAGE = "python3.11-doc"
HTML_DIR = "usr/share/doc/python3.11/html/library"
K = 5
DEPTH = 10

QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("count how many times each item appears in a list", ("collections",)),
    (
        "dictionary that remembers insertion order and can move a key to the end",
        ("collections",),
    ),
    ("tuple whose fields can be read by attribute name", ("collections",)),
    ("iterator that repeats the elements of a sequence forever", ("itertools",)),
    ("every combination of length r drawn from a list", ("itertools",)),
    ("group consecutive elements that share a key", ("itertools",)),
    ("remember the results of an expensive function call", ("functools",)),
    ("fix some arguments of a function to make a new callable", ("functools",)),
    ("turn a dict into a JSON string with indentation", ("json",)),
    ("read the rows of a comma separated file as dictionaries", ("csv",)),
    ("get the file extension of a path object", ("pathlib",)),
    (
        "find all files matching a pattern in a directory tree recursively",
        ("glob", "pathlib"),
    ),
    ("match a regular expression only at the start of a string", ("re",)),
    ("replace every occurrence of a pattern in a string", ("re",)),
    ("declare command line options with defaults and help text", ("argparse",)),
    ("a program with subcommands like git commit and git push", ("argparse",)),
    ("write log messages with timestamps to a file", ("logging",)),
    ("run an external program and capture what it prints", ("subprocess",)),
    ("copy a whole directory with everything inside it", ("shutil",)),
    ("choose a random element from a list", ("random",)),
    ("generate a hard-to-guess token for a password reset link", ("secrets",)),
    ("median and standard deviation of a list of numbers", ("statistics",)),
    ("get the n smallest items using a priority queue", ("heapq",)),
    ("insert into a sorted list and keep it sorted", ("bisect",)),
    ("decorator that writes __init__ and __repr__ from class fields", ("dataclasses",)),
    ("a set of symbolic names bound to constant values", ("enum",)),
    ("run SQL queries against a database stored in a file", ("sqlite3",)),
    ("compute the SHA-256 digest of some bytes", ("hashlib",)),
    ("generate a universally unique identifier", ("uuid",)),
    ("extract all members of a ZIP archive", ("zipfile",)),
    ("create a compressed tar.gz archive", ("tarfile",)),
    ("decompress a .gz file", ("gzip",)),
    ("temporary directory that is removed automatically", ("tempfile",)),
    ("shell-style wildcard matching of file names", ("fnmatch", "glob")),
    ("substitute $name placeholders in a string template", ("string",)),
    ("wrap a long paragraph to a fixed line width", ("textwrap",)),
    ("show the differences between two texts like a unified diff", ("difflib",)),
    ("measure how long a small code snippet takes to run", ("timeit",)),
    ("pause the program for a number of seconds", ("time",)),
    ("exact arithmetic with numerator and denominator", ("fractions",)),
    ("square root, logarithm and trigonometric functions", ("math",)),
    ("duplicate a nested object so changes do not affect the original", ("copy",)),
    ("save Python objects to a binary file and load them back", ("pickle", "shelve")),
    ("run a function in a separate thread and wait for it to finish", ("threading",)),
    ("thread-safe FIFO for producers and consumers", ("queue",)),
    ("ignore specific exceptions inside a with block", ("contextlib",)),
    ("reference to an object that does not keep it alive", ("weakref",)),
    ("split a URL into scheme, host, path and query string", ("urllib.parse",)),
    ("encode binary data as ASCII text for email", ("base64",)),
    ("read settings from an INI style configuration file", ("configparser",)),
    ("ask the user for a password without showing it on screen", ("getpass",)),
    ("print the full stack trace of an exception", ("traceback",)),
    ("display a nested data structure in a readable layout", ("pprint",)),
    ("pack integers into bytes with a chosen byte order", ("struct",)),
    ("in-memory text buffer that behaves like a file", ("io",)),
    ("react when the user presses Ctrl-C", ("signal",)),
    ("check whether a path exists and is a directory", ("os.path", "pathlib")),
    ("print the calendar of a month", ("calendar",)),
    ("persistent dictionary kept on disk", ("shelve", "dbm")),
    ("class with methods that subclasses must implement", ("abc",)),
    ("escape < and & characters for use in a web page", ("html",)),
    ("parse an XML document and loop over its elements", ("xml.etree.elementtree",)),
    ("tell users that a function is going away in a future release", ("warnings",)),
    ("name and version of the operating system", ("platform",)),
    ("sort a list of records by one of their fields", ("operator", "functools")),
    ("lru_cache maxsize", ("functools",)),
    ("most_common", ("collections",)),
    ("rmtree onerror", ("shutil",)),
    ("nlargest", ("heapq",)),
    ("ZIP_DEFLATED", ("zipfile",)),
]

PAGES = sorted({page for _, pages in QUESTIONS for page in pages} - {"dbm"})


def log(message: str) -> None:
    print(message, flush=True)


def corpus_dir() -> Path:
    """The library pages, downloaded and unpacked on the first run."""
    html = CACHE / "extracted" / HTML_DIR
    if html.is_dir():
        return html
    CACHE.mkdir(parents=True, exist_ok=True)
    # Debian's own tools, found on PATH; the arguments are constants.
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {PACKAGE} with apt-get ...")
        download = ["apt-get", "download", PACKAGE]
        if subprocess.run(download, cwd=tmp, check=False).returncode != 0:  # noqa: S603
            subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
            subprocess.run(download, cwd=tmp, check=True)  # noqa: S603
        [deb] = Path(tmp).glob("*.deb")
        extract = ["dpkg-deb", "-x", str(deb), str(CACHE / "extracted")]
        subprocess.run(extract, check=True)  # noqa: S603
    return html


def evaluation_files(html: Path) -> list[Path]:
    pages = CACHE / "pages"
    pages.mkdir(exist_ok=True)
    files = []
    for page in PAGES:
        target = pages / f"{page}.html"
        if not target.exists():
            shutil.copy(html / f"{page}.html", target)
        files.append(target)
    return files


def prepare_database(fresh: bool) -> str:
    data_dir = Path(os.environ.get("EMBEDDED_DB_DIR", "/tmp/ragchat-eval-pg"))  # noqa: S108 - a scratch server of its own
    server = start_embedded_postgres(data_dir)
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        if fresh:
            conn.execute(f"drop database if exists {DB_NAME} with (force)")
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (DB_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f"create database {DB_NAME}")
    apply_compat_layer(server.conninfo(DB_NAME))
    apply_migrations(server.conninfo(DB_NAME))
    return server.url(DB_NAME)


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


async def evaluate(
    database: Database,
    embeddings: MiniLMEmbeddings,
    settings: Settings,
    user: uuid.UUID,
) -> dict[str, dict[str, float]]:
    pages = await page_of_documents(database)
    vectors = embeddings.embed_array([q for q, _ in QUESTIONS])
    modes = {
        "vector": settings.model_copy(update={"retrieval_text_weight": 0.0}),
        "full-text": settings.model_copy(update={"retrieval_vector_weight": 0.0}),
        "hybrid": settings,
    }
    claims = {"sub": str(user), "role": "authenticated"}
    report = {}
    for mode, mode_settings in modes.items():
        hits_at_k, reciprocal = [], []
        for (question, labels), vector in zip(QUESTIONS, vectors, strict=True):
            async with database.user_transaction(claims) as session:
                gateway = EmbeddingsGateway(
                    embeddings, embeddings.model_name, mode_settings
                )
                hits = await gateway.search_with_embedding(
                    session,
                    query=question,
                    embedding=vector.tolist(),
                    k=DEPTH,
                    chat_room_id=None,
                )
            ranks = [i for i, h in enumerate(hits, 1) if pages[h.document_id] in labels]
            first = ranks[0] if ranks else None
            hits_at_k.append(1.0 if first is not None and first <= K else 0.0)
            reciprocal.append(1.0 / first if first is not None else 0.0)
        report[mode] = {
            f"recall@{K}": round(statistics.mean(hits_at_k), 3),
            f"mrr@{DEPTH}": round(statistics.mean(reciprocal), 3),
        }
    return report


async def run(fresh: bool) -> None:
    html = corpus_dir()
    files = evaluation_files(html)
    url = prepare_database(fresh)
    settings = Settings(
        _env_file=None, environment="test", database_url=url, worker_enabled=False
    )
    database = Database(engine=create_engine(url, settings))
    embeddings = MiniLMEmbeddings()
    try:
        summary = await load_files(database, files)
        worker = IngestionWorker(
            database=database,
            embeddings=embeddings,
            embedding_model_name=embeddings.model_name,
            settings=settings,
        )
        await index_documents(worker, database, summary)
        async with database.service_transaction() as session:
            chunks = (
                await session.execute(text("select count(*) from document_chunks"))
            ).scalar_one()
        log(
            f"corpus: {len(files)} pages of the Python 3.11 library reference, "
            f"{chunks} chunks; loaded {dict(summary.loaded)}"
        )
        user = await evaluator_user(database)
        report = await evaluate(database, embeddings, settings, user)
    finally:
        await database.dispose()
    log(f"{len(QUESTIONS)} questions; relevant = a chunk of a labelled page")
    log(f"{'mode':<10} {'recall@5':>9} {'MRR@10':>8}")
    for mode, scores in report.items():
        log(f"{mode:<10} {scores['recall@5']:>9.3f} {scores['mrr@10']:>8.3f}")
    log("RESULTS " + json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild the database")
    asyncio.run(run(parser.parse_args().fresh))


if __name__ == "__main__":
    main()
