"""Room events benchmark: a post's delay to every member's open stream, and memory.

What runs, all on 127.0.0.1:
  * its own embedded PostgreSQL in a temporary folder (deleted afterwards),
    made Supabase-like, migrated and seeded (the admins' personas);
  * the API as ``make run`` serves it (``python -m src.cli.serve``, one
    worker, offline AI providers), rate limits raised so the posts are not
    refused; the pool (unless ``--pool-size``) and every other setting as
    shipped;
  * ``--members`` users with their own tokens, in rooms of ``--room-size``
    (the first of each room creates it and adds the others through the API).

Then:
  1. warm-up: one stream per room, one post per room, read, closed;
  2. the API's RSS with no stream open, then with every member's stream of
     ``GET /api/chat-rooms/{id}/events`` open and idle (each has received
     the comment sent once it is subscribed): memory per idle stream;
  3. phases of ``--duration`` seconds: posts at ``--rate`` per second, spread
     evenly over the rooms, each by the next member of its room, without a
     mention of the persona (``plain``), then (``--mention-every N``) every
     N-th post mentions ``@Assistant`` (the persona answers: ``answer.*``
     events and the answer's ``message`` on every stream). For each person's
     post, the delay from the client's send to its ``message`` event on each
     stream of the room; missing and duplicate events after ``--drain``
     seconds; the API's and PostgreSQL's CPU over the phase.

The client is asyncio streams (uvloop): one socket per stream, its SSE parsed
by hand; posts through ``load_bench.HttpConnection``. Every phase stops by
itself. Results go to ``--output`` (``bench/results/rooms.md``), keeping
whatever follows its notes heading, and to stdout; the exit status is 1 when
an event is missing or a post failed.

Usage: ``make bench-rooms`` (``ROOMS_ARGS="--members 500 --room-size 50
--rate 5"``), or ``python ../../bench/room_events_bench.py --help`` from
``backend-py/app``. ``--profile out.txt`` records the API with py-spy during
the first phase.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import numpy as np
import uvloop

BENCH_DIR = Path(__file__).resolve().parent
APP_DIR = BENCH_DIR.parent / "backend-py" / "app"
sys.path.insert(0, str(APP_DIR))
sys.path.insert(0, str(BENCH_DIR))

from load_bench import HttpConnection, free_port, postgres_cpu_seconds  # noqa: E402
from streaming_bench import (  # noqa: E402
    NOTES_HEADING,
    Process,
    User,
    create_users,
    tree_cpu_and_rss,
    write_report,
)

from src.infra.embedded_postgres import start_embedded_postgres  # noqa: E402
from src.infra.migrations import (  # noqa: E402
    apply_compat_layer,
    apply_migrations,
    apply_seed,
)
from src.settings import DEV_JWT_SECRET  # noqa: E402

HOST = "127.0.0.1"
PERSONA = "Assistant"
"""The seeded default persona every room gets."""
REQUEST_TIMEOUT_S = 30.0
OPEN_CONCURRENCY = 50
SETTLE_S = 3.0
TARGET_P99_MS = 100.0
TARGET_KB_PER_STREAM = 50.0
_SEQ = re.compile(r"^bench #(\d+) ")

__all__ = ["NOTES_HEADING"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the server ------------------------------------------------------------------


def api_server(database_url: str, args: argparse.Namespace) -> Process:
    port = free_port()
    env = {
        **os.environ,
        "HOST": HOST,
        "PORT": str(port),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "WORKERS": "1",
        "LOG_LEVEL": args.log_level,
        "LOG_JSON": "true",
        "OPENAI_API_KEY": "",  # the offline providers
        "LANGSMITH_TRACING": "false",
        "SUPABASE_JWT_SECRET": DEV_JWT_SECRET,
        # Posts come at a fixed rate from few members: nothing to limit here.
        "RATE_LIMIT_CHAT_PER_MINUTE": "1000000",
    }
    if args.pool_size:
        env["DB_POOL_SIZE"] = str(args.pool_size)
    return Process("api", [sys.executable, "-m", "src.cli.serve"], env)


@dataclass
class Room:
    id: int
    members: list[User]
    posts: int = 0

    def next_poster(self) -> User:
        self.posts += 1
        return self.members[self.posts % len(self.members)]


async def create_rooms(port: int, users: list[User], size: int) -> list[Room]:
    """Rooms of ``size`` members: the first creates it and adds the others."""
    connection = HttpConnection(port)
    rooms = []
    for start in range(0, len(users), size):
        members = users[start : start + size]
        owner = members[0]
        body = json.dumps({"title": f"room {start // size}"}).encode()
        status, answer = await connection.request(
            "POST", "/api/chat-rooms", owner.headers(), body
        )
        if status != 201:
            raise RuntimeError(f"room creation failed: {status} {answer[:300]!r}")
        room = Room(int(json.loads(answer)["id"]), members)
        for member in members[1:]:
            body = json.dumps({"user_id": str(member.id)}).encode()
            status, answer = await connection.request(
                "POST", f"/api/chat-rooms/{room.id}/members", owner.headers(), body
            )
            if status != 201:
                raise RuntimeError(f"adding a member: {status} {answer[:300]!r}")
        rooms.append(room)
    connection.close()
    return rooms


# -- the streams -----------------------------------------------------------------


@dataclass
class Ledger:
    """Posts sent and the ``message`` events they produced, on every stream."""

    sent: dict[int, float] = field(default_factory=dict)
    room_of: dict[int, int] = field(default_factory=dict)
    accepted: set[int] = field(default_factory=set)
    post_errors: Counter[str] = field(default_factory=Counter)
    mentions: set[int] = field(default_factory=set)
    received: Counter[int] = field(default_factory=Counter)
    delays_ms: list[float] = field(default_factory=list)
    last_ms: dict[int, float] = field(default_factory=dict)
    first_ms: dict[int, float] = field(default_factory=dict)
    post_ms: list[float] = field(default_factory=list)
    answers: Counter[int] = field(default_factory=Counter)
    other_events: Counter[str] = field(default_factory=Counter)

    def on_message(self, data: bytes, now: float) -> None:
        message = json.loads(data)
        if message["role"] == "assistant":
            self.answers[int(message["chat_room_id"])] += 1
            return
        found = _SEQ.match(message["content"])
        if found is None:
            self.other_events["message (not ours)"] += 1
            return
        seq = int(found.group(1))
        sent = self.sent.get(seq)
        if sent is None:
            self.other_events["message (warm-up)"] += 1
            return
        self.received[seq] += 1
        delay = (now - sent) * 1000
        self.delays_ms.append(delay)
        self.last_ms[seq] = max(self.last_ms.get(seq, 0.0), delay)
        self.first_ms[seq] = min(self.first_ms.get(seq, delay), delay)


class Stream:
    """One member's open ``GET /api/chat-rooms/{id}/events``."""

    def __init__(self, port: int, room: Room, user: User, ledger: Ledger) -> None:
        self.port = port
        self.room = room
        self.user = user
        self.ledger = ledger
        self.subscribed = asyncio.Event()
        self.status = 0
        self.ended = False
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect, check the status, read in a task until closed."""
        reader, writer = await asyncio.open_connection(HOST, self.port)
        writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        self._writer = writer
        lines = [
            f"GET /api/chat-rooms/{self.room.id}/events HTTP/1.1",
            f"Host: {HOST}:{self.port}",
            f"Authorization: Bearer {self.user.token}",
            "Accept: text/event-stream",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 200:
            raise RuntimeError(f"stream refused: {head[:200]!r}")
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Chunked SSE: events end with a blank line; chunk framing is skipped."""
        buffer = b""
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                now = time.perf_counter()
                buffer += data
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    self._on_event(event, now, self.ledger)
        self.ended = True

    def _on_event(self, block: bytes, now: float, ledger: Ledger) -> None:
        # Chunk sizes sit on lines of their own ("\r\n3f\r\n"): skip them.
        lines = [line for line in block.split(b"\n") if b":" in line]
        if not lines or lines[-1].startswith(b": keep-alive"):
            self.subscribed.set()
            return
        kind = b""
        for line in lines:
            if line.startswith(b"event: "):
                kind = line[7:].strip()
            elif line.startswith(b"data: ") and kind == b"message":
                ledger.on_message(line[6:], now)
                return
        ledger.other_events[kind.decode() or "comment"] += 1

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def open_streams(
    port: int, members: list[tuple[Room, User]], ledger: Ledger
) -> tuple[list[Stream], float]:
    """The members' streams, subscribed; and the seconds it took."""
    streams = [Stream(port, room, user, ledger) for room, user in members]
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(stream: Stream) -> None:
        async with gate, asyncio.timeout(REQUEST_TIMEOUT_S):
            await stream.open()
            await stream.subscribed.wait()

    started = time.perf_counter()
    await asyncio.gather(*(open_one(stream) for stream in streams))
    return streams, time.perf_counter() - started


