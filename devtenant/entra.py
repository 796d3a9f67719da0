"""The identity platform's rules, without HTTP: tenants, clients, scopes, codes, tokens, consent.

`identity.py` turns requests into calls on `IdentityPlatform` and its answers (dicts, `Redirect`s,
`AadError`s) into JSON, redirects and pages. Behaviour follows Microsoft Entra ID's v2.0 endpoints
as msal and Microsoft's documentation show them; the places devtenant knowingly differs are listed
in `DEVIATIONS` so that nobody has to rediscover them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from devtenant.model import Org, User
from devtenant.state import GRAPH_PERMISSIONS, DevTenantState

DEVIATIONS = """
- Redirect URIs: any http(s) loopback URI (127.0.0.1, localhost, [::1], any port and path) is accepted
  for the Watchword app, instead of an exact list registered on the app. devtenant only ever runs on a
  developer's machine or in CI, where the bot and console listen on ports chosen at run time.
- PKCE: /authorize requires code_challenge with code_challenge_method=S256. Entra makes PKCE optional
  for confidential (web) clients; msal always sends S256, and requiring it catches a client that does not.
- Sign-in: no password and no session. The sign-in page lists directory users to pick (or takes a UPN),
  every /authorize shows it again (prompt=none answers login_required), and delegated scopes need no
  user consent.
- The groups claim behaves as if the app's groupMembershipClaims were "All" (every transitive group);
  above 200 groups the id token carries Entra's overage claims (_claim_names/_claim_sources) instead.
- Admin consent: only `.default` is accepted as scope and it grants every permission in GRAPH_PERMISSIONS;
  only a Global Administrator may consent (Entra also lets a Privileged Role Administrator grant
  application permissions).
- Delegated `.default` (and a request with only OIDC scopes) yields User.Read, what a new app registration has.
- Error descriptions in redirects carry the AADSTS text without Entra's Trace ID/Correlation ID/Timestamp
  suffix (JSON error bodies carry them as Entra does, but no error_uri). Codes follow Entra where known;
  a redirect_uri or client mismatch at code redemption answers invalid_grant AADSTS70000 (Entra's exact
  code there is not verified).
- `consumers` is an unknown tenant (AADSTS90002): devtenant has no Microsoft-account users.
- OIDC userinfo is served by the devtenant host at /oidc/userinfo (Microsoft serves it on Graph's host).
- --latency-ms and --fault-rate apply to Graph only; the identity platform answers at once and never fails.
""".strip()

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_DEFAULT_SCOPE = f"{GRAPH_RESOURCE}/.default"
TENANT_ALIASES = frozenset({"organizations", "common"})
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# Delegated Graph permissions devtenant recognises in /authorize (for the admin console's sign-in).
DELEGATED_GRAPH_SCOPES = frozenset({
    "User.Read", "User.ReadBasic.All", "User.Read.All", "GroupMember.Read.All", "Group.Read.All",
    "Directory.Read.All", "Calendars.Read", "Mail.ReadBasic", "Contacts.Read", "Chat.Read",
    "RoleManagement.Read.Directory",
})
# Entra's built-in role template ids (the same in every tenant).
ROLE_TEMPLATE_IDS: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
}
GLOBAL_ADMINISTRATOR = ROLE_TEMPLATE_IDS["Global Administrator"]

AUTH_CODE_LIFETIME_S = 600  # Entra: "about 10 minutes"
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600
PENDING_SIGN_IN_LIFETIME_S = 1800
MAX_PENDING = 10_000  # a bound on memory: the oldest pending sign-ins are dropped first
GROUPS_CLAIM_LIMIT = 200  # Entra's limit for JWTs before the overage claim


# --- errors ----------------------------------------------------------------------------------


class AadError(Exception):
    """An error as Entra reports it: `error` (OAuth), an AADSTS code and its message, an HTTP status."""

    def __init__(self, error: str, code: int | None, message: str, status: int = 400):
        super().__init__(f"{error}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.message}" if self.code else self.message

    def body(self, correlation_id: str | None = None) -> dict[str, Any]:
        """The JSON body of the token and discovery endpoints' errors."""
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"{self.description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: "
                                 f"{correlation_id}\r\nTimestamp: {timestamp}",
            "error_codes": [self.code] if self.code else [],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }


