"""The README cannot rot: its tour runs for real, and every other command is
accounted for.

The tour is every ```` ```bash tour ```` block of README.md, in order, run in
one bash session from the repository root, as a newcomer would run it: against
``make run``, started here. The server gets ``PORT`` (a free port) and
``DATABASE_URL`` (a fresh database of its own) in its environment, and the
tour's ``BASE`` is rewritten to that port. ``make token`` in the tour gets the
same ``DATABASE_URL``, so the user it creates is the server's. Make's own
variables are removed, so a test run started by ``make test`` does not turn the
inner makes into sub-makes (which print "Entering directory" lines).

A tour block followed by a ```` ```text output ```` block must print text
matching it, where ``…`` stands for any text and every number for any number. A
tour block without one must print nothing.

Every command of the other ``bash`` blocks must be in ``COVERED``, with the test
or CI file that runs it, or in ``NOT_RUN_HERE``, with the reason. A README that
gains a command that is neither run nor explained fails here.
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import ApiServer
from tests.ship.files import README, REPO_ROOT, CodeBlock, code_blocks, shell_commands
from tests.support.server_database import server_database

TOUR_DATABASE = "ragchat_readme"
README_BASE = "http://127.0.0.1:8000"
STEP_END = "@@ end of a README step @@"
TOUR_TIMEOUT_S = 120
MAKE_VARIABLES = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")

THIS_FILE = "backend-py/app/tests/ship/test_readme.py"
START_EMBEDDED = (
    "import sys, time; from pathlib import Path;"
    "from src.infra.embedded_postgres import start_embedded_postgres;"
    "start_embedded_postgres(Path(sys.argv[1])); print('ready', flush=True);"
    "time.sleep(600)"
)
STOP_EMBEDDED = (
    'kill -INT "$(head -n 1 .data/postgres/postmaster.pid)"',
    "rm -f .data/postgres/.handle_pids.json",
)

COVERED: dict[str, tuple[str, str]] = {
    "make run": (THIS_FILE, "serves the tour"),
    "PORT=8001 make run": (THIS_FILE, "serves the tour with PORT in its environment"),
    "make test": (".ci/run", "CI runs it on a clean clone"),
    "make help": (THIS_FILE, "test_make_help_lists_every_target_the_readme_names"),
    "make db-migrate": (
        "backend-py/app/tests/foundation/test_db_cli.py",
        "the target's command, python -m src.cli.db migrate",
    ),
    "make db-reset": (
        "backend-py/app/tests/foundation/test_db_cli.py",
        "the target's command, python -m src.cli.db reset",
    ),
    "make gen-models": (
        "backend-py/app/tests/foundation/test_db_cli.py",
        "the target's command, python -m src.cli.db gen-models",
    ),
    "make ingest PATH=docs/": (
        "backend-py/app/tests/knowledge/test_cli.py",
        "the target's command, python -m src.cli.ingest",
    ),
    "make reembed": (
        "backend-py/app/tests/knowledge/test_cli.py",
        "the target's command, python -m src.cli.reembed",
    ),
    STOP_EMBEDDED[0]: (THIS_FILE, "test_a_left_running_embedded_postgres_stops"),
    STOP_EMBEDDED[1]: (THIS_FILE, "test_a_left_running_embedded_postgres_stops"),
}

NO_DOCKER = "no Docker engine runs where CI runs; tests/ship checks the files"
NO_SUPABASE = "needs the Supabase CLI and a project, which CI does not have"
BENCHMARK = "a benchmark that takes minutes; its numbers go to bench/results/"
NOT_RUN_HERE: dict[str, str] = {
    "supabase link --project-ref <project-ref>": NO_SUPABASE,
    "supabase db push": NO_SUPABASE,
    "docker compose up --build": NO_DOCKER,
    "make bench": BENCHMARK,
    "make bench-knowledge": BENCHMARK,
    "make bench-streaming": BENCHMARK,
    "make bench-rooms": BENCHMARK,
    "make eval": BENCHMARK,
}


@dataclass(frozen=True)
class TourStep:
    """A tour block and the output the README shows for it (None: prints nothing)."""

    script: str
    expected: str | None


def readme_blocks() -> list[CodeBlock]:
    return code_blocks(README.read_text(encoding="utf-8"))


def tour_steps() -> list[TourStep]:
    blocks = readme_blocks()
    steps = []
    for block, following in zip(blocks, [*blocks[1:], None], strict=True):
        if block.info != ("bash", "tour"):
            continue
        if following is not None and following.info == ("text", "output"):
            steps.append(TourStep(block.text, following.text))
        else:
            steps.append(TourStep(block.text, None))
    return steps


def other_commands() -> list[str]:
    return [
        command
        for block in readme_blocks()
        if block.language == "bash" and block.info != ("bash", "tour")
        for command in shell_commands(block)
    ]


def output_pattern(expected: str) -> re.Pattern[str]:
    """``…`` matches any text, a number any number, whitespace any whitespace."""
    parts = []
    for token in re.split(r"(…|-?\d+(?:\.\d+)?|\s+)", expected.strip()):
        if token == "…":
            parts.append(".*?")
        elif re.fullmatch(r"-?\d+(?:\.\d+)?", token):
            parts.append(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
        elif token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts), re.DOTALL)


def plain_shell_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without make's variables, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    return {**env, **overrides}


class MakeRunServer(ApiServer):
    """The README's first command, ``make run``, from the repository root."""

    command = ("make", "run")
    cwd = REPO_ROOT

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.env = {k: v for k, v in self.env.items() if k not in MAKE_VARIABLES}

    def stop(self) -> int | None:
        """Stop make and wait until the server under it has exited too."""
        code = super().stop()
        deadline = time.monotonic() + 20
        while self.process is not None and time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        return code