# -- posting ---------------------------------------------------------------------


class Poster:
    """Posts over a few keep-alive connections (one request each at a time)."""

    def __init__(self, port: int, ledger: Ledger) -> None:
        self.port = port
        self.ledger = ledger
        self._idle: list[HttpConnection] = []

    async def post(self, seq: int, room: Room, *, mention: bool) -> None:
        user = room.next_poster()
        call = f" @{PERSONA}, what do you say?" if mention else ""
        content = f"bench #{seq} from member {room.posts} of room {room.id}.{call}"
        body = json.dumps({"content": content}).encode()
        connection = self._idle.pop() if self._idle else HttpConnection(self.port)
        self.ledger.room_of[seq] = room.id
        if mention:
            self.ledger.mentions.add(seq)
        self.ledger.sent[seq] = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, answer = await connection.request(
                    "POST", f"/api/chat-rooms/{room.id}/messages", user.headers(), body
                )
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            connection.close()
            self.ledger.post_errors[type(exc).__name__] += 1
            return
        self._idle.append(connection)
        if status == 201:
            self.ledger.accepted.add(seq)
            self.ledger.post_ms.append(
                (time.perf_counter() - self.ledger.sent[seq]) * 1000
            )
        else:
            self.ledger.post_errors[f"HTTP {status} {answer[:80]!r}"] += 1

    def close(self) -> None:
        for connection in self._idle:
            connection.close()


