"""Load benchmark: the chat path against the framework's floor (``GET /health``).

What runs:
  * its own embedded PostgreSQL in a temporary folder (deleted afterwards),
    made Supabase-like and migrated, with a small shared knowledge base
    (``--chunks`` chunks with random vectors, so retrieval does real work);
  * one ``uvicorn`` process on 127.0.0.1 (one worker; uvloop and httptools, as
    ``make run`` picks them) serving the normal app with AI providers of
    constant cost (``bench/bench_app.py``): model compute is taken out, every
    other part of a chat turn is real (JWT check, the row-level-security
    transaction that saves the message and runs the hybrid retrieval SQL,
    prompt building, the LangChain call, saving the answer);
  * ``--connections`` users, each with their own token, room and keep-alive
    connection, in closed loops (send, wait for the answer, send again) for a
    fixed time: first ``GET /health``, then ``POST /api/chat`` (after a
    warm-up);
  * the same users paced at ``--paced-fraction`` (80%) of the chat throughput
    just measured, evenly spread, latency counted from each request's
    scheduled time: the latency of a busy but not saturated server.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (uvloop):
a heavier client (httpx) would cap ``/health`` well below what the server does
and flatter the ratio. Client, server and PostgreSQL share this machine's
cores, so the CPU time each request costs the API process and PostgreSQL is
reported too (from /proc): it does not depend on what else the machine runs.

Afterwards the database is checked: every accepted chat request stored exactly
one user and one assistant message, with the ids the API answered, and nothing
else. Results go to ``bench/results/load.md`` and stdout; the exit status is 1
when a request failed or the stored rows do not match.

Usage: ``make bench`` (``BENCH_ARGS="--connections 100 --duration 60"``), or
``python ../../bench/load_bench.py --help`` from ``backend-py/app``;
``--profile out.txt`` records the server with py-spy during the chat phase;
``--statements 15`` prints the statements PostgreSQL spent the chat phase on
(pg_stat_statements, planning included).
"""

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import jwt
import numpy as np
import psycopg
import uvloop

BENCH_DIR = Path(__file__).resolve().parent
APP_DIR = BENCH_DIR.parent / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))

from src.cli.token import supabase_claims  # noqa: E402
from src.infra.embedded_postgres import (  # noqa: E402
    EmbeddedServer,
    start_embedded_postgres,
)
from src.infra.migrations import (  # noqa: E402
    apply_compat_layer,
    apply_migrations,
    apply_seed,
)
from src.settings import DEV_JWT_SECRET  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
from bench_app import DIMENSIONS, EMBEDDING_MODEL  # noqa: E402

HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0
TARGET_RATIO = 30.0
TARGET_P99_MS = 150.0
CHUNKS_PER_DOCUMENT = 10
SEED = 20261122
WORDS = [
    "install",
    "configure",
    "server",
    "database",
    "backup",
    "restore",
    "token",
    "user",
    "room",
    "message",
    "search",
    "index",
    "vector",
    "guide",
    "policy",
    "network",
    "cache",
    "worker",
    "retry",
    "timeout",
    "upload",
    "document",
    "persona",
    "answer",
    "source",
    "latency",
    "throughput",
    "shutdown",
]
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- a minimal HTTP/1.1 keep-alive client --------------------------------------


