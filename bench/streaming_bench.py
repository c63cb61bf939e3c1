"""Streaming benchmark: the cost of a streamed token, ours against a LangChain peer.

What runs, all on 127.0.0.1:
  * its own embedded PostgreSQL in a temporary folder (deleted afterwards),
    made Supabase-like and migrated, with ``--chunks`` shared chunks (random
    unit vectors recorded for the configured OpenAI embedding model); the
    peer's ``PGVectorStore`` table holds the same chunks;
  * ``bench/fake_openai_server.py``, an OpenAI-compatible server in a process
    of its own: instant deterministic embeddings, chat completions streamed
    as ``--tokens`` tokens, the first after ``--first-token-ms``, the last at
    ``--stream-ms``; non-streamed answers instantly;
  * the API as ``make run`` serves it (``python -m src.cli.serve``, ``WORKERS``
    from ``--workers``) with ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` on that
    server, so the real LangChain/OpenAI SDK HTTP path runs; and the peer,
    ``bench/peer_app.py`` under uvicorn, on the same database, chunks, model
    and JWT secret. Each run starts a fresh server process.

For each ``K`` of ``--users``, runs alternate ``--rounds`` times (ours, peer,
ours, peer): K users, each in a room of their own, send a streamed turn
(``POST /api/chat/stream``), read it to the end, think ``--think`` seconds
and send again. After ``--warmup`` seconds, ``--duration`` seconds are
measured: turns completed per second, errors (by status and code),
time-to-first-token overhead (the time to the first ``token`` event minus the
model's own first-token delay) p50/p95/p99, ``GET /health`` probed every
100 ms (p99), the API's CPU (the whole process tree, psutil) and peak RSS,
API CPU per streamed token, the most database connections busy at once
(``pg_stat_activity``: active or idle in transaction, by application name)
and PostgreSQL's CPU.

Then the instant-model saturation run for each app, through the same
OpenAI-compatible path: ``--saturation-connections`` closed loops of
``POST /api/chat`` (the model answers at once), then of ``GET /health``,
``--saturation-duration`` seconds each: the ratio of the two.

Every run stops by itself (turns time out after ``REQUEST_TIMEOUT_S``).
Results go to ``--output`` (``bench/results/streaming.md``), keeping whatever
follows its ``NOTES_HEADING`` line, and to stdout.

Usage: ``make bench-streaming`` (``STREAMING_ARGS="--users 50,200
--duration 30"``), or ``python ../../bench/streaming_bench.py --help`` from
``backend-py/app``. ``--profile out.txt`` records our API with py-spy during
its first measured run.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import jwt
import numpy as np
import psutil
import psycopg
import uvloop

BENCH_DIR = Path(__file__).resolve().parent
APP_DIR = BENCH_DIR.parent / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))
sys.path.insert(0, str(BENCH_DIR))

import load_bench  # noqa: E402
from load_bench import (  # noqa: E402
    WORDS,
    HttpConnection,
    free_port,
    postgres_cpu_seconds,
)
from peer_app import APPLICATION_NAME as PEER_APPLICATION_NAME  # noqa: E402
from peer_app import CHUNKS_TABLE, HISTORY_TABLE  # noqa: E402

from src.cli.token import supabase_claims  # noqa: E402
from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.migrations import (  # noqa: E402
    apply_compat_layer,
    apply_migrations,
    apply_seed,
)
from src.settings import DEV_JWT_SECRET, Settings  # noqa: E402

HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0
PROBE_INTERVAL_S = 0.1
SAMPLE_INTERVAL_S = 0.1
OUR_APPLICATION_NAME = "rag-chat-backend"
SEED = 20261207
NOTES_HEADING = "## Notes (kept when the bench rewrites this file)"
TOKEN_MARK = b"event: token"
SETTINGS = Settings(_env_file=None)
EMBEDDING_MODEL = SETTINGS.openai_embedding_model
DIMENSIONS = SETTINGS.embedding_dimensions
TARGET_CPU_PER_TOKEN_MS = 0.3
TARGET_P99_MS = 250.0
TARGET_HEALTH_P99_MS = 50.0
TARGET_RATIO = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the database ----------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    token: str

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
        }


def create_users(conninfo: str, how_many: int) -> list[User]:
    """Users in ``auth.users`` (the signup trigger adds ``general_users``)."""
    users = []
    with psycopg.connect(conninfo) as conn:
        for n in range(how_many):
            user_id = uuid.uuid4()
            email = f"stream-{n}-{user_id.hex[:8]}@bench.example"
            conn.execute(
                "insert into auth.users (id, email, aud, role) "
                "values (%s, %s, 'authenticated', 'authenticated')",
                (user_id, email),
            )
            claims = supabase_claims(user_id, email=email, expires_in=24 * 3600)
            users.append(User(user_id, jwt.encode(claims, DEV_JWT_SECRET, "HS256")))
    return users


def load_knowledge(conninfo: str, chunks: int) -> None:
    """Shared ready documents, and the same chunks in the peer's vector table."""
    load_bench.load_knowledge(
        conninfo,
        chunks,
        embedding_model=EMBEDDING_MODEL,
        dimensions=DIMENSIONS,
        seed=SEED,
    )
    with psycopg.connect(conninfo) as conn:
        create_peer_tables(conn)
        conn.execute("analyze")


