"""App-only tokens for Microsoft Graph, one msal client per connected tenant.

msal is synchronous (it uses `requests`), so every call runs in a worker thread to keep the
event loop free: a small pool of its own, never the loop's default one, so a hung identity platform
fills only this pool and cannot starve what else runs in threads (the Agents SDK's JWT key lookup, the
store). Every call has a timeout: msal's HTTP requests (`HTTP_TIMEOUT_S`) and the whole acquisition
(`TOKEN_TIMEOUT_S`, which raises TokenError "timeout"). msal caches tokens in each application object
and only goes to the network when the cached token is close to expiry, which is the "refresh before
expiry" we need. The last token per tenant is also held here, in memory, until TOKEN_REUSE_MARGIN_S before it
expires: every $batch asks for one, and reaching msal's cache takes a hop to a worker thread, which waits for a
CPU on a busy machine while the verification's first request could already be on its way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import requests
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
HTTP_TIMEOUT_S = 10.0  # each request msal makes (discovery, token)
TOKEN_TIMEOUT_S = 15.0  # one whole acquisition, queueing for a thread included
TOKEN_THREADS = 4  # the identity platform's own pool: hung calls block at most these threads
TOKEN_REUSE_MARGIN_S = 300.0  # a held token is asked of msal again this long before it expires


class TokenError(Exception):
    """No token could be had for a tenant. `code` is the identity platform's error (e.g. invalid_client)."""

    def __init__(self, tenant_id: str, code: str, description: str):
        # The description comes from the identity platform and never holds our secret.
        super().__init__(f"No Graph token for tenant {tenant_id}: {code}: {description}")
        self.tenant_id = tenant_id
        self.code = code
        self.description = description


@dataclass(frozen=True)
class AppToken:
    access_token: str
    expires_in: int
    claims: dict[str, Any]  # decoded without verification: only for reading tid/roles of our own token

    @property
    def tenant_id(self) -> str:
        return str(self.claims.get("tid", ""))

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.claims.get("roles", []))

    def __repr__(self) -> str:  # never show the token itself
        return f"AppToken(tid={self.tenant_id!r}, roles={sorted(self.roles)!r}, expires_in={self.expires_in})"


class TokenSource:
    """Client-credential tokens from the identity platform at `login_url`, one msal app per tenant."""

    def __init__(self, *, login_url: str, client_id: str, client_secret: str, ca_file: Path | None,
                 monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._held: dict[str, tuple[AppToken, float]] = {}  # tenant -> its last token, reused until this moment
        self._providers: dict[tuple[str, str], GraphTokenProvider] = {}  # one per tenant and Graph URL (for_tenant)
        self._login_url = login_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = requests.Session()
        # REQUESTS_CA_BUNDLE would silently override msal's verify=; ignore the environment.
        self._http.trust_env = False
        self._http.verify = str(ca_file) if ca_file else True
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=TOKEN_THREADS, thread_name_prefix="msal")

    def _app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get(tenant_id)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._client_secret,
                    authority=f"{self._login_url}/{tenant_id}",
                    http_client=self._http,
                    timeout=HTTP_TIMEOUT_S,
                    # Microsoft's instance discovery endpoint is unreachable for a local authority and
                    # unnecessary for a known one.
                    instance_discovery=False,
                )
                self._apps[tenant_id] = app
            return app

    def _acquire(self, tenant_id: str, fresh: bool = False) -> AppToken:
        try:
            if fresh:
                # e.g. right after consent: the cached token's roles would be stale, and msal also replays an
                # HTTP 400 answer (such as "not consented") for 60 s; a new msal app forgets both.
                with self._lock:
                    self._apps.pop(tenant_id, None)
            app = self._app(tenant_id)
            result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except (requests.RequestException, ValueError) as exc:
            # msal raises ValueError when discovery fails (unknown tenant, unreachable authority).
            raise TokenError(tenant_id, "unreachable", type(exc).__name__ + ": " + _first_line(exc)) from None
        if "access_token" not in result:
            raise TokenError(tenant_id, str(result.get("error")), _first_line(result.get("error_description", "")))
        token = result["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        return AppToken(token, int(result.get("expires_in", 0)), claims)

    async def token(self, tenant_id: str, *, fresh: bool = False) -> AppToken:
        """A token for the tenant (the one held, else msal's cached one, unless `fresh`), within TOKEN_TIMEOUT_S."""
        asked_at = self._monotonic()
        held = self._held.pop(tenant_id, None) if fresh else self._held.get(tenant_id)  # fresh: msal's app goes too
        if held is not None and not fresh and asked_at < held[1]:
            return held[0]
        loop = asyncio.get_running_loop()
        try:
            token = await asyncio.wait_for(loop.run_in_executor(self._pool, self._acquire, tenant_id, fresh),
                                           TOKEN_TIMEOUT_S)
            self._held[tenant_id] = (token, asked_at + token.expires_in - TOKEN_REUSE_MARGIN_S)
            return token
        except TimeoutError:
            raise TokenError(tenant_id, "unreachable", f"no answer from the identity platform within "
                             f"{TOKEN_TIMEOUT_S:.0f} s") from None

    def for_tenant(self, tenant_id: str, graph_url: str) -> GraphTokenProvider:
        """The tenant's token hook, made once (every Graph request asks for it; it holds no token itself)."""
        provider = self._providers.get((tenant_id, graph_url))
        if provider is None:
            provider = self._providers[tenant_id, graph_url] = GraphTokenProvider(self, tenant_id, graph_url)
        return provider

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()


class GraphTokenProvider(AccessTokenProvider):
    """Kiota's token hook for one tenant: msgraph-sdk asks it for a token before each request."""

    def __init__(self, source: TokenSource, tenant_id: str, graph_url: str):
        self._source = source
        self._tenant_id = tenant_id
        self._hosts = AllowedHostsValidator([urlsplit(graph_url).hostname or ""])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        if not self._hosts.is_url_host_valid(uri):
            return ""  # never send our token to a host that is not Graph
        return (await self._source.token(self._tenant_id)).access_token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def _first_line(value: object) -> str:
    return str(value).strip().splitlines()[0] if str(value).strip() else ""