class RedirectableError(AadError):
    """An /authorize or /adminconsent error that goes back to the (validated) redirect URI."""

    def __init__(self, error: str, code: int | None, message: str, *, redirect: Redirect):
        super().__init__(error, code, message)
        self.redirect = redirect.with_params(error=error, error_description=self.description)


class SignInProblem(Exception):
    """The person on the sign-in page chose an account that cannot sign in: show the page again."""


def invalid_tenant(tenant: str) -> AadError:
    return AadError("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                    "correct tenant ID and are signing into the correct cloud. Check with your subscription "
                    "administrator, this may happen if there are no active subscriptions for the tenant.")


def missing_parameter(name: str) -> AadError:
    return AadError("invalid_request", 900144,
                    f"The request body must contain the following parameter: '{name}'.")


def unknown_client(client_id: str, directory: str) -> AadError:
    return AadError("unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found "
                    f"in the directory '{directory}'. This can happen if the application has not been "
                    "installed by the administrator of the tenant or consented to by any user in the tenant. "
                    "You may have sent your authentication request to the wrong tenant.")


def bad_redirect_uri(redirect_uri: str, client_id: str) -> AadError:
    return AadError("invalid_request", 50011, f"The redirect URI '{redirect_uri}' specified in the request "
                    f"does not match the redirect URIs configured for the application '{client_id}'. Make "
                    "sure the redirect URI sent in the request matches one added to your application in the "
                    "Azure portal.")


def invalid_grant(code: int, message: str) -> AadError:
    return AadError("invalid_grant", code, message)


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    """Where the browser goes back to, and with what, in the response mode the client asked for."""

    uri: str
    params: tuple[tuple[str, str], ...] = ()
    mode: str = "query"  # query, fragment or form_post

    def with_params(self, **params: str | None) -> Redirect:
        extra = tuple((k, v) for k, v in params.items() if v is not None)
        return Redirect(self.uri, self.params + extra, self.mode)

    def url(self) -> str:
        """The Location for query and fragment modes (form_post is rendered as a page instead)."""
        parts = urlsplit(self.uri)
        if self.mode == "fragment":
            return urlunsplit(parts._replace(fragment=urlencode(self.params)))
        query = parse_qsl(parts.query, keep_blank_values=True) + list(self.params)
        return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class AuthorizeRequest:
    tenant: str  # the path segment the client used
    client_id: str
    redirect: Redirect  # redirect_uri, response mode, and `state` already attached
    graph_scopes: tuple[str, ...]  # short Graph scope names ("User.Read"), or (".default",)
    oidc_scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str
    client_info: bool
    login_hint: str | None


@dataclass(frozen=True)
class AdminConsentRequest:
    tenant: str
    client_id: str
    redirect: Redirect  # redirect_uri with `state` kept aside: Microsoft puts it after the result
    state: str | None


@dataclass
class PendingSignIn:
    """A sign-in page on its way: which request it serves, its anti-CSRF token, who signed in."""

    id: str
    csrf: str
    request: AuthorizeRequest | AdminConsentRequest
    expires_at: float
    user_id: str | None = None


@dataclass
class _IssuedCode:
    client_id: str
    redirect_uri: str
    user_id: str
    tenant_id: str
    request: AuthorizeRequest
    expires_at: float
    redeemed: bool = False
    refresh_token: str | None = None  # issued from this code; revoked if the code is replayed


@dataclass
class _RefreshGrant:
    client_id: str
    user_id: str
    tenant_id: str
    request: AuthorizeRequest
    expires_at: float


