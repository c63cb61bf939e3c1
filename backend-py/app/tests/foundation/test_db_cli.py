"""``make db-migrate`` and ``make db-reset`` on a separate embedded server."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from src.cli import db as db_cli
from src.infra.db_client import prepare_embedded
from src.infra.embedded_postgres import start_embedded_postgres
from src.infra.migrations import discover
from src.settings import Settings


@pytest.fixture(scope="module")
def embedded_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp("cli") / "pg"
    settings = Settings(_env_file=None, embedded_db_dir=folder)
    yield settings
    if folder.exists():
        start_embedded_postgres(folder, cleanup_mode="delete").stop()


def _conninfo(settings: Settings) -> str:
    return start_embedded_postgres(settings.embedded_db_path).conninfo()


def test_migrate_then_reset_restores_a_clean_seeded_database(
    embedded_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    db_cli.migrate(embedded_settings)
    assert f"applied {len(discover())} migration(s)" in capsys.readouterr().out
    db_cli.migrate(embedded_settings)
    assert "applied 0 migration(s): none" in capsys.readouterr().out

    with psycopg.connect(_conninfo(embedded_settings)) as conn:
        conn.execute(
            "insert into auth.users (id, email) values "
            "(gen_random_uuid(), 'gone@example.com')"
        )
    db_cli.reset(embedded_settings)
    with psycopg.connect(_conninfo(embedded_settings)) as conn:
        users = conn.execute("select count(*) from auth.users").fetchone()
        personas = conn.execute(
            "select count(*) from virtual_users where is_default"
        ).fetchone()
    assert users == (0,)
    assert personas == (1,)


def test_reset_refuses_a_database_url() -> None:
    settings = Settings(_env_file=None, database_url="postgresql://x/y")
    with pytest.raises(SystemExit, match="supabase db reset"):
        db_cli.reset(settings)


def test_gen_models_writes_the_same_file(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "models.py"
    monkeypatch.setattr(db_cli, "MODELS_FILE", target)
    monkeypatch.setattr(db_cli, "get_settings", lambda: embedded_settings)
    monkeypatch.setattr(db_cli, "REPO_ROOT", tmp_path)
    db_cli.main(["gen-models"])
    assert (
        target.read_text()
        == (Path(__file__).parents[2] / "src/domain/entity/models.py").read_text()
    )


def test_a_new_embedded_database_is_seeded_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, embedded_db_dir=tmp_path / "pg")
    server = prepare_embedded(settings)
    try:
        with psycopg.connect(server.conninfo()) as conn:
            seeded = conn.execute("select count(*) from virtual_users").fetchone()
            conn.execute("delete from virtual_users")
        prepare_embedded(settings)  # an existing database is left as it is
        with psycopg.connect(server.conninfo()) as conn:
            again = conn.execute("select count(*) from virtual_users").fetchone()
    finally:
        server.stop()
    assert seeded is not None
    assert seeded[0] >= 1
    assert again == (0,)


def test_migrate_on_an_older_history_exits_with_the_way_out(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = (
        "insert into supabase_migrations.schema_migrations (version, name) "
        "values ('20261122000100', 'users')"
    )
    db_cli.migrate(embedded_settings)
    with psycopg.connect(_conninfo(embedded_settings)) as conn:
        conn.execute(record)
    monkeypatch.setattr(db_cli, "get_settings", lambda: embedded_settings)
    try:
        with pytest.raises(SystemExit, match=r"db migrate: .*make db-reset"):
            db_cli.main(["migrate"])
    finally:
        with psycopg.connect(_conninfo(embedded_settings)) as conn:
            conn.execute(
                "delete from supabase_migrations.schema_migrations "
                "where version = '20261122000100'"
            )
