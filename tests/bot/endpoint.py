"""What the tests of POST /api/messages share: the app through create_app, Bot Framework tokens, a fake channel.

The SDK fetches token-signing keys from Microsoft (login.botframework.com for Bot Framework tokens) and
offers no setting to trust other keys, so `trusted_test_keys` swaps the SDK's key lookup for one that
serves this test's RSA key under the same URL; the rest of the validation (signature, expiry,
audience, issuer binding) is the SDK's own. Replies go to a fake Bot Connector service (the activity's
serviceUrl), with an outbound token that stands in for the one msal would get from Entra.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.authorization.authentication_constants import AuthenticationConstants
from microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator import JwtTokenValidator

from app import DIRECTORY, STORE, create_app
from settings import Settings
from tests.dialogs.fakes import MARGARET, TENANT, FakeDirectory
from tests.store.support import sqlite_copy

APP_ID = "5d3c7a2e-1b4f-4e8a-9c6d-2f1e0a9b8c7d"
BF_ISSUER = AuthenticationConstants.AGENTS_SDK_TOKEN_ISSUER
BF_KEYS_URL = AuthenticationConstants.PUBLIC_ABS_JWKS_URL
OUTBOUND_TOKEN = "outbound-token-for-tests"
KID = "watchword-test-key"


@dataclass
class Keys:
    """This test's signing key, published (to the SDK) as Bot Framework's."""

    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537,
                                                                                        key_size=2048))
    asked: list[str] = field(default_factory=list)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": KID, "use": "sig", "alg": "RS256"}

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        self.asked.append(jwks_uri)
        if jwks_uri != BF_KEYS_URL or header.get("kid") != KID:
            raise jwt.PyJWKClientError("no such key")
        return PyJWK(self.jwk())

    def token(self, *, audience: str = APP_ID, issuer: str = BF_ISSUER, lifetime: int = 3600, service_url: str = "",
              key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": issuer, "aud": audience, "iat": now - 60, "nbf": now - 60, "exp": now + lifetime,
                "serviceurl": service_url, **claims}
        return jwt.encode(body, key or self.private, algorithm="RS256", headers={"kid": KID})


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Keys:
    test_keys = Keys()
    monkeypatch.setattr(JwtTokenValidator, "_jwk_client_manager", test_keys)

    async def outbound_token(self: MsalAuth, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return OUTBOUND_TOKEN

    monkeypatch.setattr(MsalAuth, "get_access_token", outbound_token)
    return test_keys


@dataclass
class Connector:
    """The Bot Connector service the bot replies to."""

    url: str
    replies: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (path, activity, auth)


@pytest.fixture
async def connector(aiohttp_server) -> AsyncIterator[Connector]:
    received: list[tuple[str, dict[str, Any], str]] = []

    async def reply(request: web.Request) -> web.Response:
        received.append((request.path, await request.json(), request.headers.get("Authorization", "")))
        return web.json_response({"id": uuid.uuid4().hex})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", reply)
    app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", reply)
    server = await aiohttp_server(app)
    yield Connector(str(server.make_url("/")), received)


def activity(connector: Connector, *, text: str = "help", tenant: str = TENANT, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message", "id": uuid.uuid4().hex, "channelId": "msteams", "serviceUrl": connector.url,
        "from": {"id": f"29:{MARGARET.id}", "name": MARGARET.display_name, "aadObjectId": MARGARET.id},
        "recipient": {"id": f"28:{APP_ID}", "name": "Watchword"},
        "conversation": {"id": f"a:{MARGARET.id}", "conversationType": "personal", "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}}, "text": text, **extra,
    }


def _with_fakes(app: web.Application, directory: FakeDirectory) -> web.Application:
    """Swap the Graph directory for the fake, and connect the test tenant, before the bot starts."""

    async def fakes(app: web.Application) -> AsyncIterator[None]:
        app[DIRECTORY] = directory
        await app[STORE].tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
        yield

    index = next(i for i, ctx in enumerate(app.cleanup_ctx) if ctx.__name__ == "_directory_ctx")
    app.cleanup_ctx.insert(index + 1, fakes)
    return app


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    target = sqlite_copy(sqlite_template, tmp_path)
    return Settings(database_url=target.url, client_id=APP_ID, client_secret="not-used-in-tests",
                    helpdesk_group_id="bbbbbbbb-0000-4000-8000-000000000001")


def app_with_fakes(settings: Settings) -> web.Application:
    """create_app with the fake directory and the test tenant connected."""
    return _with_fakes(create_app(settings), FakeDirectory(lambda: _now()))


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    return await aiohttp_client(app_with_fakes(settings))


@pytest.fixture
async def demo_client(aiohttp_client, settings: Settings):
    return await aiohttp_client(app_with_fakes(settings.replace(client_id="", client_secret="", bot_anonymous=True)))


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