class HttpConnection:
    """One keep-alive connection to the server; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send a request and read the whole response (Content-Length framed)."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
            sock = self._writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            self.close()
            raise ConnectionError("response without Content-Length")
        return status, await self._reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# -- CPU time from /proc -------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU time of a process (and of its reaped children)."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(postmaster_pid: int) -> float:
    """CPU time of the postmaster and of every backend it runs or ran."""
    total = cpu_seconds(postmaster_pid, with_children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        try:
            if int(_stat_fields(pid)[1]) == postmaster_pid:
                total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    return total


@dataclass(frozen=True)
class CpuMeter:
    """Reads the CPU time spent so far by the API process and PostgreSQL.

    Also the number of database sessions opened so far: a pool that keeps
    opening connections under load costs both sides a lot.
    """

    server_pid: int
    postmaster_pid: int
    conninfo: str

    def read(self) -> tuple[float, float, int]:
        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute(
                "select sessions from pg_stat_database"
                " where datname = current_database()"
            ).fetchone()
        return (
            cpu_seconds(self.server_pid),
            postgres_cpu_seconds(self.postmaster_pid),
            int(row[0]) if row else 0,
        )


# -- closed loops ----------------------------------------------------------------


@dataclass
class Phase:
    """Latencies, outcomes and CPU time of one load phase."""

    name: str
    connections: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    sessions_opened: int = 0

    @property
    def accepted(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies_ms), q))

    def cpu_ms_per_request(self, seconds: float) -> float:
        return seconds * 1000 / self.accepted if self.accepted else float("nan")


@dataclass
class Loop:
    """One connection's closed loop: what it sends and what counts as success."""

    connection: HttpConnection
    send: Callable[[HttpConnection], Awaitable[tuple[int, bytes]]]
    accept: Callable[[int, bytes], bool]

    async def run(self, phase: Phase, deadline: float) -> None:
        """Send, wait, send again until the deadline; the last request completes."""
        while time.perf_counter() < deadline:
            await self.send_once(phase, since=time.perf_counter())

    async def run_paced(
        self, phase: Phase, deadline: float, interval: float, first: float
    ) -> None:
        """Send one request every ``interval`` seconds, from ``first`` on.

        Latency counts from the scheduled time, so a slow answer that delays
        the next request is charged to it too (no coordinated omission).
        """
        scheduled = first
        while scheduled < deadline:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            await self.send_once(phase, since=scheduled)
            scheduled += interval

    async def send_once(self, phase: Phase, *, since: float) -> None:
        """One request; its latency counts from ``since``."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, body = await self.send(self.connection)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            phase.errors[type(exc).__name__] += 1
            self.connection.close()
            return
        if self.accept(status, body):
            phase.latencies_ms.append((time.perf_counter() - since) * 1000)
        else:
            phase.errors[f"HTTP {status}"] += 1


async def run_phase(
    phase: Phase,
    loops: Sequence[Loop],
    seconds: float,
    meter: CpuMeter,
    *,
    rate: float | None = None,
) -> Phase:
    """Run every loop for ``seconds``; records latencies and CPU time.

    Closed loops by default; with ``rate``, each connection sends at its share
    of ``rate`` requests/s, spread evenly (users who read the answer first).
    """
    server_cpu, postgres_cpu, sessions = meter.read()
    client_cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    if rate is None:
        await asyncio.gather(*(loop.run(phase, deadline) for loop in loops))
    else:
        interval = len(loops) / rate
        await asyncio.gather(
            *(
                loop.run_paced(
                    phase, deadline, interval, started + interval * n / len(loops)
                )
                for n, loop in enumerate(loops)
            )
        )
    phase.seconds = time.perf_counter() - started
    phase.client_cpu_s = time.process_time() - client_cpu
    server_end, postgres_end, sessions_end = meter.read()
    phase.server_cpu_s = server_end - server_cpu
    # The meter's own session is one of the new ones.
    phase.postgres_cpu_s = postgres_end - postgres_cpu
    phase.sessions_opened = sessions_end - sessions - 1
    return phase


def health_loops(port: int, connections: int) -> list[Loop]:
    async def send(connection: HttpConnection) -> tuple[int, bytes]:
        return await connection.request("GET", "/health", {})

    def accept(status: int, body: bytes) -> bool:
        return status == 200 and body == b'{"status":"ok"}'

    return [Loop(HttpConnection(port), send, accept) for _ in range(connections)]


@dataclass
class ChatLedger:
    """The message ids the API answered with, to check against the database."""

    user_message_ids: set[int] = field(default_factory=set)
    ai_message_ids: set[int] = field(default_factory=set)
    duplicates: int = 0

    def record(self, answer: dict[str, int]) -> None:
        for key, seen in (
            ("user_message_id", self.user_message_ids),
            ("ai_message_id", self.ai_message_ids),
        ):
            if answer[key] in seen:
                self.duplicates += 1
            seen.add(answer[key])


@dataclass
class ChatUser:
    """A user of the benchmark, posting to their own room."""

    id: uuid.UUID
    token: str
    room_id: int = 0
    turns: "count[int]" = field(default_factory=count)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
        }

    async def send(self, connection: HttpConnection) -> tuple[int, bytes]:
        turn = next(self.turns)
        message = f"How do I {WORDS[turn % len(WORDS)]} the server? (turn {turn})"
        body = json.dumps({"message": message, "chat_room_id": self.room_id})
        return await connection.request(
            "POST", "/api/chat", self.headers, body.encode()
        )

    def accepts(self, ledger: ChatLedger) -> Callable[[int, bytes], bool]:
        def accept(status: int, body: bytes) -> bool:
            if status != 200:
                return False
            answer = json.loads(body)
            if answer["chat_room_id"] != self.room_id or not answer["sources"]:
                return False
            ledger.record(answer)
            return True

        return accept


def chat_loops(port: int, users: list[ChatUser], ledger: ChatLedger) -> list[Loop]:
    return [
        Loop(HttpConnection(port), user.send, user.accepts(ledger)) for user in users
    ]


# -- the database ----------------------------------------------------------------


def create_users(conninfo: str, how_many: int) -> list[ChatUser]:
    """Users in ``auth.users`` (the signup trigger adds ``general_users``)."""
    users = []
    with psycopg.connect(conninfo) as conn:
        for n in range(how_many):
            user_id = uuid.uuid4()
            email = f"load-{n}-{user_id.hex[:8]}@bench.example"
            conn.execute(
                "insert into auth.users (id, email, aud, role) "
                "values (%s, %s, 'authenticated', 'authenticated')",
                (user_id, email),
            )
            claims = supabase_claims(user_id, email=email, expires_in=24 * 3600)
            token = jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")
            users.append(ChatUser(user_id, token))
    return users


def load_knowledge(
    conninfo: str,
    chunks: int,
    *,
    embedding_model: str = EMBEDDING_MODEL,
    dimensions: int = DIMENSIONS,
    seed: int = SEED,
) -> None:
    """Shared, ready documents whose chunks have random unit vectors."""
    rng = np.random.default_rng(seed)
    documents = max(chunks // CHUNKS_PER_DOCUMENT, 1)
    with psycopg.connect(conninfo) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "insert into documents (title, content, status, embedding_model,"
                " chunk_count) select 'Guide ' || g, 'guide ' || g, 'ready', %s, %s"
                " from generate_series(1, %s) g returning id",
                (embedding_model, CHUNKS_PER_DOCUMENT, documents),
            )
        ]
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "copy document_chunks (document_id, chunk_index, content,"
                " token_count, embedding, embedding_model) from stdin"
            ) as copy,
        ):
            for n in range(documents * CHUNKS_PER_DOCUMENT):
                vector = rng.standard_normal(dimensions)
                vector /= np.linalg.norm(vector)
                words = " ".join(rng.choice(WORDS, size=120))
                copy.write_row(
                    (
                        ids[n // CHUNKS_PER_DOCUMENT],
                        n % CHUNKS_PER_DOCUMENT,
                        f"Section {n}. {words.capitalize()}.",
                        150,
                        "[" + ",".join(f"{v:.6f}" for v in vector) + "]",
                        embedding_model,
                    )
                )
        conn.execute("analyze documents, document_chunks")


@dataclass(frozen=True)
class StoredCounts:
    """What the database holds for the benchmark's rooms."""

    user_messages: int
    assistant_messages: int
    other_messages: int
    missing_ids: int


