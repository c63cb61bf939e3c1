"""``make run`` on the embedded database: SIGTERM stops Postgres with the API."""

import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import ApiServer

pytestmark = pytest.mark.e2e


def postgres_running_in(data_dir: Path) -> bool:
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(data_dir) in " ".join(cmdline):
            return True
    return False


def test_sigterm_stops_the_embedded_postgres_it_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    # An empty DATABASE_URL means unset: the server starts the embedded database.
    server = ApiServer("", EMBEDDED_DB_DIR=str(data_dir), WORKER_ENABLED="false")
    server.start()
    try:
        assert postgres_running_in(data_dir)
    finally:
        # uvicorn re-raises SIGTERM once it has shut down, so -15 is a clean exit.
        assert server.stop() in (0, -15)
    deadline = time.monotonic() + 10
    while postgres_running_in(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not postgres_running_in(data_dir)