async def post_steadily(
    poster: Poster,
    rooms: list[Room],
    seqs: Iterator[int],
    args: argparse.Namespace,
    mention_every: int,
) -> None:
    """``rate`` posts a second for ``duration`` seconds, rooms in turn."""
    total = int(args.rate * args.duration)
    started = time.perf_counter()
    tasks = []
    for n in range(total):
        await asyncio.sleep(max(0.0, started + n / args.rate - time.perf_counter()))
        mention = mention_every > 0 and n % mention_every == mention_every - 1
        room = rooms[n % len(rooms)]
        tasks.append(
            asyncio.create_task(poster.post(next(seqs), room, mention=mention))
        )
    await asyncio.gather(*tasks)


# -- a phase -----------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    load_1m: float
    seconds: float
    ledger: Ledger
    room_sizes: dict[int, int]
    api_cpu_s: float
    postgres_cpu_s: float
    answers_expected: int

    @property
    def expected(self) -> int:
        ledger = self.ledger
        return sum(self.room_sizes.get(ledger.room_of[s], 0) for s in ledger.accepted)

    @property
    def delivered(self) -> int:
        ledger = self.ledger
        return sum(
            min(ledger.received[s], self.room_sizes.get(ledger.room_of[s], 0))
            for s in ledger.accepted
        )

    @property
    def duplicates(self) -> int:
        ledger = self.ledger
        return sum(
            max(0, n - self.room_sizes.get(ledger.room_of[s], 0))
            for s, n in ledger.received.items()
        )

    @property
    def missing(self) -> int:
        return self.expected - self.delivered

    @property
    def answers_received(self) -> int:
        return sum(self.ledger.answers.values())

    def delay(self, q: float) -> float:
        if not self.ledger.delays_ms:
            return float("nan")
        return float(np.percentile(np.asarray(self.ledger.delays_ms), q))

    def last(self, q: float) -> float:
        return _percentile(list(self.ledger.last_ms.values()), q)

    def first(self, q: float) -> float:
        return _percentile(list(self.ledger.first_ms.values()), q)

    def post(self, q: float) -> float:
        return _percentile(self.ledger.post_ms, q)

    def row(self) -> str:
        ledger = self.ledger
        events = self.delivered + sum(ledger.other_events.values())
        events += self.answers_received
        cpu_per_event = self.api_cpu_s * 1000 / events if events else float("nan")
        answers = (
            f"{self.answers_received} / {self.answers_expected}"
            if self.answers_expected
            else "-"
        )
        return (
            f"| {self.name} | {sum(self.room_sizes.values())} "
            f"| {self.load_1m:.1f} | {len(ledger.accepted)} "
            f"| {sum(ledger.post_errors.values())} | {self.delivered} / "
            f"{self.expected} | {self.missing} | {self.duplicates} "
            f"| {self.delay(50):.0f} / {self.delay(99):.0f} / "
            f"{max(ledger.delays_ms, default=float('nan')):.0f} "
            f"| {self.first(50):.0f} / {self.first(99):.0f} "
            f"| {self.last(50):.0f} / {self.last(99):.0f} "
            f"| {self.post(50):.0f} / {self.post(99):.0f} | {answers} "
            f"| {self.api_cpu_s / self.seconds:.0%} | {cpu_per_event:.2f} "
            f"| {self.postgres_cpu_s / self.seconds:.0%} |"
        )


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def drain(ledger: Ledger, room_sizes: dict[int, int], seconds: float) -> None:
    """Wait until every accepted post reached every stream, or ``seconds``."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if all(
            ledger.received[s] >= room_sizes.get(ledger.room_of[s], 0)
            for s in ledger.accepted
        ) and sum(ledger.answers.values()) >= _answers_expected(ledger, room_sizes):
            return
        await asyncio.sleep(0.1)


def _answers_expected(ledger: Ledger, room_sizes: dict[int, int]) -> int:
    accepted_mentions = ledger.mentions & ledger.accepted
    return sum(room_sizes.get(ledger.room_of[s], 0) for s in accepted_mentions)


@dataclass(frozen=True)
class Context:
    args: argparse.Namespace
    server: Process
    postmaster_pid: int
    rooms: list[Room]


async def run_phase(
    context: Context, streams: list[Stream], name: str, seqs: Iterator[int]
) -> Phase:
    args = context.args
    ledger = Ledger()
    for stream in streams:  # the streams report to this phase's ledger
        stream.ledger = ledger
    room_sizes = Counter(stream.room.id for stream in streams if not stream.ended)
    mention_every = args.mention_every if name.startswith("mention") else 0
    poster = Poster(context.server.port, ledger)
    load_1m = os.getloadavg()[0]
    cpu_0 = tree_cpu_and_rss(context.server.pid)[0]
    pg_0 = postgres_cpu_seconds(context.postmaster_pid)
    started = time.perf_counter()
    await post_steadily(poster, context.rooms, seqs, args, mention_every)
    await drain(ledger, room_sizes, args.drain)
    seconds = time.perf_counter() - started
    api_cpu = tree_cpu_and_rss(context.server.pid)[0] - cpu_0
    pg_cpu = postgres_cpu_seconds(context.postmaster_pid) - pg_0
    poster.close()
    return Phase(
        name,
        load_1m,
        seconds,
        ledger,
        dict(room_sizes),
        api_cpu,
        pg_cpu,
        _answers_expected(ledger, room_sizes),
    )


# -- memory ------------------------------------------------------------------------


def steady_rss(pid: int, samples: int = 5) -> int:
    """The API's RSS (process tree), the median of a few samples 0.2 s apart."""
    values = []
    for _ in range(samples):
        values.append(tree_cpu_and_rss(pid)[1])
        time.sleep(0.2)
    return int(np.median(values))


