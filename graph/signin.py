"""Signing people in to the admin console: OpenID Connect, authorization code flow with PKCE, through msal.

    signin = ConsoleSignIn(login_url=..., client_id=..., client_secret=..., ca_file=...)
    start = await signin.begin(authority_tenant, redirect_uri)      # -> SignInStart(auth_uri, flow)
    ...the browser goes to start.auth_uri and comes back to redirect_uri with ?code&state...
    person = await signin.finish(start.flow, dict(request.query))   # -> SignedInPerson, or SignInError

msal is synchronous (requests), so every call runs in a worker thread. Since msal 1.38 msal no longer
validates the id token (it only checks `state` and the nonce), so `finish` does: the signature against the
tenant's published keys, the issuer (`{login_url}/{tid}/v2.0`), the audience (our client id) and expiry.
The id token comes straight from the token endpoint over TLS, which OpenID Connect accepts in place of a
signature check; checking the signature as well costs one cached request.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import jwt
import msal
import requests

from graph.tokens import HTTP_TIMEOUT_S, TOKEN_THREADS, TOKEN_TIMEOUT_S

T = TypeVar("T")

# What the console asks for: only who the person is (openid, profile are added by msal).
SIGN_IN_SCOPES: list[str] = []
_JWKS_TTL_S = 3600.0
_LEEWAY_S = 120


class SignInError(Exception):
    """The sign-in did not complete. `code` is the identity platform's error (access_denied, invalid_grant...)
    or ours (state_mismatch, invalid_id_token, unreachable); `description` is safe to log and to show."""

    def __init__(self, code: str, description: str):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclass(frozen=True)
class SignInStart:
    auth_uri: str
    flow: dict[str, Any]  # what `finish` needs back: keep it server-side or encrypted, never show it


@dataclass(frozen=True)
class SignedInPerson:
    """The person an id token names, with what the console decides access on."""

    oid: str
    tenant_id: str
    name: str
    username: str  # preferred_username: the UPN, for display and the audit log
    groups: tuple[str, ...]  # group object ids from the `groups` claim (lower-case)
    # The token lists the person's groups (`groups`). False when the app registration does not ask for the claim
    # (the default) or the person is in too many groups for a token (Entra's overage form): ask the directory.
    groups_listed: bool
    directory_roles: tuple[str, ...]  # role template ids (`wids`) (lower-case)


class ConsoleSignIn:
    """One msal confidential client per authority tenant (the tenant id, a domain, or `organizations`)."""

    def __init__(self, *, login_url: str, client_id: str, client_secret: str, ca_file: Path | None):
        self._login_url = login_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = requests.Session()
        # REQUESTS_CA_BUNDLE would silently override msal's verify=; ignore the environment.
        self._http.trust_env = False
        self._http.verify = str(ca_file) if ca_file else True
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None  # the signing keys' fetch
        self._jwks: dict[str, jwt.PyJWKClient] = {}  # per tenant
        self._lock = threading.Lock()
        # The identity platform's own small pool, as graph/tokens.py: a hung sign-in blocks only these threads.
        self._pool = ThreadPoolExecutor(max_workers=TOKEN_THREADS, thread_name_prefix="msal-signin")
        # We choose response_mode=query on purpose (see _begin); msal's advice to use form_post is noise here.
        warnings.filterwarnings("ignore", message=r"response_mode='form_post' is recommended", category=UserWarning)

    def _app(self, tenant: str) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get(tenant)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    self._client_id, client_credential=self._client_secret,
                    authority=f"{self._login_url}/{tenant}", http_client=self._http, timeout=HTTP_TIMEOUT_S,
                    instance_discovery=False)
                self._apps[tenant] = app
            return app

    async def begin(self, tenant: str, redirect_uri: str) -> SignInStart:
        """The URL to send the browser to, and the flow to keep until it comes back."""
        return await self._in_pool(self._begin, tenant, redirect_uri)

    def _begin(self, tenant: str, redirect_uri: str) -> SignInStart:
        try:
            # response_mode=query (msal's default; it warns and recommends form_post): a form_post callback is a
            # cross-site POST, which a SameSite=Lax session cookie does not accompany. The code is single-use
            # and bound to this flow by PKCE, and the console sends no Referer, so it does not leak from the URL.
            flow = self._app(tenant).initiate_auth_code_flow(
                SIGN_IN_SCOPES, redirect_uri=redirect_uri, prompt="select_account", response_mode="query")
        except (requests.RequestException, ValueError) as exc:
            raise SignInError("unreachable", f"the Microsoft identity platform could not be reached "
                              f"({type(exc).__name__})") from None
        auth_uri = flow.pop("auth_uri")
        flow["authority_tenant"] = tenant
        return SignInStart(auth_uri=auth_uri, flow=flow)

    async def finish(self, flow: dict[str, Any], response: dict[str, str]) -> SignedInPerson:
        """Redeem the code the browser brought back and check the id token. Raises SignInError."""
        return await self._in_pool(self._finish, flow, response)

    async def _in_pool(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, work, *args), TOKEN_TIMEOUT_S)
        except TimeoutError:
            raise SignInError("unreachable", f"no answer from the identity platform within {TOKEN_TIMEOUT_S:.0f} s"
                              ) from None

    def _finish(self, flow: dict[str, Any], response: dict[str, str]) -> SignedInPerson:
        if response.get("error"):
            raise SignInError(str(response["error"]), _first_line(response.get("error_description", "")))
        flow = dict(flow)
        tenant = str(flow.pop("authority_tenant", "organizations"))
        try:
            result = self._app(tenant).acquire_token_by_auth_code_flow(flow, response)
        except ValueError as exc:  # msal: state mismatch, or a response that does not belong to this flow
            raise SignInError("state_mismatch", _first_line(exc)) from None
        except RuntimeError as exc:  # msal: the nonce in the id token is not ours
            raise SignInError("invalid_id_token", _first_line(exc)) from None
        except requests.RequestException as exc:
            raise SignInError("unreachable", type(exc).__name__) from None
        self._forget_people(tenant)
        if "error" in result:
            raise SignInError(str(result["error"]), _first_line(result.get("error_description", "")))
        id_token = result.get("id_token")
        if not id_token:
            raise SignInError("invalid_id_token", "the identity platform returned no id token")
        claims = self._verified_claims(id_token)
        return _person(claims, result.get("access_token"))

    def _forget_people(self, tenant: str) -> None:
        """msal keeps every signed-in person's tokens (a refresh token too) in the app's cache; the console
        needs none of them after sign-in, so none are kept."""
        app = self._app(tenant)
        for account in app.get_accounts():
            app.remove_account(account)

    def _verified_claims(self, id_token: str) -> dict[str, Any]:
        try:
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise SignInError("invalid_id_token", "the id token is malformed") from None
        tid = str(unverified.get("tid", ""))
        if not tid or "/" in tid:
            raise SignInError("invalid_id_token", "the id token names no tenant")
        key = self._signing_key(tid, id_token)
        try:
            return jwt.decode(
                id_token, key, algorithms=["RS256"], audience=self._client_id,
                issuer=f"{self._login_url}/{tid}/v2.0", leeway=_LEEWAY_S,
                options={"require": ["exp", "iat", "aud", "iss", "tid", "oid"]})
        except jwt.PyJWTError as exc:
            raise SignInError("invalid_id_token", f"the id token was refused ({type(exc).__name__})") from None

    def _signing_key(self, tid: str, id_token: str) -> Any:
        """The key the token names (`kid`) among those the tenant publishes, fetched with a timeout and cached
        for an hour per tenant; an unknown `kid` fetches them again (at most every 30 s: PyJWKClient's cooldown)."""
        with self._lock:
            client = self._jwks.get(tid)
            if client is None:
                client = self._jwks[tid] = jwt.PyJWKClient(
                    f"{self._login_url}/{tid}/discovery/v2.0/keys", lifespan=_JWKS_TTL_S, timeout=HTTP_TIMEOUT_S,
                    ssl_context=self._ssl)
        try:
            return client.get_signing_key_from_jwt(id_token).key
        except (jwt.PyJWKClientConnectionError, ValueError) as exc:
            raise SignInError("unreachable", f"the tenant's signing keys could not be read "
                              f"({type(exc).__name__})") from None
        except jwt.PyJWTError:
            raise SignInError("invalid_id_token", "the id token is signed with a key the tenant does not "
                              "publish") from None

    def logout_url(self, tenant: str, post_logout_redirect_uri: str) -> str:
        """Microsoft's sign-out page, which comes back to `post_logout_redirect_uri`."""
        query = urlencode({"post_logout_redirect_uri": post_logout_redirect_uri})
        return f"{self._login_url}/{tenant}/oauth2/v2.0/logout?{query}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()


def _person(claims: dict[str, Any], access_token: str | None) -> SignedInPerson:
    groups = claims.get("groups")
    overage = bool(claims.get("hasgroups")) or "groups" in (claims.get("_claim_names") or {})
    listed = isinstance(groups, list) and not overage
    wids = claims.get("wids")
    if wids is None and access_token:
        # Entra puts `wids` in the id token only when the app registration asks for it; the access token
        # from the same token response carries it. We read our own token's claims, never trust them further.
        try:
            wids = jwt.decode(access_token, options={"verify_signature": False}).get("wids")
        except jwt.PyJWTError:
            wids = None
    return SignedInPerson(
        oid=str(claims["oid"]).lower(),
        tenant_id=str(claims["tid"]).lower(),
        name=str(claims.get("name") or claims.get("preferred_username") or claims["oid"]),
        username=str(claims.get("preferred_username") or claims.get("email") or claims["oid"]),
        groups=tuple(str(g).lower() for g in groups) if listed and isinstance(groups, list) else (),
        groups_listed=listed,
        directory_roles=tuple(str(w).lower() for w in wids) if isinstance(wids, list) else (),
    )


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
