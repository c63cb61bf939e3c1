"""``make db-migrate``, ``make db-reset`` and ``make gen-models``."""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from src.domain.errors import MigrationError
from src.infra.db_client import libpq_url, prepare_embedded
from src.infra.embedded_postgres import start_embedded_postgres
from src.infra.migrations import (
    apply_compat_layer,
    apply_migrations,
    reset_database,
)
from src.settings import REPO_ROOT, Settings, get_settings

MODELS_FILE = REPO_ROOT / "backend-py/app/src/domain/entity/models.py"


def migrate(settings: Settings) -> None:
    """Apply pending migrations to DATABASE_URL or the embedded database."""
    if settings.database_url:
        applied = apply_migrations(libpq_url(settings.database_url))
    else:
        server = start_embedded_postgres(settings.embedded_db_path)
        apply_compat_layer(server.conninfo())
        applied = apply_migrations(server.conninfo())
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")


def reset(settings: Settings) -> None:
    """Drop the embedded database's data, re-apply migrations and seed.sql."""
    if settings.database_url:
        sys.exit(
            "db-reset only resets the embedded database; for a Supabase project "
            "use `supabase db reset` (local) or the dashboard."
        )
    server = start_embedded_postgres(settings.embedded_db_path)
    reset_database(server.conninfo())
    prepare_embedded(settings)  # a database with no history is seeded
    print("database reset: migrations and seed.sql applied")


def render_models(sqlalchemy_url: str) -> str:
    """Run sqlacodegen (SQLModel generator) against a migrated database."""
    with tempfile.TemporaryDirectory() as tmp:
        outfile = Path(tmp) / "models.py"
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                sys.executable,
                "-m",
                "sqlacodegen",
                "--generator",
                "sqlmodels",
                "--options",
                "nojoined",
                "--outfile",
                str(outfile),
                sqlalchemy_url,
            ],
            check=True,
            capture_output=True,
        )
        return outfile.read_text(encoding="utf-8")


def generate_models_from_scratch(settings: Settings) -> str:
    """Migrate a scratch database of the embedded server and render its models."""
    server = start_embedded_postgres(settings.embedded_db_path)
    apply_compat_layer(server.conninfo())
    scratch = "models_codegen"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {scratch} with (force)")
        conn.execute(f"create database {scratch}")
    try:
        apply_compat_layer(server.conninfo(scratch))
        apply_migrations(server.conninfo(scratch))
        return render_models(server.url(scratch))
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute(f"drop database if exists {scratch} with (force)")


def main(argv: list[str] | None = None) -> None:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="db", description=__doc__)
    parser.add_argument("command", choices=["migrate", "reset", "gen-models"])
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "migrate":
            migrate(settings)
        elif args.command == "reset":
            reset(settings)
        else:
            models = generate_models_from_scratch(settings)
            MODELS_FILE.write_text(models, encoding="utf-8")
            print(f"wrote {MODELS_FILE.relative_to(REPO_ROOT)}")
    except MigrationError as error:
        sys.exit(f"db {args.command}: {error}")


if __name__ == "__main__":
    main()