def create_peer_tables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The tables ``PGEngine.ainit_vectorstore_table`` (hybrid) would create,
    filled with the same chunks, with the indexes its documentation suggests;
    and ``PostgresChatMessageHistory``'s table."""
    conn.execute(
        f"create table public.{CHUNKS_TABLE} ("
        " langchain_id uuid primary key, content text not null,"
        f" embedding extensions.vector({DIMENSIONS}) not null,"
        " content_tsv tsvector not null, langchain_metadata json)"
    )
    conn.execute(
        f"insert into public.{CHUNKS_TABLE} select gen_random_uuid(), content,"  # noqa: S608 - a constant
        " embedding, to_tsvector('english', content),"
        " json_build_object('document_id', document_id)"
        " from public.document_chunks"
    )
    conn.execute(
        f"create index on public.{CHUNKS_TABLE}"
        " using hnsw (embedding extensions.vector_cosine_ops)"
    )
    conn.execute(f"create index on public.{CHUNKS_TABLE} using gin (content_tsv)")
    conn.commit()
    from langchain_postgres import PostgresChatMessageHistory  # noqa: PLC0415

    PostgresChatMessageHistory.create_tables(conn, HISTORY_TABLE)


# -- the processes ---------------------------------------------------------------


class Process:
    """A server in a subprocess of its own group, its stderr in a file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        keep_log: Path | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.keep_log = keep_log
        self.port = int(env["PORT"])
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, ready_path: str | None = "/health") -> None:
        self.process = await asyncio.to_thread(
            subprocess.Popen,  # our interpreter, fixed arguments
            self.command,
            cwd=APP_DIR,
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            if await self._answers(ready_path):
                return
            await asyncio.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")

    async def _answers(self, path: str | None) -> bool:
        try:
            if path is None:
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.close()
                return True
            probe = HttpConnection(self.port)
            status, _ = await probe.request("GET", path, {})
            probe.close()
        except OSError:
            return False
        return status == 200

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.keep_log is not None:
            self.keep_log.parent.mkdir(parents=True, exist_ok=True)
            self.keep_log.write_text(self.log())
        self._log.close()


@dataclass(frozen=True)
class Setup:
    """What every run shares."""

    args: argparse.Namespace
    database_url: str
    conninfo: str
    model_url: str
    postmaster_pid: int

    def log_path(self, app: str) -> Path | None:
        """Where to keep a server's log (``--logs``), one file per server."""
        if self.args.logs is None:
            return None
        stamp = datetime.now(UTC).strftime("%H%M%S%f")
        return Path(self.args.logs) / f"{app}-{stamp}.log"

    def common_env(self, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "HOST": HOST,
            "PORT": str(port),
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": self.model_url,
            "OPENAI_API_BASE": self.model_url,
            "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,
            "LANGSMITH_TRACING": "false",
        }


def our_server(setup: Setup) -> Process:
    port = free_port()
    env = {
        **setup.common_env(port),
        "ENVIRONMENT": "test",
        "DATABASE_URL": setup.database_url,
        "WORKERS": str(setup.args.workers),
        "LOG_LEVEL": setup.args.log_level,
        "LOG_JSON": "true",
        # Per-user rate limits would stop a closed loop; this measures cost.
        "RATE_LIMIT_CHAT_PER_MINUTE": "1000000",
    }
    command = [sys.executable, "-m", "src.cli.serve"]
    return Process("ours", command, env, setup.log_path("ours"))


