"""The optional ES256 development signing key (``DEV_JWT_PRIVATE_KEY_PATH``).

``make token`` signs with it; the API trusts its public key without a JWKS
endpoint, so asymmetric tokens work offline exactly like the HS256 default.
Refused in production by the settings.
"""

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from src.settings import Settings


def load_private_key(settings: Settings) -> ec.EllipticCurvePrivateKey | None:
    """The configured ES256 signing key, or None to sign with the HS256 secret.

    Raises:
        ValueError: The file does not hold a P-256 private key.
    """
    path = settings.dev_jwt_private_key_path
    if path is None:
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != (
        "secp256r1"
    ):
        raise ValueError(f"{path} is not an EC P-256 private key (ES256)")
    return key


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The public JWK of ``key``, its ``kid`` the RFC 7638 thumbprint."""
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": "ES256", "use": "sig"}