def stored_counts(conninfo: str, rooms: list[int], answered: set[int]) -> StoredCounts:
    """Row counts of the rooms, and answered message ids not in the database."""
    with psycopg.connect(conninfo) as conn:
        by_role: dict[str, int] = dict(
            conn.execute(
                "select role, count(*) from messages where chat_room_id = any(%s)"
                " group by role",
                (rooms,),
            ).fetchall()
        )
        stored_ids = {
            row[0]
            for row in conn.execute(
                "select id from messages where chat_room_id = any(%s)", (rooms,)
            )
        }
    return StoredCounts(
        user_messages=by_role.pop("user", 0),
        assistant_messages=by_role.pop("assistant", 0),
        other_messages=sum(by_role.values()),
        missing_ids=len(answered - stored_ids),
    )


# -- the server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class BenchServer:
    """``uvicorn bench_app:create_bench_app`` in a subprocess, on 127.0.0.1."""

    def __init__(self, database_url: str, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "LOG_LEVEL": args.log_level,
            "LOG_JSON": "true",
            "OPENAI_API_KEY": "",
            "LANGSMITH_TRACING": "false",
            "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,  # the tokens minted here
            # Per-user rate limits would stop a closed loop; this measures cost.
            "RATE_LIMIT_CHAT_PER_MINUTE": "1000000",
            "RATE_LIMIT_INGEST_PER_MINUTE": "1000000",
        }
        if args.pool_size:
            self.env["DB_POOL_SIZE"] = str(args.pool_size)
        self.command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench_app:create_bench_app",
            "--factory",
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.to_thread(
            subprocess.Popen,  # our own interpreter, constant arguments
            self.command,
            cwd=APP_DIR,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        probe = HttpConnection(self.port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"server exited:\n{stderr.decode()[-3000:]}")
            try:
                status, _ = await probe.request("GET", "/health/ready", {})
                if status == 200:
                    probe.close()
                    return
            except OSError:
                probe.close()
            await asyncio.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def create_rooms(port: int, users: list[ChatUser]) -> None:
    connection = HttpConnection(port)
    for n, user in enumerate(users):
        body = json.dumps({"title": f"load {n}"}).encode()
        status, answer = await connection.request(
            "POST", "/api/chat-rooms", user.headers, body
        )
        if status != 201:
            raise RuntimeError(f"room creation failed: {status} {answer[:300]!r}")
        user.room_id = int(json.loads(answer)["id"])
    connection.close()


def start_profiler(
    args: argparse.Namespace, server: BenchServer
) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the server during the chat phase, when asked for."""
    if args.profile is None:
        return None
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy on PATH (or PY_SPY=/path)")
    command = [py_spy, "record", "--pid", str(server.pid), "--rate", "100"]
    command += ["--duration", str(int(args.duration))]
    command += ["--format", args.profile_format, "--output", str(args.profile)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603


# -- the report ------------------------------------------------------------------


@dataclass
class Report:
    """Everything measured in one run."""

    args: argparse.Namespace
    health: Phase
    warmup: Phase
    chat: Phase
    paced: Phase
    counts: StoredCounts
    ledger: ChatLedger

    @property
    def ratio(self) -> float:
        return self.health.throughput / self.chat.throughput

    @property
    def accepted_chat(self) -> int:
        return self.warmup.accepted + self.chat.accepted + self.paced.accepted

    @property
    def error_count(self) -> int:
        phases = (self.health, self.warmup, self.chat, self.paced)
        return sum(p.error_count for p in phases)

    @property
    def stored_exactly_once(self) -> bool:
        c = self.counts
        return (
            c.user_messages == self.accepted_chat
            and c.assistant_messages == self.accepted_chat
            and c.other_messages == 0
            and c.missing_ids == 0
            and self.ledger.duplicates == 0
        )

    @property
    def throughput_met(self) -> bool:
        return self.ratio <= TARGET_RATIO and self.error_count == 0

    @property
    def latency_met(self) -> bool:
        return self.chat.percentile(99) < TARGET_P99_MS and self.error_count == 0

    @property
    def closed_loop_mean_ms(self) -> float:
        """Little's law: a closed loop's mean latency is connections / rate."""
        return self.chat.connections / self.chat.throughput * 1000

    def _phase_rows(self) -> list[str]:
        rows = [
            "| Scenario | Connections | Seconds | Requests | Requests/s | p50 ms "
            "| p95 ms | p99 ms | max ms | Errors | API CPU ms/req | Postgres CPU "
            "ms/req | Client CPU ms/req | DB sessions opened |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in (self.health, self.chat, self.paced):
            rows.append(
                f"| {p.name} | {p.connections} | {p.seconds:.1f} | {p.accepted} "
                f"| {p.throughput:,.0f} | {p.percentile(50):.1f} "
                f"| {p.percentile(95):.1f} | {p.percentile(99):.1f} "
                f"| {max(p.latencies_ms, default=float('nan')):.1f} "
                f"| {p.error_count} | {p.cpu_ms_per_request(p.server_cpu_s):.2f} "
                f"| {p.cpu_ms_per_request(p.postgres_cpu_s):.2f} "
                f"| {p.cpu_ms_per_request(p.client_cpu_s):.2f} "
                f"| {p.sessions_opened} |"
            )
        return rows

    def markdown(self) -> str:
        a, c = self.args, self.counts
        errors = dict(
            self.health.errors
            + self.warmup.errors
            + self.chat.errors
            + self.paced.errors
        )
        throughput = "met" if self.throughput_met else "NOT met"
        latency = "met" if self.latency_met else "NOT met"
        return "\n".join(
            [
                "# Load benchmark",
                "",
                f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} "
                f"CPU(s), Python {platform.python_version()}: one uvicorn worker "
                "(uvloop, httptools); the client and PostgreSQL share the "
                f"machine. Chat with constant-cost providers, {a.chunks} shared "
                f"chunks, `DB_POOL_SIZE={a.pool_size or 'default'}`, "
                f"`LOG_LEVEL={a.log_level}`, after a {a.warmup:.0f} s warm-up.",
                "",
                *self._phase_rows(),
                "",
                "CPU ms/req: CPU time of the API process (one core at most), "
                "of PostgreSQL (from /proc) and of this benchmark's client per "
                "accepted request.",
                "",
                f"- Chat throughput is **1/{self.ratio:.1f}** of `/health` "
                f"(target: at least 1/{TARGET_RATIO:.0f}): **{throughput}**.",
                f"- Chat p99 is **{self.chat.percentile(99):.1f} ms** (target: "
                f"under {TARGET_P99_MS:.0f} ms at 50 connections): **{latency}**. "
                f"In this closed loop the mean latency is connections / "
                f"throughput = {self.closed_loop_mean_ms:.0f} ms (Little's law).",
                f"- Errors: {errors or 'none'}.",
                f"- Paced: the same 50 users sending {self.args.paced_fraction:.0%} "
                "of that throughput, evenly spread (latency counted from each "
                "request's scheduled time): p99 "
                f"**{self.paced.percentile(99):.1f} ms**.",
                f"- Stored afterwards (warm-up {self.warmup.accepted} + measured "
                f"{self.chat.accepted} + paced {self.paced.accepted} = "
                f"{self.accepted_chat} accepted chat "
                f"requests): {c.user_messages} user messages, "
                f"{c.assistant_messages} assistant messages, {c.other_messages} "
                f"other; answered ids missing from the database: {c.missing_ids}; "
                f"ids answered twice: {self.ledger.duplicates}. Every accepted "
                "message stored exactly once: "
                f"**{'yes' if self.stored_exactly_once else 'NO'}**.",
                "",
            ]
        )


STATEMENT_STATS_SQL = """
select calls, total_plan_time + total_exec_time as total_ms,
       total_plan_time as plan_ms, toplevel,
       regexp_replace(left(query, 110), '\\s+', ' ', 'g') as query
  from extensions.pg_stat_statements
 where query not ilike '%%pg_stat_statements%%'
 order by 2 desc
 limit %s
"""


def enable_statement_stats(postgres: EmbeddedServer) -> EmbeddedServer:
    """Restart the bench server with pg_stat_statements (planning tracked too)."""
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute("alter system set shared_preload_libraries = 'pg_stat_statements'")
        conn.execute("alter system set pg_stat_statements.track = 'all'")
        conn.execute("alter system set pg_stat_statements.track_planning = on")
    data_dir = postgres.data_dir
    postgres.stop()
    return start_embedded_postgres(data_dir, cleanup_mode="delete")


def reset_statement_stats(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select extensions.pg_stat_statements_reset()")


def print_statement_stats(conninfo: str, limit: int, requests: int) -> None:
    """The statements of the chat phase, most expensive first, per request."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(STATEMENT_STATS_SQL, (limit,)).fetchall()
    print(f"PostgreSQL time per chat request ({requests} requests), top {limit}:")
    print("  ms/req  plan ms/req  calls/req  top  statement")
    for calls, total_ms, plan_ms, toplevel, query in rows:
        print(
            f"  {total_ms / requests:6.3f}  {plan_ms / requests:11.3f}  "
            f"{calls / requests:9.2f}  {'y' if toplevel else 'n':>3}  {query}"
        )


async def measure(
    args: argparse.Namespace, conninfo: str, url: str, postmaster_pid: int
) -> Report:
    users = await asyncio.to_thread(create_users, conninfo, args.connections)
    server = BenchServer(url, args)
    await server.start()
    meter = CpuMeter(server.pid, postmaster_pid, conninfo)
    try:
        await create_rooms(server.port, users)
        log(f"server on port {server.port}; {len(users)} users with a room each")
        health = await run_phase(
            Phase("GET /health", args.connections),
            health_loops(server.port, args.connections),
            args.health_duration,
            meter,
        )
        log(f"/health: {health.throughput:,.0f} req/s, errors {health.error_count}")
        ledger = ChatLedger()
        loops = chat_loops(server.port, users, ledger)
        warmup = await run_phase(
            Phase("chat warm-up", args.connections), loops, args.warmup, meter
        )
        profiler = start_profiler(args, server)
        if args.statements:
            await asyncio.to_thread(reset_statement_stats, conninfo)
        chat = await run_phase(
            Phase("POST /api/chat", args.connections), loops, args.duration, meter
        )
        log(f"chat: {chat.throughput:,.0f} req/s, errors {chat.error_count}")
        rate = round(chat.throughput * args.paced_fraction)
        paced = await run_phase(
            Phase(f"POST /api/chat, paced at {rate} req/s", args.connections),
            loops,
            args.paced_duration,
            meter,
            rate=rate,
        )
        log(f"paced chat: p99 {paced.percentile(99):.0f} ms at {rate} req/s")
        if profiler is not None:
            await asyncio.to_thread(profiler.wait, 60)
        if args.statements:
            await asyncio.to_thread(
                print_statement_stats, conninfo, args.statements, chat.accepted
            )
        for loop in loops:
            loop.connection.close()
    finally:
        server.stop()
    answered = ledger.user_message_ids | ledger.ai_message_ids
    rooms = [user.room_id for user in users]
    counts = await asyncio.to_thread(stored_counts, conninfo, rooms, answered)
    return Report(args, health, warmup, chat, paced, counts, ledger)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="chat seconds")
    parser.add_argument("--health-duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="chat seconds")
    parser.add_argument("--chunks", type=int, default=2000, help="shared chunks")
    parser.add_argument(
        "--paced-fraction",
        type=float,
        default=0.8,
        help="paced phase: this share of the closed-loop chat throughput",
    )
    parser.add_argument(
        "--paced-duration", type=float, default=15.0, help="paced chat seconds"
    )
    parser.add_argument("--pool-size", type=int, default=None, help="DB_POOL_SIZE")
    parser.add_argument("--log-level", default="WARNING", help="the server's")
    parser.add_argument("--profile", type=Path, help="py-spy output of the server")
    parser.add_argument(
        "--statements", type=int, default=0, help="print the top N SQL statements"
    )
    parser.add_argument(
        "--profile-format", default="raw", choices=["raw", "flamegraph", "speedscope"]
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results" / "load.md"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ragchat-load-") as tmp:
        if args.statements:  # a restart with the extension preloaded
            postgres = enable_statement_stats(
                start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="stop")
            )
        else:
            postgres = start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            conninfo = postgres.conninfo()
            apply_compat_layer(conninfo)
            apply_migrations(conninfo)
            if args.statements:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(
                        "create extension pg_stat_statements schema extensions"
                    )
            load_knowledge(conninfo, args.chunks)
            apply_seed(conninfo)  # the admins' personas, as `make run` has them
            postmaster_pid = int(
                (postgres.data_dir / "postmaster.pid").read_text().split()[0]
            )
            report = uvloop.run(measure(args, conninfo, postgres.url(), postmaster_pid))
        finally:
            postgres.stop()
    text = report.markdown()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    sys.exit(0 if report.stored_exactly_once and report.error_count == 0 else 1)


if __name__ == "__main__":
    main()