def peer_server(setup: Setup) -> Process:
    port = free_port()
    env = {**setup.common_env(port), "PEER_DATABASE_URL": setup.conninfo}
    command = [sys.executable, "-m", "uvicorn", "peer_app:create_peer_app"]
    command += ["--factory", "--app-dir", str(BENCH_DIR), "--host", HOST]
    command += ["--port", str(port), "--workers", str(setup.args.workers)]
    command += ["--log-level", setup.args.log_level.lower()]
    return Process("peer", command, env, setup.log_path("peer"))


def model_server(args: argparse.Namespace) -> Process:
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / "fake_openai_server.py")]
    command += ["--port", str(port), "--tokens", str(args.tokens)]
    command += ["--first-token-ms", str(args.first_token_ms)]
    command += ["--stream-ms", str(args.stream_ms)]
    return Process("model", command, {**os.environ, "PORT": str(port)})


# -- a streamed turn -------------------------------------------------------------


@dataclass
class Window:
    """The measured interval of a run and what was seen in it."""

    start: float
    end: float
    turns: int = 0
    tokens: int = 0
    overhead_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def inside(self, moment: float) -> bool:
        return self.start <= moment <= self.end


def _error_code(status: int, body: bytes) -> str:
    text = body.split(b"\r\n\r\n", 1)[-1]
    try:
        payload = json.loads(text)
    except ValueError:
        return f"HTTP {status}"
    code = payload.get("error") or payload.get("detail") or ""
    return f"HTTP {status} {code}".strip()


def _stream_error(body: bytes) -> str:
    after = body.split(b"event: error\ndata: ", 1)[1].split(b"\n", 1)[0]
    try:
        return f"stream error {json.loads(after).get('code')}"
    except ValueError:
        return "stream error"


@dataclass
class Reading:
    """What the client saw of one streamed response."""

    sent: float
    received: bytearray = field(default_factory=bytearray)
    first_token: float | None = None


async def read_stream(
    reader: asyncio.StreamReader, reading: Reading, window: Window
) -> None:
    """Read to the end, counting token events as they arrive."""
    tail = b""
    while data := await reader.read(65536):
        now = time.perf_counter()
        # A mark split over two reads is found once, in the read that ends it.
        seen = (tail + data).count(TOKEN_MARK)
        if seen:
            reading.first_token = reading.first_token or now
            if window.inside(now):
                window.tokens += seen
        tail = data[-(len(TOKEN_MARK) - 1) :]
        reading.received += data


def failure(received: bytes) -> str | None:
    """What went wrong with a response, or None for a complete stream."""
    status = int(received.split(b" ", 2)[1]) if received else 0
    if status != 200:
        return _error_code(status, received)
    if b"event: error" in received:
        return _stream_error(received)
    if b"event: done" not in received:
        return "stream cut"
    return None


def account(reading: Reading, window: Window, model_s: float) -> None:
    """Count the turn (or its error) when it ended inside the window."""
    if not window.inside(time.perf_counter()):
        return
    error = failure(bytes(reading.received))
    if error is not None:
        window.errors[error] += 1
        return
    window.turns += 1
    if reading.first_token is not None and window.inside(reading.first_token):
        overhead = reading.first_token - reading.sent - model_s
        window.overhead_ms.append(overhead * 1000)


