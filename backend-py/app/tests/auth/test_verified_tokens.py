"""VerifiedTokens: a token verified once is trusted until it expires, briefly."""

import time
import uuid

import pytest

from src.domain.entity.user import CurrentUser
from src.domain.errors import AuthenticationError
from src.middleware.auth_middleware import TokenVerifier, VerifiedTokens
from src.settings import Settings
from tests.factories import mint_token
from tests.support.clock import FakeClock

USER = CurrentUser(
    id=uuid.UUID(int=1), email=None, role="authenticated", claims={"sub": "x"}
)


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock()
    clock.now = time.time()
    return clock


def test_an_entry_lasts_until_the_token_expires(clock: FakeClock) -> None:
    tokens = VerifiedTokens(ttl_s=60, clock=clock)
    tokens.add("t", USER, expires_at=clock.now + 10)
    assert tokens.get("t") is USER
    clock.advance(10)
    assert tokens.get("t") is None


def test_an_entry_lasts_at_most_the_ttl(clock: FakeClock) -> None:
    tokens = VerifiedTokens(ttl_s=60, clock=clock)
    tokens.add("t", USER, expires_at=clock.now + 3600)
    clock.advance(59)
    assert tokens.get("t") is USER
    clock.advance(1)
    assert tokens.get("t") is None


def test_the_oldest_entry_goes_when_full(clock: FakeClock) -> None:
    tokens = VerifiedTokens(ttl_s=60, max_entries=2, clock=clock)
    for token in ("a", "b", "c"):
        tokens.add(token, USER, expires_at=clock.now + 30)
    assert [tokens.get(t) for t in ("a", "b", "c")] == [None, USER, USER]


async def test_the_verifier_checks_a_token_once_and_never_caches_a_refusal(
    settings: Settings,
) -> None:
    verifier = TokenVerifier(settings, None)
    token = mint_token(uuid.uuid4())
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await verifier.verify(forged)
