"""Invalid tokens, each with the ``error_description`` the API must give."""

import time
import uuid

import jwt

from src.settings import DEV_JWT_SECRET
from tests.auth.jwks import SigningKey, claims_for, hmac_token, unsigned_token

BAD_TOKEN_DESCRIPTIONS = {
    "expired": "token expired",
    "not-yet-valid": "token not yet valid",
    "wrong-audience": "wrong audience",
    "missing-audience": "missing claim: aud",
    "wrong-issuer": "wrong issuer",
    "missing-exp": "missing claim: exp",
    "wrong-signature": "bad signature",
    "hs256-wrong-secret": "bad signature",
    "hs256-tampered-payload": "bad signature",
    "alg-none": "algorithm not allowed: none",
    "hs256-signed-with-public-key": "bad signature",
    "es256-header-with-rsa-kid": "unknown signing key",
    "missing-kid": "unknown signing key",
    "missing-sub": "missing claim: sub",
    "non-uuid-sub": "sub is not a UUID",
    "non-canonical-uuid-sub": "sub is not a UUID",
    "missing-role": "missing claim: role",
    "garbage": "malformed token",
    "garbage-three-parts": "malformed token",
}


def _tampered_hs256(user_id: uuid.UUID) -> str:
    """A valid HS256 token whose payload was swapped for another one."""
    header, _, signature = jwt.encode(
        claims_for(user_id), DEV_JWT_SECRET, algorithm="HS256"
    ).split(".")
    other = jwt.encode(claims_for(uuid.uuid4()), DEV_JWT_SECRET, algorithm="HS256")
    return f"{header}.{other.split('.')[1]}.{signature}"


def bad_tokens(
    es256: SigningKey, rs256: SigningKey, user_id: uuid.UUID
) -> dict[str, str]:
    """One token per :data:`BAD_TOKEN_DESCRIPTIONS` case, all naming ``user_id``."""
    now = int(time.time())
    return {
        "expired": es256.sign(claims_for(user_id, exp=now - 120, iat=now - 3720)),
        "not-yet-valid": es256.sign(claims_for(user_id, nbf=now + 600)),
        "wrong-audience": es256.sign(claims_for(user_id, aud="somebody-else")),
        "missing-audience": es256.sign(claims_for(user_id, aud=None)),
        "wrong-issuer": es256.sign(
            claims_for(user_id, iss="https://evil.example/auth/v1")
        ),
        "missing-exp": es256.sign(claims_for(user_id, exp=None)),
        "wrong-signature": SigningKey.es256().sign(claims_for(user_id), kid=es256.kid),
        "hs256-wrong-secret": jwt.encode(
            claims_for(user_id), "x" * 40, algorithm="HS256"
        ),
        "hs256-tampered-payload": _tampered_hs256(user_id),
        "alg-none": unsigned_token(claims_for(user_id)),
        "hs256-signed-with-public-key": hmac_token(
            claims_for(user_id), es256.public_pem(), kid=es256.kid
        ),
        "es256-header-with-rsa-kid": es256.sign(claims_for(user_id), kid=rs256.kid),
        "missing-kid": jwt.encode(
            claims_for(user_id), es256.private_key, algorithm="ES256"
        ),
        "missing-sub": es256.sign(claims_for(user_id, sub=None)),
        "non-uuid-sub": es256.sign(claims_for(user_id, sub="alice")),
        "non-canonical-uuid-sub": es256.sign(claims_for(user_id, sub=user_id.hex)),
        "missing-role": es256.sign(claims_for(user_id, role=None)),
        "garbage": "not-a-token",
        "garbage-three-parts": "a.b.c",
    }