@dataclass(frozen=True)
class Memory:
    streams: int
    open_s: float
    rss_idle: int
    rss_open: int
    rss_closed: int

    @property
    def kb_per_stream(self) -> float:
        return (self.rss_open - self.rss_idle) / 1024 / self.streams


async def warm_up(context: Context, seqs: Iterator[int]) -> None:
    """One stream per room and one post per room, read, then closed."""
    ledger = Ledger()
    owners = [(room, room.members[0]) for room in context.rooms]
    streams, _ = await open_streams(context.server.port, owners, ledger)
    poster = Poster(context.server.port, ledger)
    for room in context.rooms:
        await poster.post(next(seqs), room, mention=False)
    await drain(ledger, dict.fromkeys((r.id for r in context.rooms), 1), 10.0)
    poster.close()
    await asyncio.gather(*(stream.close() for stream in streams))
    await asyncio.sleep(SETTLE_S)


# -- the run -----------------------------------------------------------------------


def phase_names(args: argparse.Namespace) -> list[str]:
    names = []
    for round_ in range(1, args.rounds + 1):
        names.append(f"plain #{round_}")
        if args.mention_every > 0:
            names.append(f"mention 1/{args.mention_every} #{round_}")
    return names


def start_profiler(
    args: argparse.Namespace, pid: int
) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the API during the first phase, if asked."""
    if args.profile is None:
        return None
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy on PATH (or PY_SPY=/path)")
    command = [py_spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
    command += ["--duration", str(int(args.duration + 2))]
    command += ["--format", "raw", "--output", str(args.profile)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603


async def measure(
    args: argparse.Namespace, database_url: str, users: list[User], postmaster_pid: int
) -> tuple[Memory, list[Phase], Counter[str]]:
    server = api_server(database_url, args)
    await server.start()
    try:
        rooms = await create_rooms(server.port, users, args.room_size)
        context = Context(args, server, postmaster_pid, rooms)
        seqs = count(1)
        log(f"{len(rooms)} rooms of up to {args.room_size}; warming up ...")
        await warm_up(context, seqs)
        rss_idle = await asyncio.to_thread(steady_rss, server.pid)
        members = [(room, user) for room in rooms for user in room.members]
        streams, open_s = await open_streams(server.port, members, Ledger())
        await asyncio.sleep(SETTLE_S)
        rss_open = await asyncio.to_thread(steady_rss, server.pid)
        log(f"{len(streams)} streams open in {open_s:.1f} s")
        phases = []
        for n, name in enumerate(phase_names(args)):
            profiler = start_profiler(args, server.pid) if n == 0 else None
            log(f"{name}: {args.rate}/s for {args.duration:.0f} s ...")
            phase = await run_phase(context, streams, name, seqs)
            log(
                f"  delay p50/p99/max {phase.delay(50):.0f}/{phase.delay(99):.0f}/"
                f"{max(phase.ledger.delays_ms, default=0):.0f} ms, "
                f"missing {phase.missing}, API CPU {phase.api_cpu_s:.1f} s"
            )
            phases.append(phase)
            if profiler is not None:
                await asyncio.to_thread(profiler.wait, 60)
        await asyncio.gather(*(stream.close() for stream in streams))
        await asyncio.sleep(SETTLE_S)
        rss_closed = await asyncio.to_thread(steady_rss, server.pid)
    finally:
        problems = server_problems(server.log())
        server.stop()
    for problem, n in problems.most_common(10):
        log(f"api logged {n} x: {problem}")
    memory = Memory(len(streams), open_s, rss_idle, rss_open, rss_closed)
    return memory, phases, problems


def server_problems(text: str) -> Counter[str]:
    """The API's log lines above INFO, by logger, message and exception."""
    problems: Counter[str] = Counter()
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("level") in ("INFO", "DEBUG"):
            continue
        exception = str(entry.get("exc_info") or "").strip().splitlines()[-1:]
        problems[f"{entry.get('logger')}: {entry.get('message')} {exception}"] += 1
    return problems