async def streamed_turn(
    port: int, headers: dict[str, str], body: bytes, window: Window, model_s: float
) -> None:
    """One ``POST /api/chat/stream`` read to the end (``Connection: close``)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    lines = ["POST /api/chat/stream HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    reading = Reading(sent=time.perf_counter())
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    try:
        await read_stream(reader, reading, window)
    finally:
        writer.close()
    account(reading, window, model_s)


@dataclass
class StreamUser:
    user: User
    room: int | str
    app: str
    turn: int = 0

    def body(self) -> bytes:
        self.turn += 1
        word = WORDS[self.turn % len(WORDS)]
        message = f"How do I {word} the server? (turn {self.turn})"
        key = "chat_room_id" if self.app == "ours" else "session_id"
        return json.dumps({"message": message, key: self.room}).encode()

    async def loop(
        self, port: int, window: Window, think_s: float, model_s: float
    ) -> None:
        """Turns with ``think_s`` between them until the window closes."""
        while time.perf_counter() < window.end:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await streamed_turn(
                        port, self.user.headers(), self.body(), window, model_s
                    )
            except (OSError, TimeoutError, IndexError, ValueError) as exc:
                if window.inside(time.perf_counter()):
                    window.errors[type(exc).__name__] += 1
            await asyncio.sleep(think_s)


async def make_rooms(app: str, port: int, users: list[User]) -> list[StreamUser]:
    """A room per user: created through our API; a new session for the peer."""
    if app == "peer":
        return [StreamUser(user, str(uuid.uuid4()), app) for user in users]
    connection = HttpConnection(port)
    rooms = []
    for n, user in enumerate(users):
        body = json.dumps({"title": f"stream {n}"}).encode()
        status, answer = await connection.request(
            "POST", "/api/chat-rooms", user.headers(), body
        )
        if status != 201:
            raise RuntimeError(f"room creation failed: {status} {answer[:300]!r}")
        rooms.append(StreamUser(user, int(json.loads(answer)["id"]), app))
    connection.close()
    return rooms


# -- what is sampled during a run ------------------------------------------------


def tree_cpu_and_rss(pid: int) -> tuple[float, int]:
    """CPU seconds and RSS bytes of a process and its children (workers)."""
    root = psutil.Process(pid)
    cpu, rss = 0.0, 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            cpu += times.user + times.system
            rss += process.memory_info().rss
    return cpu, rss


BUSY_SQL = (
    "select count(*) from pg_stat_activity where application_name = %s"
    " and state in ('active', 'idle in transaction')"
)


@dataclass
class Samples:
    """Sampled while the window is open."""

    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    busy_max: int = 0
    rss_max: int = 0


async def probe_health(port: int, window: Window, samples: Samples) -> None:
    connection = HttpConnection(port)
    while time.perf_counter() < window.end:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, _ = await connection.request("GET", "/health", {})
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            status = 0
            connection.close()
        if window.inside(started):
            if status == 200:
                samples.health_ms.append((time.perf_counter() - started) * 1000)
            else:
                samples.health_failures += 1
        await asyncio.sleep(PROBE_INTERVAL_S)
    connection.close()


def poll_database(
    conninfo: str, application: str, pid: int, window: Window, samples: Samples
) -> None:
    """Runs in a thread: busy connections and RSS until the window closes."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.perf_counter() < window.end:
            if time.perf_counter() >= window.start:
                row = conn.execute(BUSY_SQL, (application,)).fetchone()
                samples.busy_max = max(samples.busy_max, int(row[0]) if row else 0)
                samples.rss_max = max(samples.rss_max, tree_cpu_and_rss(pid)[1])
            time.sleep(SAMPLE_INTERVAL_S)


@dataclass(frozen=True)
class Usage:
    api_cpu_s: float
    postgres_cpu_s: float


async def usage_at(moment: float, pid: int, postmaster_pid: int) -> Usage:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))
    return Usage(tree_cpu_and_rss(pid)[0], postgres_cpu_seconds(postmaster_pid))


# -- one run ---------------------------------------------------------------------


@dataclass
class Run:
    app: str
    users: int
    round: int
    load_1m: float
    window: Window
    samples: Samples
    api_cpu_s: float
    postgres_cpu_s: float

    @property
    def seconds(self) -> float:
        return self.window.end - self.window.start

    @property
    def turns_per_s(self) -> float:
        return self.window.turns / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.window.errors.values())

    @property
    def error_share(self) -> float:
        attempts = self.window.turns + self.error_count
        return self.error_count / attempts if attempts else 0.0

    def overhead(self, q: float) -> float:
        if not self.window.overhead_ms:
            return float("nan")
        return float(np.percentile(np.asarray(self.window.overhead_ms), q))

    def health_p99(self) -> float:
        if not self.samples.health_ms:
            return float("nan")
        return float(np.percentile(np.asarray(self.samples.health_ms), 99))

    @property
    def cpu_per_token_ms(self) -> float:
        tokens = self.window.tokens
        return self.api_cpu_s * 1000 / tokens if tokens else float("nan")

    def row(self) -> str:
        w = self.window
        return (
            f"| {self.users} | {self.app} #{self.round} | {self.load_1m:.1f} "
            f"| {w.turns} | {self.turns_per_s:.1f} "
            f"| {self.error_count} ({self.error_share:.1%}) "
            f"| {self.overhead(50):.0f} / {self.overhead(95):.0f} / "
            f"{self.overhead(99):.0f} | {self.health_p99():.1f} "
            f"| {self.api_cpu_s / self.seconds:.0%} | {self.cpu_per_token_ms:.2f} "
            f"| {self.samples.rss_max / 2**20:.0f} | {self.samples.busy_max} "
            f"| {self.postgres_cpu_s / self.seconds:.0%} |"
        )


