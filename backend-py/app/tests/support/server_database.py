"""A migrated database of its own for a server that runs in a subprocess.

A real server commits, so it gets a database next to the test session's one
(same embedded PostgreSQL) and its data never meets the rolled-back tests.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from src.infra.db_client import libpq_url
from src.infra.migrations import apply_compat_layer, apply_migrations


@contextmanager
def server_database(database_url: str, name: str) -> Iterator[str]:
    """Create the database ``name``, Supabase-like and migrated; drop it after.

    Args:
        database_url: The test session's database (its server hosts the new one).
        name: The database to (re)create.

    Yields:
        A libpq URL of the new database.
    """
    admin = libpq_url(database_url)
    if "/postgres?" not in admin:
        pytest.skip("servers get a database created next to the embedded one")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    url = admin.replace("/postgres?", f"/{name}?")
    apply_compat_layer(url)
    apply_migrations(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
