"""End-to-end fixtures: a real ``uvicorn`` process serving the API.

The server runs ``python -m src.cli.serve`` (what ``make run`` runs) against a
database of its own on the test server, so its committed data never meets the
rolled-back tests.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import psycopg
import pytest

from tests.factories import auth_headers, mint_token
from tests.support.server_database import server_database

APP_DIR = Path(__file__).parents[2]
E2E_DATABASE = "ragchat_e2e"
START_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def e2e_database_url(database_url: str) -> Iterator[str]:
    """A migrated database for the servers, dropped at the end of the session."""
    with server_database(database_url, E2E_DATABASE) as url:
        yield url


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """``python -m src.cli.serve`` in a subprocess, with its own environment.

    Its stderr goes to a temporary file, read when a test needs it: a pipe
    nobody reads would block a server that logs a lot.
    """

    command: tuple[str, ...] = (sys.executable, "-m", "src.cli.serve")
    """What serves the API (tests/ship serves it with ``make run``)."""
    cwd: Path = APP_DIR

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": "1",
            "LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": "",
            "LANGSMITH_TRACING": "false",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop

    def start(self) -> None:
        """Start the server and wait until ``/health/ready`` answers 200."""
        self.process = subprocess.Popen(
            list(self.command),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            # Its own process group: stop() signals the server and any wrapper.
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError(f"the server did not become ready:\n{log[-3000:]}")

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM (graceful shutdown) and wait; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def new_user(self) -> tuple[uuid.UUID, dict[str, str]]:
        """A new user in the server's database and their auth header."""
        user_id = uuid.uuid4()
        with psycopg.connect(self.database_url) as conn:
            conn.execute(
                "insert into auth.users (id, email, aud, role) "
                "values (%s, %s, 'authenticated', 'authenticated')",
                (user_id, f"e2e-{user_id.hex[:10]}@example.com"),
            )
        return user_id, auth_headers(mint_token(user_id))

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of a query on the server's database (as the service)."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql.encode(), params).fetchall()


@pytest.fixture(scope="module")
def offline_server(e2e_database_url: str) -> Iterator[ApiServer]:
    """The API with the offline providers, as ``make run`` serves it."""
    server = ApiServer(e2e_database_url)
    server.start()
    yield server
    server.stop()
