import os

import pytest

from src.cli.db import MODELS_FILE, render_models
from src.domain.entity import models


@pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="models are generated from the embedded database's schema",
)
def test_committed_models_match_the_migrated_schema(database_url: str) -> None:
    generated = render_models(database_url)
    committed = MODELS_FILE.read_text(encoding="utf-8")
    assert generated == committed, (
        "src/domain/entity/models.py differs from what the migrations produce: "
        "run `make gen-models` (never edit it by hand)"
    )


def test_models_cover_every_public_table() -> None:
    tables = {
        cls.__table__.name
        for cls in vars(models).values()
        if hasattr(cls, "__table__") and cls.__table__.schema is None
    }
    assert tables == {
        "general_users",
        "user_profiles",
        "virtual_users",
        "chat_rooms",
        "user_chats",
        "messages",
        "documents",
        "document_chunks",
        "document_chunk_common_lexemes",
        "document_chunk_text_statistics",
    }
