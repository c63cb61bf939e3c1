"""Applies ``supabase/migrations`` the way the Supabase CLI records them.

Each file ``<version>_<name>.sql`` runs once, in version order, in its own
transaction, and is recorded in ``supabase_migrations.schema_migrations`` (the
CLI's own table), so ``supabase db push`` and this runner agree on what has been
applied. A side table keeps a checksum of each file this runner applied, so an
edited applied migration is refused instead of silently diverging.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from src.domain.errors import MigrationError
from src.settings import REPO_ROOT

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
SEED_FILE = REPO_ROOT / "supabase" / "seed.sql"
COMPAT_FILE = Path(__file__).parent / "sql" / "supabase_compat.sql"

_FILE_PATTERN = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_305_416_221  # any constant: serialises concurrent runners

_BOOKKEEPING_SQL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key,
    statements text[],
    name text
);
create table if not exists supabase_migrations.schema_migration_checksums (
    version text not null primary key,
    sha256 text not null,
    applied_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's text."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of ``directory``, in version order.

    Raises:
        MigrationError: A ``.sql`` file is misnamed or two share a version.
    """
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql"
            )
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version")
    return migrations


def _recorded(conn: psycopg.Connection) -> dict[str, str | None]:
    rows = conn.execute(
        "select m.version, c.sha256 from supabase_migrations.schema_migrations m "
        "left join supabase_migrations.schema_migration_checksums c using (version)"
    ).fetchall()
    return dict(rows)


def _check_history(
    migrations: list[Migration], recorded: dict[str, str | None]
) -> None:
    _check_known(migrations, recorded)
    for migration in migrations:
        checksum = recorded.get(migration.version, "")
        if checksum and checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.path.name} was edited after it was applied; "
                "add a new migration instead of changing an applied one"
            )
    latest = max(recorded, default="")
    gaps = [m for m in migrations if m.version not in recorded and m.version < latest]
    if gaps:
        raise MigrationError(
            f"migration {gaps[0].path.name} is older than the latest applied "
            f"version {latest} but was never applied; give it a newer version"
        )


def _check_known(migrations: list[Migration], recorded: dict[str, str | None]) -> None:
    """Refuse a database that applied migrations this folder does not have.

    Such a database was built from another history: the migrations before the
    2026-12-01 baseline (which replaced them), or another branch's. Applying
    the files on top of it would fail on objects that already exist.
    """
    files = {m.version for m in migrations}
    unknown = sorted(v for v in recorded if v not in files)
    if unknown:
        raise MigrationError(
            f"the database has {len(unknown)} applied migration(s) that "
            "supabase/migrations does not have "
            f"({unknown[0]}, ...): it was built from an older migration history "
            "(before the baseline) or another branch's. Run `make db-reset` to "
            "rebuild the embedded database (its data is dropped); for a "
            "DATABASE_URL database, recreate it"
        )


def apply_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration of ``directory`` to the database.

    Args:
        conninfo: A libpq connection string.
        directory: The folder of migration files.

    Returns:
        The versions applied by this call (empty when up to date).

    Raises:
        MigrationError: The history and the files disagree: an edited file, a
            gap, or applied versions that no file has (run ``make db-reset``).
    """
    migrations = discover(directory)
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_BOOKKEEPING_SQL)
            recorded = _recorded(conn)
            _check_history(migrations, recorded)
            for migration in migrations:
                if migration.version in recorded:
                    continue
                _apply_one(conn, migration)
                applied.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def _apply_one(conn: psycopg.Connection, migration: Migration) -> None:
    logger.info("applying migration %s", migration.path.name)
    sql = migration.sql
    with conn.transaction():
        conn.execute(sql.encode())
        conn.execute(
            "insert into supabase_migrations.schema_migrations "
            "(version, statements, name) values (%s, %s, %s)",
            (migration.version, [sql], migration.name),
        )
        conn.execute(
            "insert into supabase_migrations.schema_migration_checksums "
            "(version, sha256) values (%s, %s)",
            (migration.version, migration.checksum),
        )


def apply_compat_layer(conninfo: str) -> None:
    """Make an embedded Postgres look like Supabase's (roles, ``auth``, grants).

    Never call this for a ``DATABASE_URL`` database: the SQL itself refuses to
    run where Supabase's own admin roles exist, and that refusal (its message)
    is what the caller sees.
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(COMPAT_FILE.read_bytes())
        finally:
            # The file is one transaction: after an error (the guard's refusal)
            # it is aborted, and the unlock would fail and hide that error.
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                conn.execute("rollback")
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))


def apply_seed(conninfo: str, seed_file: Path = SEED_FILE) -> None:
    """Run ``supabase/seed.sql`` (development data) in one transaction."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(seed_file.read_bytes())


def reset_database(conninfo: str) -> None:
    """Drop every application object and all users of an embedded database."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "drop schema if exists public cascade;"
            "drop schema if exists private cascade;"
            "drop schema if exists supabase_migrations cascade;"
            "create schema public;"
            "grant usage, create on schema public to postgres, public;"
            "do $$ begin if to_regclass('auth.users') is not null then "
            "delete from auth.users; end if; end $$;"
        )
