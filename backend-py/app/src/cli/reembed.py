"""``make reembed``: re-embed every chunk made by another embedding model.

After changing the embedding model (e.g. setting ``OPENAI_API_KEY``), search
only compares vectors of the configured model, so older chunks are invisible
until they are re-embedded. This recomputes them in batches (each batch its own
transaction, so an interrupted run resumes where it stopped), records the model
on finished documents, and rebuilds full-text vectors made with another
``TEXT_SEARCH_CONFIG``.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from src.domain.service.chunking import Chunk, embedding_text
from src.gateway.chunk_gateway import ChunkGateway
from src.gateway.embeddings_gateway import vector_literal
from src.infra.ai_providers import build_ai_providers
from src.infra.db_client import Database, open_database
from src.settings import Settings, get_settings


async def reembed(
    database: Database,
    embeddings: Embeddings,
    *,
    model: str,
    batch_size: int,
    progress: bool = True,
) -> int:
    """Re-embed chunks of other models with ``model``; the number re-embedded."""
    async with database.service_transaction() as session:
        total = await ChunkGateway(session).count_other_model(model)
    done = 0
    last_id = 0
    with tqdm(
        total=total, desc="re-embedding", unit="chunk", disable=not progress
    ) as bar:
        while True:
            async with database.service_transaction() as session:
                rows = await ChunkGateway(session).other_model_batch(
                    model, after_id=last_id, limit=batch_size
                )
            if not rows:
                break
            texts = [
                embedding_text(Chunk(0, r.content, r.heading_path, 0)) for r in rows
            ]
            vectors = await embeddings.aembed_documents(texts)
            async with database.service_transaction() as session:
                await ChunkGateway(session).set_embeddings(
                    [r.id for r in rows],
                    [vector_literal(v) for v in vectors],
                    model=model,
                )
            last_id = rows[-1].id
            done += len(rows)
            bar.update(len(rows))
    return done


async def run(settings: Settings) -> None:
    """Re-embed, then update documents and full-text configurations."""
    database = await open_database(settings)
    try:
        ai = build_ai_providers(settings)
        try:
            count = await reembed(
                database,
                ai.embeddings,
                model=ai.embedding_model_name,
                batch_size=settings.embedding_batch_size * 8,
            )
        finally:
            await ai.aclose()
        async with database.service_transaction() as session:
            chunks = ChunkGateway(session)
            documents = await chunks.finish_documents(ai.embedding_model_name)
            rebuilt = await chunks.set_text_search_config(settings.text_search_config)
    finally:
        await database.dispose()
    print(
        f"re-embedded {count} chunks with {ai.embedding_model_name}; "
        f"{documents} documents updated; {rebuilt} full-text vectors rebuilt"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the (no) arguments and run."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    asyncio.run(run(get_settings()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
