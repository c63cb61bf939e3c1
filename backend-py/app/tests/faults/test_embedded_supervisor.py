"""``make run`` on the embedded database: a killed postmaster comes back alone."""

import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import ApiServer
from tests.faults.conftest import wait_until

pytestmark = pytest.mark.e2e

RECOVERY_TIMEOUT_S = 60.0
"""A bound, not a measure: recovery takes a few seconds (bench/results)."""


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def is_ready(server: ApiServer) -> bool:
    try:
        return httpx.get(f"{server.base_url}/health/ready", timeout=5).is_success
    except httpx.TransportError:
        return False


def test_a_killed_postmaster_is_started_again_and_the_api_serves_again(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pg"
    server = ApiServer("", EMBEDDED_DB_DIR=str(data_dir), WORKER_ENABLED="false")
    server.start()
    try:
        killed = postmaster_pid(data_dir)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: not psutil.pid_exists(killed), timeout=10)

        wait_until(lambda: is_ready(server), timeout=RECOVERY_TIMEOUT_S, interval=0.2)

        assert postmaster_pid(data_dir) != killed
        assert psutil.pid_exists(postmaster_pid(data_dir))
        assert server.process is not None
        assert server.process.poll() is None  # the same API process serves
        # Ready as soon as the new postmaster accepts connections, which may
        # be just before the supervisor logs that it started it.
        wait_until(
            lambda: "embedded postgres started again" in server.log(), timeout=10
        )
    finally:
        assert server.stop() in (0, -15)