# -- the report --------------------------------------------------------------------


@dataclass
class Report:
    args: argparse.Namespace
    started: datetime
    memory: Memory
    phases: list[Phase]
    problems: Counter[str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def failed(self) -> bool:
        return any(
            phase.missing or sum(phase.ledger.post_errors.values())
            for phase in self.phases
        )

    def header(self) -> list[str]:
        a = self.args
        before = ", ".join(f"{v:.2f}" for v in self.load_before)
        after = ", ".join(f"{v:.2f}" for v in self.load_after)
        return [
            f"# Room events benchmark{f': {a.label}' if a.label else ''}",
            "",
            f"Run {self.started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s) "
            f"(nproc), load average (1, 5, 15 min) {before} before and {after} "
            f"after (the machine is shared: other work ran meanwhile). One worker "
            f"(`python -m src.cli.serve`), offline AI, `LOG_LEVEL={a.log_level}`, "
            f"DB_POOL_SIZE {a.pool_size or 'as shipped'}. {a.members} members in "
            f"rooms of {a.room_size}, "
            f"every member's `GET /api/chat-rooms/{{id}}/events` open; posts at "
            f"{a.rate:g}/s for {a.duration:.0f} s per phase, rooms in turn; "
            f"{a.drain:.0f} s to drain. The client, PostgreSQL and the API share "
            "the machine.",
        ]

    def memory_lines(self) -> list[str]:
        m = self.memory
        mb = 2**20
        return [
            "| Streams | Opened in | API RSS, none open | with all open, idle "
            "| after closing | Per idle stream |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {m.streams} | {m.open_s:.1f} s | {m.rss_idle / mb:.1f} MB "
            f"| {m.rss_open / mb:.1f} MB | {m.rss_closed / mb:.1f} MB "
            f"| {m.kb_per_stream:.1f} KB |",
        ]

    def table(self) -> list[str]:
        rows = [
            "| Phase | Streams | Load 1m | Posts | Post errors | `message` events "
            "delivered / expected | Missing | Duplicates | Delay p50 / p99 / max "
            "ms | First stream of a post p50 / p99 ms | Last stream of a post "
            "p50 / p99 ms | POST p50 / p99 ms | Answers delivered / "
            "expected | API CPU | API CPU ms/event | Postgres CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|",
        ]
        return rows + [phase.row() for phase in self.phases]

    def errors(self) -> list[str]:
        lines = []
        for phase in self.phases:
            kinds = phase.ledger.post_errors + phase.ledger.other_events
            if kinds:
                listed = ", ".join(f"{k}: {n}" for k, n in kinds.most_common())
                lines.append(f"- {phase.name}: {listed}")
        lines += [f"- the API logged {n} x: {p}" for p, n in self.problems.items()]
        return lines or ["- none"]

    def markdown(self) -> str:
        return "\n".join(
            [
                *self.header(),
                "",
                "## Memory",
                "",
                *self.memory_lines(),
                "",
                "Per idle stream: (RSS with every stream open and idle - RSS with "
                "none open, after a warm-up) / streams; RSS of the API process "
                "(median of 5 samples). Target: under "
                f"{TARGET_KB_PER_STREAM:.0f} KB.",
                "",
                "## Delay from a post to its `message` event on every stream",
                "",
                *self.table(),
                "",
                "Delay: from the client's send of `POST /api/chat-rooms/{id}/"
                "messages` to the read that brought its `message` event, on each "
                "stream of the room (one sample per post and stream; Streams: those "
                "still open when the phase began). First / last stream: per post, "
                "the delay of the room's fastest / slowest stream. POST: the "
                "post's response time (the event is published when it commits, "
                "before it responds). Missing: events "
                "not received after the drain. Answers: the persona's saved "
                "answers as `message` events (mention phases). API CPU: the API "
                "process over the phase (posting and drain) as a share of one "
                "core, and per event delivered (any kind). Target: p99 under "
                f"{TARGET_P99_MS:.0f} ms, none missing.",
                "",
                "Post errors, other events seen, the API's log above INFO:",
                "",
                *self.errors(),
                "",
            ]
        )


# -- main --------------------------------------------------------------------------


def raise_open_files() -> None:
    """500 streams need more sockets than a default soft limit of 1024 leaves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def run_all(
    args: argparse.Namespace, database_url: str, conninfo: str, postmaster_pid: int
) -> Report:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    users = await asyncio.to_thread(create_users, conninfo, args.members)
    memory, phases, problems = await measure(args, database_url, users, postmaster_pid)
    return Report(args, started, memory, phases, problems, load_before, os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500, help="streams open")
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="posts per second")
    parser.add_argument("--duration", type=float, default=30.0, help="s per phase")
    parser.add_argument("--drain", type=float, default=10.0, help="s at most")
    parser.add_argument(
        "--mention-every", type=int, default=10, help="mention phase; 0 skips it"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--pool-size", type=int, default=0, help="0: as shipped")
    parser.add_argument("--label", default="", help="title of the results")
    parser.add_argument("--profile", type=Path, help="py-spy raw output")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results" / "rooms.md"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    raise_open_files()
    with tempfile.TemporaryDirectory(prefix="ragchat-rooms-") as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            conninfo = postgres.conninfo()
            apply_compat_layer(conninfo)
            apply_migrations(conninfo)
            apply_seed(conninfo)
            postmaster_pid = int(
                (postgres.data_dir / "postmaster.pid").read_text().split()[0]
            )
            report = uvloop.run(run_all(args, postgres.url(), conninfo, postmaster_pid))
        finally:
            postgres.stop()
    text = report.markdown()
    write_report(args.output, text)
    print(text)
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