async def streaming_run(setup: Setup, app: str, users: list[User], round_: int) -> Run:
    args = setup.args
    server = our_server(setup) if app == "ours" else peer_server(setup)
    await server.start()
    try:
        stream_users = await make_rooms(app, server.port, users)
        load_1m = os.getloadavg()[0]
        now = time.perf_counter()
        window = Window(now + args.warmup, now + args.warmup + args.duration)
        samples = Samples()
        profiler = start_profiler(args, server, app, round_, len(users))
        application = OUR_APPLICATION_NAME if app == "ours" else PEER_APPLICATION_NAME
        model_s = args.first_token_ms / 1000
        jobs: list[Awaitable[object]] = [
            user.loop(server.port, window, args.think, model_s) for user in stream_users
        ]
        jobs.append(probe_health(server.port, window, samples))
        jobs.append(
            asyncio.to_thread(
                poll_database,
                setup.conninfo,
                application,
                server.pid,
                window,
                samples,
            )
        )
        start = usage_at(window.start, server.pid, setup.postmaster_pid)
        end = usage_at(window.end, server.pid, setup.postmaster_pid)
        used = await asyncio.gather(start, end, *jobs)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait, 60)
    finally:
        server.stop()
    first, last = used[0], used[1]
    assert isinstance(first, Usage)
    assert isinstance(last, Usage)
    return Run(
        app,
        len(users),
        round_,
        load_1m,
        window,
        samples,
        last.api_cpu_s - first.api_cpu_s,
        last.postgres_cpu_s - first.postgres_cpu_s,
    )