@dataclass(frozen=True)
class SignInChoice:
    user: User
    labels: tuple[str, ...]  # why this person is listed: "Global Administrator", "Helpdesk Agents"...


@dataclass
class IdentityPlatform:
    """One running devtenant's login.microsoftonline.com."""

    state: DevTenantState
    clock: Callable[[], float] = time.time
    _pending: dict[str, PendingSignIn] = field(default_factory=dict)
    _codes: dict[str, _IssuedCode] = field(default_factory=dict)
    _refresh: dict[str, _RefreshGrant] = field(default_factory=dict)

    # --- tenants and discovery --------------------------------------------------------------

    def tenant_for(self, segment: str) -> str | None:
        """The tenant id a path segment names; None for `organizations`/`common`; else AADSTS90002."""
        if segment.lower() in TENANT_ALIASES:
            return None
        tid = self.state.resolve_tenant(segment)
        if tid is None:
            raise invalid_tenant(segment)
        return tid

    def openid_configuration(self, base: str, segment: str) -> dict[str, Any]:
        tid = self.tenant_for(segment)
        # Entra answers a domain name with the tenant's GUID, and an alias with itself and an
        # issuer template.
        path = tid or segment.lower()
        issuer_tid = tid or "{tenantid}"
        host = urlsplit(base).netloc
        return {
            "token_endpoint": f"{base}/{path}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/{path}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": list(OIDC_SCOPES),
            "issuer": f"{base}/{issuer_tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{path}/oauth2/v2.0/authorize",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{path}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                                 "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": host,
            "rbac_url": "https://pas.windows.net",
        }

    def jwks(self, segment: str) -> dict[str, Any]:
        self.tenant_for(segment)
        return self.state.issuer.jwks()

    def issuer(self, base: str, tenant_id: str) -> str:
        return f"{base}/{tenant_id}/v2.0"

    # --- the token endpoint -----------------------------------------------------------------

    def token(self, base: str, segment: str, form: Mapping[str, str],
              basic: tuple[str, str] | None = None) -> dict[str, Any]:
        """POST /{tenant}/oauth2/v2.0/token -> the JSON answer; raises AadError."""
        tid = self.tenant_for(segment)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        if grant_type == "client_credentials":
            if tid is None:
                raise AadError("invalid_request", 50059, "No tenant-identifying information found in either "
                               "the request or implied by any provided credentials.")
            self._authenticate_client(client_id, secret, tid)
            return self._client_credentials(tid, form.get("scope", ""))
        if grant_type == "authorization_code":
            self._authenticate_client(client_id, secret, tid)
            return self._redeem_code(base, client_id, form)
        if grant_type == "refresh_token":
            self._authenticate_client(client_id, secret, tid)
            return self._redeem_refresh_token(base, client_id, form)
        if grant_type == "password":
            self._authenticate_client(client_id, secret, tid)
            return self._password_sign_in(form)
        raise AadError("unsupported_grant_type", 70003,
                       f"The app requested an unsupported grant type '{grant_type}'.")

    def _password_sign_in(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Resource owner password credentials: only to check a password, as a person signing in would. A password
        set in the last `password_replication_s` fails as a wrong one (Entra has not replicated it yet); one that
        must be changed answers AADSTS50055 (expired) once it works, which is what the person then sees."""
        user = self.state.org.user(form.get("username", ""))
        from devtenant.graph_api.passwords import verify_password  # the Graph side owns password hashing

        replicated = (user is not None and user.password_set_at is not None
                      and self.clock() >= user.password_set_at + self.state.config.password_replication_s)
        if user is None or not user.account_enabled or not replicated or not verify_password(
                user, form.get("password", "")):
            raise AadError("invalid_grant", 50126, "Error validating credentials due to invalid username or "
                           "password.")
        if user.force_change_password_next_sign_in:
            raise AadError("invalid_grant", 50055, "The password is expired.")
        raise AadError("invalid_grant", 50079, "Due to a configuration change made by your administrator, or "
                       "because you moved to a new location, you must use multi-factor authentication.")

    def _authenticate_client(self, client_id: str, secret: str, tid: str | None) -> None:
        if not client_id:
            raise missing_parameter("client_id")
        if client_id != self.state.app.client_id:
            raise unknown_client(client_id, tid or self.state.tenant_id)
        if not secret:
            raise AadError("invalid_client", 7000218, "The request body must contain the following parameter: "
                           "'client_assertion' or 'client_secret'.", status=401)
        if not hmac.compare_digest(secret.encode(), self.state.app.client_secret.encode()):
            raise AadError("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                           "sent in the request is the client secret value, not the client secret ID, for a "
                           f"secret added to app '{client_id}'.", status=401)

    def _client_credentials(self, tid: str, scope: str) -> dict[str, Any]:
        scopes = scope.split()
        if not scopes:
            raise missing_parameter("scope")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise AadError("invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
                           "Client credential flows must have a scope value with /.default suffixed to the "
                           "resource identifier (application ID URI).")
        if scopes[0].rstrip("/").lower() != GRAPH_DEFAULT_SCOPE.lower():
            raise AadError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not "
                           f"valid. The scope {scope} is not valid.")
        if self.state.consented is None:
            raise AadError("invalid_client", 7000229, f"The client application {self.state.app.client_id} is "
                           f"missing service principal in the tenant {tid}. See instructions here: "
                           "https://go.microsoft.com/fwlink/?linkid=2225119")
        # Right after consent the new roles take a while to reach tokens (Entra replicates them): none until then.
        at = self.state.consented_at
        propagated = at is None or self.clock() >= at + self.state.config.consent_propagation_s
        token, expires_in = self.state.issuer.issue_app_token(
            tenant_id=tid, client_id=self.state.app.client_id, sp_object_id=self.state.sp_object_id,
            roles=sorted(self.state.consented) if propagated else [], app_name=self.state.app.display_name)
        return {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
                "access_token": token}

    def _redeem_code(self, base: str, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise missing_parameter("code")
        issued = self._codes.get(code)
        if issued is None:
            raise invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
        if issued.redeemed:
            if issued.refresh_token:  # a replayed code revokes what it gave (RFC 6749 §4.1.2)
                self._refresh.pop(issued.refresh_token, None)
            raise invalid_grant(54005, "OAuth2 Authorization code was already redeemed, please retry with a "
                                "new valid code or use an existing refresh token.")
        issued.redeemed = True  # one attempt per code, successful or not
        if self.clock() > issued.expires_at:
            raise invalid_grant(70008, "The provided authorization code or refresh token has expired due to "
                                "inactivity. Send a new interactive authorization request for this user and "
                                "resource.")
        if issued.client_id != client_id:
            raise invalid_grant(70000, "Provided grant is invalid or malformed: the authorization code was "
                                "issued to another client.")
        if form.get("redirect_uri") != issued.redirect_uri:
            raise invalid_grant(70000, "Provided grant is invalid or malformed: the reply address does not "
                                "match the reply address provided when requesting the authorization code.")
        verifier = form.get("code_verifier")
        if not verifier:
            raise missing_parameter("code_verifier")
        if not hmac.compare_digest(_s256(verifier), issued.request.code_challenge):
            raise invalid_grant(501481, "The Code_Verifier does not match the code_challenge supplied in the "
                                "authorization request.")
        answer = self._user_tokens(base, issued.user_id, issued.tenant_id, issued.request,
                                   client_info=form.get("client_info") == "1")
        issued.refresh_token = answer.get("refresh_token")
        return answer

    def _redeem_refresh_token(self, base: str, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token")
        if not token:
            raise missing_parameter("refresh_token")
        grant = self._refresh.get(token)
        if grant is None or grant.client_id != client_id:
            raise invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
        if self.clock() > grant.expires_at:
            del self._refresh[token]
            raise invalid_grant(70008, "The provided authorization code or refresh token has expired due to "
                                "inactivity. Send a new interactive authorization request for this user and "
                                "resource.")
        if grant.user_id not in self.state.org.users:
            raise invalid_grant(50173, "The provided grant has expired due to it being revoked.")
        return self._user_tokens(base, grant.user_id, grant.tenant_id, grant.request,
                                 client_info=form.get("client_info") == "1")

    def _user_tokens(self, base: str, user_id: str, tid: str, request: AuthorizeRequest, *,
                     client_info: bool) -> dict[str, Any]:
        org = self.state.org
        user = org.users[user_id]
        scp = _granted_graph_scopes(request.graph_scopes)
        access_token, expires_in = self.state.issuer.issue_user_token(
            tenant_id=tid, client_id=request.client_id, app_name=self.state.app.display_name,
            user={"oid": user.id, "name": user.display_name, "given_name": user.given_name,
                  "family_name": user.surname, "upn": user.user_principal_name},
            scopes=[*scp, *(s for s in ("openid", "profile", "email") if s in request.oidc_scopes)],
            wids=sorted({d.id for d in directory_roles(org, user_id)}))
        returned_scopes = [*scp, *(s for s in ("profile", "openid", "email") if s in request.oidc_scopes)]
        answer: dict[str, Any] = {
            "token_type": "Bearer", "scope": " ".join(returned_scopes), "expires_in": expires_in,
            "ext_expires_in": expires_in, "access_token": access_token,
        }
        if "openid" in request.oidc_scopes:
            answer["id_token"] = self.state.issuer.issue_id_token(
                issuer=self.issuer(base, tid), tenant_id=tid, client_id=request.client_id,
                claims=id_token_claims(org, user, request, groups_claim=self.state.config.groups_claim))
        if "offline_access" in request.oidc_scopes:
            refresh = secrets.token_urlsafe(48)
            self._refresh[refresh] = _RefreshGrant(request.client_id, user_id, tid, request,
                                                   self.clock() + REFRESH_TOKEN_LIFETIME_S)
            answer["refresh_token"] = refresh
        if client_info:
            answer["client_info"] = encode_client_info(user.id, tid)
        return answer

    # --- /authorize ---------------------------------------------------------------------------

    def begin_authorize(self, segment: str, query: Mapping[str, str], csrf: str) -> PendingSignIn:
        """Validate an authorization request. Raises AadError (show a page) or RedirectableError."""
        tid = self.tenant_for(segment)
        client_id = self._check_client_for_browser(query.get("client_id"), tid)
        redirect_uri = self._check_redirect_uri(query.get("redirect_uri"), client_id)
        mode = query.get("response_mode") or "query"
        state = query.get("state")
        back = Redirect(redirect_uri, mode=mode if mode in ("query", "fragment", "form_post") else "query")
        back_with_state = back.with_params(state=state)

        def fail(error: str, code: int | None, message: str) -> RedirectableError:
            return RedirectableError(error, code, message, redirect=back_with_state)

        if mode not in ("query", "fragment", "form_post"):
            raise fail("invalid_request", 900144, f"The response_mode '{mode}' is not supported.")
        response_type = query.get("response_type")
        if not response_type:
            raise fail("invalid_request", 900144, "The request body must contain the following parameter: "
                       "'response_type'.")
        if response_type != "code":
            raise fail("unsupported_response_type", 700054, f"response_type '{response_type}' is not enabled "
                       "for the application.")
        graph_scopes, oidc_scopes = self._parse_delegated_scopes(query.get("scope", ""), tid, fail)
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
        if not challenge or method != "S256":
            raise fail("invalid_request", None, "devtenant requires PKCE: code_challenge with "
                       "code_challenge_method=S256.")
        if query.get("prompt") == "none":
            raise fail("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
        request = AuthorizeRequest(
            tenant=segment, client_id=client_id, redirect=back_with_state, graph_scopes=graph_scopes,
            oidc_scopes=oidc_scopes, nonce=query.get("nonce"), code_challenge=challenge,
            client_info=query.get("client_info") == "1", login_hint=query.get("login_hint"))
        return self._new_pending(request, csrf)

    def _check_client_for_browser(self, client_id: str | None, tid: str | None) -> str:
        if not client_id:
            raise missing_parameter("client_id")
        if client_id != self.state.app.client_id:
            raise unknown_client(client_id, tid or self.state.tenant_id)
        return client_id

    @staticmethod
    def _check_redirect_uri(redirect_uri: str | None, client_id: str) -> str:
        if not redirect_uri:
            raise missing_parameter("redirect_uri")
        if not redirect_uri_allowed(redirect_uri):
            raise bad_redirect_uri(redirect_uri, client_id)
        return redirect_uri

    def _parse_delegated_scopes(self, scope: str, tid: str | None, fail: Callable[..., RedirectableError]
                                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not scope.split():
            raise fail("invalid_request", 900144, "The request body must contain the following parameter: "
                       "'scope'.")
        graph: list[str] = []
        oidc: list[str] = []
        for item in scope.split():
            if item in OIDC_SCOPES:
                oidc.append(item)
                continue
            name = item
            if "/" in item or ":" in item:
                resource, _, name = item.rpartition("/")
                if resource.rstrip("/").lower() != GRAPH_RESOURCE:
                    raise fail("invalid_resource", 500011, f"The resource principal named {resource} was not "
                               f"found in the tenant named {tid or self.state.tenant_id}. This can happen if the "
                               "application has not been installed by the administrator of the tenant or "
                               "consented to by any user in the tenant. You might have sent your "
                               "authentication request to the wrong tenant.")
            if name != ".default" and name not in DELEGATED_GRAPH_SCOPES:
                raise fail("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not "
                           f"valid. The scope {item} is not valid.")
            if name not in graph:
                graph.append(name)
        if ".default" in graph and len(graph) > 1:
            raise fail("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. "
                       f"The scope {scope} is not valid: .default cannot be combined with other scopes of the "
                       "same resource.")
        return tuple(graph), tuple(oidc)

    # --- /adminconsent --------------------------------------------------------------------------

    def begin_admin_consent(self, segment: str, query: Mapping[str, str], csrf: str) -> PendingSignIn:
        if segment.lower() in ("common", "consumers"):
            client = query.get("client_id") or ""
            raise AadError("invalid_request", 90130, f"Application '{client}' ({self.state.app.display_name}) "
                           "is not supported over the /common or /consumers endpoints. Please use the "
                           "/organizations or tenant-specific endpoint.")
        tid = self.tenant_for(segment)
        client_id = self._check_client_for_browser(query.get("client_id"), tid)
        redirect_uri = self._check_redirect_uri(query.get("redirect_uri"), client_id)
        state = query.get("state")
        back = Redirect(redirect_uri)
        scope = query.get("scope", "")
        if not scope.split():
            raise RedirectableError("invalid_request", 900144, "The request body must contain the following "
                                    "parameter: 'scope'.", redirect=back.with_params(state=state))
        if [s.rstrip("/").lower() for s in scope.split()] != [GRAPH_DEFAULT_SCOPE.lower()]:
            raise RedirectableError("invalid_scope", 70011, "The provided value for the input parameter 'scope' "
                                    f"is not valid. The scope {scope} is not valid.",
                                    redirect=back.with_params(state=state))
        request = AdminConsentRequest(tenant=segment, client_id=client_id, redirect=back, state=state)
        return self._new_pending(request, csrf)

    def consent(self, pending: PendingSignIn, *, accept: bool) -> Redirect:
        """The admin's answer on the consent page -> the redirect Microsoft sends back."""
        request = pending.request
        assert isinstance(request, AdminConsentRequest)
        self._pending.pop(pending.id, None)
        if not accept:
            return request.redirect.with_params(
                error="access_denied", error_subcode="cancel",
                error_description="AADSTS65004: User declined to consent to access the app.",
                state=request.state)
        if pending.user_id is None or not is_global_admin(self.state.org, pending.user_id):
            raise AadError("access_denied", 90094, "The grant requires admin permission.", status=403)
        self.state.consented = set(GRAPH_PERMISSIONS)
        self.state.consented_at = self.clock()
        return request.redirect.with_params(admin_consent="True", tenant=self.state.tenant_id,
                                            scope=GRAPH_DEFAULT_SCOPE, state=request.state)

    # --- the sign-in page ---------------------------------------------------------------------

    def _new_pending(self, request: AuthorizeRequest | AdminConsentRequest, csrf: str) -> PendingSignIn:
        now = self.clock()
        for key in [k for k, p in self._pending.items() if p.expires_at < now]:
            del self._pending[key]
        while len(self._pending) >= MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        pending = PendingSignIn(secrets.token_urlsafe(24), csrf, request, now + PENDING_SIGN_IN_LIFETIME_S)
        self._pending[pending.id] = pending
        return pending

    def pending(self, flow_id: str, csrf_form: str, csrf_cookie: str | None) -> PendingSignIn:
        """The sign-in a form belongs to, if the form came from this browser's page and is fresh."""
        pending = self._pending.get(flow_id)
        if (pending is None or pending.expires_at < self.clock() or not csrf_cookie
                or not hmac.compare_digest(csrf_form, pending.csrf)
                or not hmac.compare_digest(csrf_cookie, pending.csrf)):
            raise AadError("invalid_request", None, "This sign-in page has expired or was not opened in this "
                           "browser. Go back to the application and sign in again.")
        return pending

    def sign_in(self, pending: PendingSignIn, login: str) -> Redirect | None:
        """The person picked an account. An authorization request returns its redirect (with the code);
        an admin consent request returns None: show the consent page (or say an admin is needed)."""
        login = login.strip()
        if not login:
            raise SignInProblem("Enter a valid email address, phone number, or Skype name.")
        user = self.state.org.user(login)
        if user is None:
            raise SignInProblem("This username may be incorrect. Make sure you typed it correctly. "
                                "Otherwise, contact your admin.")
        if not user.account_enabled:
            raise SignInProblem("AADSTS50057: The user account is disabled.")
        pending.user_id = user.id
        request = pending.request
        if isinstance(request, AdminConsentRequest):
            return None
        del self._pending[pending.id]
        code = secrets.token_urlsafe(48)
        self._prune_codes()
        self._codes[code] = _IssuedCode(request.client_id, request.redirect.uri, user.id, self.state.tenant_id,
                                        request, self.clock() + AUTH_CODE_LIFETIME_S)
        return request.redirect.with_params(
            code=code, client_info=encode_client_info(user.id, self.state.tenant_id) if request.client_info
            else None, session_state=str(uuid.uuid4()))

    def _prune_codes(self) -> None:
        now = self.clock()
        for key in [k for k, c in self._codes.items() if c.expires_at < now - AUTH_CODE_LIFETIME_S]:
            del self._codes[key]

    def sign_in_choices(self, *, per_kind: int = 4) -> list[SignInChoice]:
        """A handful of accounts to pick from: Global Administrators, the Watchword admins and helpdesk
        groups, and a few ordinary people, each listed once with why it is listed."""
        org = self.state.org
        labels: dict[str, list[str]] = {}

        def add(user_ids: list[str], label: str, limit: int) -> None:
            for uid in [u for u in user_ids if _signable(org, u)][:limit]:
                labels.setdefault(uid, []).append(label)

        add([a.principal_id for a in org.role_assignments if a.role_definition_id == GLOBAL_ADMINISTRATOR],
            "Global Administrator", per_kind)
        for gid in (org.admins_group_id, org.helpdesk_group_id):
            if gid in org.groups:
                add(org.transitive_user_members(gid), org.groups[gid].display_name, per_kind)
        # Ordinary people from across the directory (its first entries are the executives and IT).
        everyone = list(org.users)
        stride = max(1, len(everyone) // (per_kind + 1))
        ordinary: list[str] = []
        for start in range(stride, len(everyone) + stride, stride):
            for uid in everyone[start % len(everyone):start % len(everyone) + stride]:
                if (uid not in labels and uid not in ordinary and _signable(org, uid)
                        and not org.users[uid].is_service_account):
                    ordinary.append(uid)
                    break
            if len(ordinary) == per_kind:
                break
        add(ordinary, "", per_kind)
        return [SignInChoice(org.users[uid], tuple(x for x in found if x)) for uid, found in labels.items()]

    # --- logout -------------------------------------------------------------------------------

    def logout(self, segment: str, query: Mapping[str, str]) -> Redirect | None:
        """Where to send the browser after signing out; None: show the signed-out page."""
        self.tenant_for(segment)
        target = query.get("post_logout_redirect_uri")
        if target and redirect_uri_allowed(target):
            return Redirect(target).with_params(state=query.get("state"))
        return None


# --- helpers -----------------------------------------------------------------------------------


def redirect_uri_allowed(uri: str) -> bool:
    """Loopback http(s) URIs on any port: see DEVIATIONS (devtenant runs only on developers' machines)."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")
            and not parts.username and not parts.password and not parts.fragment)


def directory_roles(org: Org, user_id: str) -> list[Any]:
    """Directory roles held directly or through a role-assignable group."""
    roles = list(org.roles_of(user_id))
    for group in org.transitive_member_of(user_id):
        if group.is_assignable_to_role:
            roles.extend(org.roles_of(group.id))
    return roles


def is_global_admin(org: Org, user_id: str) -> bool:
    return any(r.id == GLOBAL_ADMINISTRATOR or r.display_name == "Global Administrator"
               for r in directory_roles(org, user_id))


def id_token_claims(org: Org, user: User, request: AuthorizeRequest, *, groups_claim: bool = False
                    ) -> dict[str, Any]:
    """The id token's claims. `groups` only when the app registration asks for them (`groups_claim`), and over
    Entra's 200-group limit for a JWT the overage form instead (`_claim_names`/`_claim_sources`)."""
    claims: dict[str, Any] = {
        "oid": user.id,
        "name": user.display_name,
        "preferred_username": user.user_principal_name,
        "rh": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("="),
    }
    if "email" in request.oidc_scopes and user.mail:
        claims["email"] = user.mail
    if request.nonce is not None:
        claims["nonce"] = request.nonce
    if not groups_claim:
        return claims
    groups = [g.id for g in org.transitive_member_of(user.id)]
    if len(groups) <= GROUPS_CLAIM_LIMIT:
        claims["groups"] = groups
    else:  # Entra's overage: the app must ask Graph
        claims["hasgroups"] = True
        claims["_claim_names"] = {"groups": "src1"}
        claims["_claim_sources"] = {"src1": {
            "endpoint": f"https://graph.windows.net/{org.tenant_id}/users/{user.id}/getMemberObjects"}}
    return claims


def encode_client_info(oid: str, tid: str) -> str:
    raw = json.dumps({"uid": oid, "utid": tid}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _granted_graph_scopes(requested: tuple[str, ...]) -> list[str]:
    # `.default` for delegated access: what an app registration has by default, User.Read.
    scopes = ["User.Read"] if requested in ((), (".default",)) else list(requested)
    return [s for s in scopes if s not in OIDC_SCOPES]


def _signable(org: Org, user_id: str) -> bool:
    user = org.users.get(user_id)
    return user is not None and user.account_enabled


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
