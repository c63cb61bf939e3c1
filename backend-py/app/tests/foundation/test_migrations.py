import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from src.domain.errors import MigrationError
from src.infra.db_client import libpq_url
from src.infra.migrations import (
    MIGRATIONS_DIR,
    apply_compat_layer,
    apply_migrations,
    discover,
)


@pytest.fixture
def scratch_db(database_url: str) -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards."""
    admin = libpq_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database if exists migrations_scratch with (force)")
        conn.execute("create database migrations_scratch")
    scratch = admin.replace("/postgres?", "/migrations_scratch?")
    if "/migrations_scratch" not in scratch:
        pytest.skip("TEST_DATABASE_URL does not name the postgres database")
    yield scratch
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("drop database if exists migrations_scratch with (force)")


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def _create_compat(conninfo: str) -> None:
    apply_compat_layer(conninfo)


def test_migrations_apply_in_order_and_are_recorded(scratch_db: str) -> None:
    _create_compat(scratch_db)
    applied = apply_migrations(scratch_db)
    assert applied == [m.version for m in discover()]
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute(
            "select version, name from supabase_migrations.schema_migrations "
            "order by version"
        ).fetchall()
    assert [r[0] for r in rows] == applied
    assert all(r[1] for r in rows)


def test_a_second_run_applies_nothing(scratch_db: str) -> None:
    _create_compat(scratch_db)
    apply_migrations(scratch_db)
    assert apply_migrations(scratch_db) == []


def test_an_edited_applied_migration_is_refused(
    scratch_db: str, migrations_copy: Path
) -> None:
    _create_compat(scratch_db)
    apply_migrations(scratch_db, migrations_copy)
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        apply_migrations(scratch_db, migrations_copy)


def test_a_gap_in_the_history_is_refused(
    scratch_db: str, migrations_copy: Path
) -> None:
    _create_compat(scratch_db)
    apply_migrations(scratch_db, migrations_copy)
    (migrations_copy / "19990101000000_late_arrival.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="never applied"):
        apply_migrations(scratch_db, migrations_copy)


def test_a_new_migration_is_applied_once(
    scratch_db: str, migrations_copy: Path
) -> None:
    _create_compat(scratch_db)
    apply_migrations(scratch_db, migrations_copy)
    (migrations_copy / "29991231235959_add_thing.sql").write_text(
        "create table public.thing (id int primary key);"
    )
    assert apply_migrations(scratch_db, migrations_copy) == ["29991231235959"]
    assert apply_migrations(scratch_db, migrations_copy) == []


def test_a_misnamed_file_is_refused(migrations_copy: Path) -> None:
    (migrations_copy / "add_stuff.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match=r"named <YYYYMMDDHHMMSS>_<name>\.sql"):
        discover(migrations_copy)


def test_a_failing_migration_leaves_nothing_behind(
    scratch_db: str, migrations_copy: Path
) -> None:
    _create_compat(scratch_db)
    apply_migrations(scratch_db, migrations_copy)
    (migrations_copy / "29991231235959_broken.sql").write_text(
        "create table public.half (id int); select * from no_such_table;"
    )
    with pytest.raises(psycopg.errors.UndefinedTable):
        apply_migrations(scratch_db, migrations_copy)
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select to_regclass('public.half')").fetchone() == (None,)
        recorded = conn.execute(
            "select count(*) from supabase_migrations.schema_migrations "
            "where version = '29991231235959'"
        ).fetchone()
    assert recorded == (0,)


def test_the_compat_layer_is_idempotent(scratch_db: str) -> None:
    _create_compat(scratch_db)
    _create_compat(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        roles = conn.execute(
            "select rolname from pg_roles where rolname in "
            "('anon', 'authenticated', 'service_role', 'authenticator') order by 1"
        ).fetchall()
    assert [r[0] for r in roles] == [
        "anon",
        "authenticated",
        "authenticator",
        "service_role",
    ]


def test_the_compat_layer_refuses_a_supabase_database_with_its_own_message(
    scratch_db: str,
) -> None:
    # Real Supabase databases have this role; it is cluster-wide, so it goes
    # again at once (roles of the test server are the test session's own).
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("create role supabase_auth_admin nologin")
    try:
        with pytest.raises(psycopg.errors.RaiseException) as refused:
            apply_compat_layer(scratch_db)
    finally:
        with psycopg.connect(scratch_db, autocommit=True) as conn:
            conn.execute("drop role supabase_auth_admin")

    assert "must not be applied to a real Supabase database" in str(refused.value)
    with psycopg.connect(scratch_db) as conn:
        locks = conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory'"
        ).fetchone()
        auth_users = conn.execute("select to_regclass('auth.users')").fetchone()
    assert locks == (0,)
    assert auth_users == (None,)


def test_a_database_of_the_old_history_is_told_to_reset(
    scratch_db: str, migrations_copy: Path
) -> None:
    # A development database migrated before the baseline replaced the
    # migrations it recorded: applying the baseline on it would fail on
    # tables that exist. The runner says what to do instead, and changes
    # nothing.
    _create_compat(scratch_db)
    old = migrations_copy.parent / "old"
    old.mkdir()
    (old / "20261122000100_users.sql").write_text(
        "create table public.general_users (id uuid primary key);"
    )
    apply_migrations(scratch_db, old)

    with pytest.raises(MigrationError, match=r"20261122000100.*make db-reset"):
        apply_migrations(scratch_db, migrations_copy)
    with psycopg.connect(scratch_db) as conn:
        versions = conn.execute(
            "select version from supabase_migrations.schema_migrations"
        ).fetchall()
    assert versions == [("20261122000100",)]