def start_profiler(
    args: argparse.Namespace, server: Process, app: str, round_: int, users: int
) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of our API in its first run at the first K, if asked."""
    if args.profile is None or app != "ours" or round_ != 1:
        return None
    if users != args.users[0]:
        return None
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy on PATH (or PY_SPY=/path)")
    command = [py_spy, "record", "--pid", str(server.pid), "--rate", "200"]
    command += ["--subprocesses", "--duration", str(int(args.warmup + args.duration))]
    command += ["--format", "raw", "--output", str(args.profile)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603


# -- the instant-model saturation run ---------------------------------------------


@dataclass
class Saturation:
    app: str
    chat_per_s: float
    chat_errors: int
    health_per_s: float
    health_errors: int

    @property
    def ratio(self) -> float:
        return self.health_per_s / self.chat_per_s if self.chat_per_s else float("inf")


async def closed_loops(
    port: int,
    connections: int,
    seconds: float,
    send: Callable[[HttpConnection, int], Awaitable[tuple[int, bytes]]],
) -> tuple[float, int]:
    """Closed loops for ``seconds``: requests answered 200 per second, errors."""
    done, errors = 0, 0
    deadline = time.perf_counter() + seconds

    async def loop(n: int) -> None:
        nonlocal done, errors
        connection = HttpConnection(port)
        while time.perf_counter() < deadline:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, _ = await send(connection, n)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                errors += 1
                connection.close()
                continue
            if status == 200:
                done += 1
            else:
                errors += 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop(n) for n in range(connections)))
    return done / (time.perf_counter() - started), errors


async def saturation_run(setup: Setup, app: str, users: list[User]) -> Saturation:
    args = setup.args
    server = our_server(setup) if app == "ours" else peer_server(setup)
    await server.start()
    try:
        chatters = await make_rooms(app, server.port, users)

        async def chat(connection: HttpConnection, n: int) -> tuple[int, bytes]:
            user = chatters[n]
            return await connection.request(
                "POST", "/api/chat", user.user.headers(), user.body()
            )

        async def health(connection: HttpConnection, _: int) -> tuple[int, bytes]:
            return await connection.request("GET", "/health", {})

        await closed_loops(server.port, len(users), 2.0, chat)  # warm-up
        chat_rate, chat_errors = await closed_loops(
            server.port, len(users), args.saturation_duration, chat
        )
        health_rate, health_errors = await closed_loops(
            server.port, len(users), args.saturation_duration, health
        )
    finally:
        server.stop()
    return Saturation(app, chat_rate, chat_errors, health_rate, health_errors)


# -- the report ------------------------------------------------------------------


@dataclass
class Report:
    args: argparse.Namespace
    started: datetime
    runs: list[Run]
    saturations: list[Saturation]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def header(self) -> list[str]:
        a = self.args
        before = ", ".join(f"{v:.2f}" for v in self.load_before)
        after = ", ".join(f"{v:.2f}" for v in self.load_after)
        return [
            f"# Streaming benchmark{f': {a.label}' if a.label else ''}",
            "",
            f"Run {self.started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s) "
            f"(nproc), load average (1, 5, 15 min) {before} before and {after} "
            f"after. `WORKERS={a.workers}`, `LOG_LEVEL={a.log_level}`. The model: "
            f"{a.tokens} tokens, the first after {a.first_token_ms:.0f} ms, the last "
            f"at {a.stream_ms:.0f} ms; {a.think:.0f} s of think time; {a.chunks} "
            f"shared chunks; {a.warmup:.0f} s of warm-up, then {a.duration:.0f} s "
            "measured per run; runs alternate (ours, peer, ours, peer). The client, "
            "the model server, PostgreSQL and the API share the machine.",
        ]

    def table(self) -> list[str]:
        rows = [
            "| Users | Run | Load 1m | Turns | Turns/s | Errors | TTFT overhead "
            "p50 / p95 / p99 ms | /health p99 ms | API CPU | API CPU ms/token "
            "| API RSS MB | DB conns busy (max) | Postgres CPU |",
            "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        rows += [run.row() for run in self.runs]
        return rows

    def errors(self) -> list[str]:
        lines = []
        for run in self.runs:
            if run.window.errors or run.samples.health_failures:
                kinds = ", ".join(
                    f"{kind}: {n}" for kind, n in run.window.errors.most_common()
                )
                lines.append(
                    f"- {run.app} #{run.round} at {run.users} users: "
                    f"{kinds or 'no turn errors'}; /health failures: "
                    f"{run.samples.health_failures}"
                )
        return lines or ["- none"]

    def saturation(self) -> list[str]:
        if not self.saturations:
            return ["Not run (`--saturation-duration 0`)."]
        rows = [
            "| App | Chat turns/s | Chat errors | /health req/s | /health errors "
            "| Ratio |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows += [
            f"| {s.app} | {s.chat_per_s:.1f} | {s.chat_errors} "
            f"| {s.health_per_s:,.0f} | {s.health_errors} | 1/{s.ratio:.0f} |"
            for s in self.saturations
        ]
        return rows

    def markdown(self) -> str:
        a = self.args
        return "\n".join(
            [
                *self.header(),
                "",
                *self.table(),
                "",
                "TTFT overhead: time from sending the turn to its first `token` "
                f"event, minus the model's own {a.first_token_ms:.0f} ms, for the "
                "turns completed whose first token came in the window. API CPU: "
                "the API's process tree (psutil) over the measured window, as a "
                "share of one core; per token: over the tokens streamed in the "
                "window. DB conns busy: most connections of the app's "
                "`application_name` active or idle in transaction at once "
                "(sampled every 100 ms). Targets (one worker, 2 cores): "
                f"≤ {TARGET_CPU_PER_TOKEN_MS} ms of API CPU per token; at 200 users "
                f"0 errors, overhead p99 < {TARGET_P99_MS:.0f} ms, /health p99 < "
                f"{TARGET_HEALTH_P99_MS:.0f} ms.",
                "",
                "Errors by kind:",
                "",
                *self.errors(),
                "",
                "## Instant-model saturation (same OpenAI-compatible path)",
                "",
                f"{a.saturation_connections} closed loops of `POST /api/chat` (the "
                "model answers at once), then of `GET /health`, "
                f"{a.saturation_duration:.0f} s each, one fresh server per app "
                f"(target for ours: at least 1/{TARGET_RATIO:.0f}).",
                "",
                *self.saturation(),
                "",
            ]
        )


def write_report(path: Path, text: str) -> None:
    """Write the report, keeping the notes section of the file it replaces."""
    notes = ""
    if path.exists():
        old = path.read_text()
        if NOTES_HEADING in old:
            notes = NOTES_HEADING + old.split(NOTES_HEADING, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + ("\n" + notes if notes else ""))


# -- main --------------------------------------------------------------------------


def schedule(args: argparse.Namespace) -> Iterator[tuple[int, int, str]]:
    for users in args.users:
        for round_ in range(1, args.rounds + 1):
            for app in args.apps:
                yield users, round_, app


async def measure(
    setup: Setup, users: list[User]
) -> tuple[list[Run], list[Saturation]]:
    args = setup.args
    runs = []
    for k, round_, app in schedule(args):
        log(f"{app} #{round_} at {k} users ...")
        run = await streaming_run(setup, app, users[:k], round_)
        log(
            f"  {run.turns_per_s:.1f} turns/s, errors {run.error_count}, overhead "
            f"p50/p99 {run.overhead(50):.0f}/{run.overhead(99):.0f} ms, "
            f"{run.cpu_per_token_ms:.2f} ms CPU/token"
        )
        runs.append(run)
    saturations = []
    if args.saturation_duration > 0:
        for app in args.apps:
            log(f"{app}: instant-model saturation ...")
            saturation = await saturation_run(
                setup, app, users[: args.saturation_connections]
            )
            log(f"  1/{saturation.ratio:.0f} ({saturation.chat_per_s:.1f} turns/s)")
            saturations.append(saturation)
    return runs, saturations


async def run_all(
    args: argparse.Namespace, database_url: str, conninfo: str, postmaster_pid: int
) -> Report:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    how_many = max([*args.users, args.saturation_connections])
    users = await asyncio.to_thread(create_users, conninfo, how_many)
    model = model_server(args)
    await model.start(ready_path=None)
    try:
        setup = Setup(
            args,
            database_url,
            conninfo,
            f"http://{HOST}:{model.port}/v1",
            postmaster_pid,
        )
        runs, saturations = await measure(setup, users)
    finally:
        model.stop()
    return Report(args, started, runs, saturations, load_before, os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def numbers(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part]

    def names(text: str) -> list[str]:
        apps = [part for part in text.split(",") if part]
        if not set(apps) <= {"ours", "peer"}:
            raise argparse.ArgumentTypeError("apps: ours, peer")
        return apps

    parser.add_argument("--users", type=numbers, default=[50, 100, 200, 500])
    parser.add_argument("--duration", type=float, default=40.0, help="seconds/run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds/run")
    parser.add_argument("--rounds", type=int, default=2, help="ours, peer per round")
    parser.add_argument("--apps", type=names, default=["ours", "peer"])
    parser.add_argument("--think", type=float, default=1.0, help="seconds")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="both servers'")
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--first-token-ms", type=float, default=300.0)
    parser.add_argument("--stream-ms", type=float, default=3300.0)
    parser.add_argument("--chunks", type=int, default=2000, help="shared chunks")
    parser.add_argument("--saturation-connections", type=int, default=50)
    parser.add_argument(
        "--saturation-duration", type=float, default=15.0, help="0 skips it"
    )
    parser.add_argument("--label", default="", help="title of the results")
    parser.add_argument("--profile", type=Path, help="py-spy raw output (ours)")
    parser.add_argument("--logs", type=Path, help="keep each server's log here")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results" / "streaming.md"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="ragchat-streaming-") as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            conninfo = postgres.conninfo()
            apply_compat_layer(conninfo)
            apply_migrations(conninfo)
            apply_seed(conninfo)  # the admins' personas, as `make run` has them
            load_knowledge(conninfo, args.chunks)
            postmaster_pid = int(
                (postgres.data_dir / "postmaster.pid").read_text().split()[0]
            )
            report = uvloop.run(run_all(args, postgres.url(), conninfo, postmaster_pid))
        finally:
            postgres.stop()
    text = report.markdown()
    write_report(args.output, text)
    print(text)


if __name__ == "__main__":
    main()
