"""SupabaseAdmin (supabase-py) over real HTTP against a fake Auth admin API."""

import uuid
from collections.abc import Iterator

import jwt
import psycopg
import pytest
from pydantic import SecretStr

from src.cli.token import main
from src.infra.db_client import libpq_url
from src.infra.supabase_client import SupabaseAdmin
from src.settings import DEV_JWT_SECRET, Settings
from tests.auth.fake_gotrue import SERVICE_ROLE_KEY, FakeGoTrue, serve_gotrue
from tests.conftest import make_settings


@pytest.fixture
def gotrue() -> Iterator[FakeGoTrue]:
    with serve_gotrue() as server:
        yield server


UNUSED_DB = "postgresql://unused@127.0.0.1:1/unused"


def admin_settings(gotrue: FakeGoTrue, database_url: str = UNUSED_DB) -> Settings:
    return make_settings(
        database_url,
        supabase_url=gotrue.url,
        supabase_service_role_key=SecretStr(SERVICE_ROLE_KEY),
    )


def admin_of(settings: Settings) -> SupabaseAdmin:
    admin = SupabaseAdmin.from_settings(settings)
    assert admin is not None
    return admin


def test_no_admin_client_without_url_and_service_key() -> None:
    assert SupabaseAdmin.from_settings(make_settings(UNUSED_DB)) is None
    settings = make_settings(UNUSED_DB, supabase_url="http://127.0.0.1:1")
    assert SupabaseAdmin.from_settings(settings) is None


def test_ensure_user_creates_a_confirmed_user_with_the_service_key(
    gotrue: FakeGoTrue,
) -> None:
    user_id = admin_of(admin_settings(gotrue)).ensure_user("a@x.io")

    assert str(user_id) == gotrue.users["a@x.io"]["id"]
    method, path, headers, body = gotrue.requests[0]
    assert (method, path) == ("POST", "/auth/v1/admin/users")
    assert headers["Authorization"] == f"Bearer {SERVICE_ROLE_KEY}"
    assert body == {"email": "a@x.io", "email_confirm": True}


def test_ensure_user_finds_an_existing_user(gotrue: FakeGoTrue) -> None:
    for n in range(250):
        gotrue.add_user(f"filler{n}@x.io")
    existing = gotrue.add_user("b@x.io")

    user_id = admin_of(admin_settings(gotrue)).ensure_user("B@x.io")

    assert str(user_id) == existing
    pages = [path for method, path, *_ in gotrue.requests if method == "GET"]
    assert len(pages) == 2


def test_find_user_returns_none_for_a_stranger(gotrue: FakeGoTrue) -> None:
    gotrue.add_user("c@x.io")
    admin = admin_of(admin_settings(gotrue))
    assert admin.find_user("nobody@x.io") is None


def test_make_token_uses_the_admin_api_when_configured(
    database_url: str, gotrue: FakeGoTrue, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = admin_settings(gotrue, database_url)

    assert main(["--email", "d@x.io"], settings) == 0

    token = capsys.readouterr().out.splitlines()[-1]
    claims = jwt.decode(
        token,
        DEV_JWT_SECRET,
        algorithms=["HS256"],
        audience="authenticated",
        issuer=f"{gotrue.url}/auth/v1",
    )
    assert claims["sub"] == gotrue.users["d@x.io"]["id"]
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "select count(*) from auth.users where id = %s",
            (uuid.UUID(claims["sub"]),),
        ).fetchone()
    assert row == (0,)
