"""A tiny stand-in for Supabase Auth's admin API on 127.0.0.1."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.threaded_http import serving

SERVICE_ROLE_KEY = "service-role-key-for-tests"


@dataclass
class FakeGoTrue:
    """Users by email, and every request seen as (method, path, headers, body)."""

    url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)

    def add_user(self, email: str) -> str:
        """A user that already exists; returns its id."""
        user_id = str(uuid.uuid4())
        self.users[email] = {
            "id": user_id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "created_at": "2026-01-01T00:00:00Z",
        }
        return user_id


class _GoTrueHandler(BaseHTTPRequestHandler):
    state: FakeGoTrue

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any) -> None:
        self.state.requests.append(
            (self.command, self.path, dict(self.headers.items()), body)
        )

    def do_POST(self) -> None:
        """Create a user, or 422 ``email_exists`` as Supabase Auth answers."""
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self._record(body)
        email = str(body["email"]).lower()
        if self.headers.get("Authorization") != f"Bearer {SERVICE_ROLE_KEY}":
            self._reply(401, {"msg": "invalid JWT", "error_code": "bad_jwt"})
        elif email in self.state.users:
            self._reply(422, EMAIL_EXISTS)
        else:
            self.state.add_user(email)
            self._reply(200, self.state.users[email])

    def do_GET(self) -> None:
        """One page of users."""
        self._record(None)
        query = parse_qs(urlparse(self.path).query)
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["50"])[0])
        users = list(self.state.users.values())[(page - 1) * per_page : page * per_page]
        self._reply(200, {"users": users, "aud": "authenticated"})

    def log_message(self, *_: Any) -> None:
        """Keep the test output quiet."""


EMAIL_EXISTS = {
    "msg": "A user with this email address has already been registered",
    "error_code": "email_exists",
}


@contextmanager
def serve_gotrue() -> Iterator[FakeGoTrue]:
    """Serve a :class:`FakeGoTrue`; its ``url`` is the project URL."""
    state = FakeGoTrue()
    handler = type("Handler", (_GoTrueHandler,), {"state": state})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        state.url = url
        yield state
