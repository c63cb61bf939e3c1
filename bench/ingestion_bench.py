"""The embedding model's own speed on a folder's chunks, for ``make ingest``'s ratio.

``make ingest`` end to end (parse, store, chunk, embed, write) can go no faster
than the model alone on the same chunks; this measures the latter. It parses
and chunks every file under ``--html`` as the worker would (same settings),
then embeds the chunks' texts with the offline model as the server builds it,
in requests of the worker's size, and prints chunks per second with the load
average before and after (the machine may be shared: measure in the same
minutes as the ``make ingest`` run you compare with). Results go to
``bench/results/ingestion.md``.

    uv run --frozen python ../../bench/ingestion_bench.py --html <dir> [--sample N]
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1] / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.cli.ingest import find_files  # noqa: E402
from src.domain.errors import DomainError  # noqa: E402
from src.domain.service.chunking import chunk_text, embedding_text  # noqa: E402
from src.domain.service.document_parsing import parse_document  # noqa: E402
from src.infra.embeddings.minilm import MiniLMEmbeddings  # noqa: E402
from src.settings import Settings  # noqa: E402
from src.worker.chunk_embedder import EMBED_SLICE  # noqa: E402


def chunk_texts(root: Path, settings: Settings) -> list[str]:
    """The texts the worker would embed for every file under ``root``."""
    texts: list[str] = []
    for path in find_files(root):
        try:
            parsed = parse_document(path.name, path.read_bytes())
        except DomainError:
            continue
        chunks = chunk_text(
            parsed.content,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            pages=parsed.pages,
        )
        texts.extend(embedding_text(c) for c in chunks)
    return texts


def main() -> None:
    """Chunk the folder, embed a sample of its chunks, print the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, required=True, help="the folder")
    parser.add_argument("--sample", type=int, default=0, help="chunks (0: all)")
    args = parser.parse_args()
    texts = chunk_texts(args.html, Settings())
    total = len(texts)
    if args.sample:
        texts = random.Random(0).sample(texts, min(args.sample, total))
    model = MiniLMEmbeddings()
    model.embed_documents(texts[:16])  # warm up
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for start in range(0, len(texts), EMBED_SLICE):
        model.embed_documents(texts[start : start + EMBED_SLICE])
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    print(
        f"model alone: {len(texts)} of {total} chunks in {seconds:.1f} s"
        f" = {len(texts) / seconds:.1f} chunks/s"
        f" (load average {load_before:.1f} -> {load_after:.1f},"
        f" {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
