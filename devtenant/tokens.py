"""Signing and checking devtenant's tokens: RS256 JWTs, as Entra ID issues them.

Access tokens for Graph carry `aud` (https://graph.microsoft.com), `iss`
(https://sts.windows.net/{tid}/, the v1 issuer Graph tokens have), `tid`, `oid` (the service
principal's object id), `appid`/`azp`, `roles` (the consented application permissions), `iat`,
`nbf`, `exp`. Id tokens for people carry `oid`, `tid`, `name`, `preferred_username`, `groups`,
`nonce`, with `aud` = the client id and the v2 issuer.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_AUDIENCE = "https://graph.microsoft.com"


class InvalidToken(Exception):
    """The bearer token is missing, malformed, badly signed, expired or for another audience."""


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class TokenIssuer:
    """Holds one RSA signing key and issues/validates tokens with it."""

    lifetime_s: int = 3599
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        thumb = hashlib.sha1(self.kid.encode(), usedforsecurity=False).digest()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": base64.urlsafe_b64encode(thumb).rstrip(b"=").decode(),
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                    "alg": "RS256",
                }
            ]
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def issue_app_token(
        self, *, tenant_id: str, client_id: str, sp_object_id: str, roles: list[str], app_name: str
    ) -> tuple[str, int]:
        """An app-only (client credentials) access token for Graph; returns (token, expires_in)."""
        now = int(time.time())
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
            "app_displayname": app_name,
            "appid": client_id,
            "azp": client_id,
            "idtyp": "app",
            "oid": sp_object_id,
            "sub": sp_object_id,
            "roles": sorted(roles),
            "tid": tenant_id,
            "ver": "1.0",
            "uti": uuid.uuid4().hex,
        }
        return self.sign(claims), self.lifetime_s

    def verify_access_token(self, token: str, *, audience: str = GRAPH_AUDIENCE) -> dict[str, Any]:
        """Check signature, expiry and audience; return the claims or raise InvalidToken."""
        try:
            return jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                options={"require": ["exp", "aud", "tid"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None

    def issue_user_token(
        self,
        *,
        tenant_id: str,
        client_id: str,
        app_name: str,
        user: dict[str, Any],
        scopes: list[str],
        wids: list[str],
    ) -> tuple[str, int]:
        """A delegated access token for Graph (auth code / refresh grants); returns (token, expires_in).

        `user` holds oid, name, given_name, family_name, upn. `scp` is space-separated short scope
        names, as Graph tokens carry them ("User.Read profile openid email").
        """
        now = int(time.time())
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
            "acct": 0,
            "amr": ["pwd"],
            "app_displayname": app_name,
            "appid": client_id,
            "appidacr": "1",
            "family_name": user["family_name"],
            "given_name": user["given_name"],
            "idtyp": "user",
            "name": user["name"],
            "oid": user["oid"],
            "scp": " ".join(scopes),
            "sub": pairwise_sub(user["oid"], GRAPH_AUDIENCE),
            "tid": tenant_id,
            "unique_name": user["upn"],
            "upn": user["upn"],
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
            "wids": wids,
        }
        return self.sign(claims), self.lifetime_s

    def issue_id_token(
        self, *, issuer: str, tenant_id: str, client_id: str, claims: dict[str, Any]
    ) -> str:
        """A v2.0 id token for `client_id`. `claims` adds oid, name, preferred_username, groups, nonce..."""
        now = int(time.time())
        body = {
            "aud": client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
            "tid": tenant_id,
            "uti": uuid.uuid4().hex,
            "ver": "2.0",
            **claims,
        }
        body["sub"] = pairwise_sub(body["oid"], client_id)
        return self.sign(body)


def pairwise_sub(oid: str, audience: str) -> str:
    """Entra's `sub` is pairwise: stable for one user and one app, different across apps."""
    digest = hashlib.sha256(f"{oid}|{audience}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
