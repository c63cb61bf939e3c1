"""Real signing keys and a JWKS endpoint on 127.0.0.1 for the auth tests."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from src.cli.token import supabase_claims
from tests.support.threaded_http import serving


@dataclass(frozen=True)
class SigningKey:
    """A private key with its ``kid`` and algorithm."""

    kid: str
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @classmethod
    def es256(cls) -> "SigningKey":
        """A fresh EC P-256 key."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(kid=f"ec-{uuid.uuid4().hex[:8]}", algorithm="ES256", private_key=key)

    @classmethod
    def rs256(cls) -> "SigningKey":
        """A fresh 2048-bit RSA key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            kid=f"rsa-{uuid.uuid4().hex[:8]}", algorithm="RS256", private_key=key
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, as Supabase publishes it."""
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        """The public key as PEM (what an attacker can download)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """A token signed with this key, its header naming ``kid``."""
        return jwt.encode(
            claims,
            self.private_key,
            algorithm=self.algorithm,
            headers={"kid": kid or self.kid},
        )


def claims_for(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """Supabase access-token claims; a ``None`` override removes the claim."""
    claims = supabase_claims(user_id, email="someone@example.com", expires_in=3600)
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hmac_token(claims: dict[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """An HS256 token signed with arbitrary bytes (PyJWT refuses PEM secrets)."""
    header: dict[str, str] = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass
class JwksServer:
    """A JWKS endpoint whose keys, status and latency a test can change."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    requests: int = 0

    def publish(self, *keys: SigningKey) -> None:
        """Serve exactly these keys."""
        self.keys = [key.public_jwk() for key in keys]

    def reset(self) -> None:
        """Healthy, no keys, no requests counted."""
        self.keys, self.status, self.delay_s, self.requests = [], 200, 0.0, 0


def _handler(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests += 1
            time.sleep(server.delay_s)
            body = json.dumps({"keys": server.keys}).encode()
            self.send_response(server.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) is expected; stay quiet."""


@contextmanager
def serve_jwks() -> Iterator[JwksServer]:
    """Serve a :class:`JwksServer` on an ephemeral port of 127.0.0.1."""
    state = JwksServer()
    with serving(_QuietServer(("127.0.0.1", 0), _handler(state))) as url:
        state.url = f"{url}/auth/v1/.well-known/jwks.json"
        yield state