@pytest.fixture(scope="module")
def tour_server(database_url: str) -> Iterator[MakeRunServer]:
    with server_database(database_url, TOUR_DATABASE) as url:
        server = MakeRunServer(url)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def test_the_readme_has_a_tour_with_its_outputs() -> None:
    steps = tour_steps()
    assert len(steps) >= 6
    assert README_BASE in steps[0].script
    assert "make token EMAIL=" in steps[0].script
    assert sum(step.expected is not None for step in steps) >= 5


def test_output_patterns_match_what_they_show() -> None:
    pattern = output_pattern('{"id":12,"title":"…","score":0.5}')
    assert pattern.fullmatch('{"id":7,"title":"Guide [1]","score":0.0327}')
    assert not pattern.fullmatch('{"id":7,"name":"Guide","score":0.0327}')
    assert not pattern.fullmatch('{"error":"invalid_token"}')


def test_the_tour_runs_as_written(tour_server: MakeRunServer) -> None:
    steps = tour_steps()
    script = "set -euo pipefail\n" + "".join(
        f"{step.script.replace(README_BASE, tour_server.base_url)}\n"
        f"printf '\\n%s\\n' '{STEP_END}'\n"
        for step in steps
    )
    env = plain_shell_environment(
        DATABASE_URL=tour_server.database_url, ENVIRONMENT="test"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOUR_TIMEOUT_S,
        check=False,
    )
    outputs = result.stdout.split(STEP_END)
    assert result.returncode == 0, f"step {len(outputs)}: {result.stderr[-2000:]}"
    assert len(outputs) == len(steps) + 1
    for number, (step, output) in enumerate(zip(steps, outputs, strict=False), 1):
        if step.expected is None:
            assert output.strip() == "", f"step {number} should print nothing"
        else:
            pattern = output_pattern(step.expected)
            assert pattern.fullmatch(output.strip()), f"step {number}:\n{output}"


def test_every_readme_command_is_run_or_explained() -> None:
    commands = other_commands()
    unaccounted = [c for c in commands if c not in COVERED and c not in NOT_RUN_HERE]
    assert not unaccounted, "run these in a test, or say in NOT_RUN_HERE why not"
    stale = (set(COVERED) | set(NOT_RUN_HERE)) - set(commands)
    assert not stale, "no longer in the README"
    for where, _ in COVERED.values():
        assert (REPO_ROOT / where).is_file(), where


def test_make_help_lists_every_target_the_readme_names() -> None:
    listed = subprocess.run(
        ["make", "help"],
        cwd=REPO_ROOT,
        env=plain_shell_environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    targets = {line.split()[0] for line in listed.splitlines() if line.strip()}
    named = {
        command.split()[1]
        for command in other_commands()
        if command.startswith("make ")
    }
    assert named
    assert named <= targets, named - targets


def test_a_left_running_embedded_postgres_stops(tmp_path: Path) -> None:
    """The troubleshooting commands stop the server a killed ``make run`` left."""
    data_dir = tmp_path / ".data/postgres"
    starter = subprocess.Popen(
        [sys.executable, "-c", START_EMBEDDED, str(data_dir)],
        cwd=REPO_ROOT / "backend-py/app",
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    assert starter.stdout.readline().strip() == "ready"
    starter.kill()  # as `kill -9` would: no exit handler stops the server
    starter.wait()
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    assert process_exists(postmaster), "the server outlived its starter"
    script = "set -eu\n" + "\n".join(STOP_EMBEDDED)
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process_exists(postmaster):
        time.sleep(0.1)
    assert not process_exists(postmaster)
    assert not (data_dir / ".handle_pids.json").exists()


def process_exists(pid: int) -> bool:
    """Whether ``pid`` runs (an exited process nobody reaped yet does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
