"""devtenant's login.microsoftonline.com: the Microsoft identity platform's v2.0 endpoints over https.

Routes (tenant = the tenant GUID, a verified domain, or `organizations`/`common` where Entra allows):

    GET  /{tenant}/v2.0/.well-known/openid-configuration   discovery (what msal reads first)
    GET  /{tenant}/discovery/v2.0/keys                      the signing keys (JWKS)
    POST /{tenant}/oauth2/v2.0/token                        client_credentials, authorization_code, refresh_token
    GET  /{tenant}/oauth2/v2.0/authorize                    the sign-in page (authorization code + PKCE)
    GET  /{tenant}/v2.0/adminconsent                        admin consent: sign-in, then the permissions page
    POST /{tenant}/login                                    the sign-in page's form
    POST /{tenant}/v2.0/adminconsent                        the consent page's Accept / Cancel
    GET  /{tenant}/oauth2/v2.0/logout                       sign out (back to post_logout_redirect_uri)
    GET  /oidc/userinfo                                     OIDC userinfo (Graph's host serves it at Microsoft)

Handlers only translate HTTP to `IdentityPlatform` (entra.py) and back. Forms carry an anti-CSRF
token that must equal a cookie set with the page (double submit, bound to the pending sign-in).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import jinja2
from aiohttp import web

from devtenant.entra import (
    AadError,
    AdminConsentRequest,
    IdentityPlatform,
    PendingSignIn,
    Redirect,
    RedirectableError,
    SignInProblem,
    is_global_admin,
)
from devtenant.state import GRAPH_PERMISSIONS, DevTenantState
from devtenant.tokens import InvalidToken, pairwise_sub

logger = logging.getLogger(__name__)

ENTRA = web.AppKey("devtenant_entra", IdentityPlatform)
TEMPLATES = web.AppKey("devtenant_templates", jinja2.Environment)
TEMPLATE_DIR = Path(__file__).parent / "templates"
CSRF_COOKIE = "devtenant_csrf"
_CSRF_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def setup_identity(app: web.Application, state: DevTenantState) -> None:
    """Put the identity platform and its templates on `app` and add its routes."""
    app[ENTRA] = IdentityPlatform(state)
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app.add_routes([
        web.get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        web.get("/{tenant}/discovery/v2.0/keys", keys),
        web.post("/{tenant}/oauth2/v2.0/token", token),
        web.get("/{tenant}/oauth2/v2.0/authorize", authorize),
        web.get("/{tenant}/v2.0/adminconsent", admin_consent),
        web.post("/{tenant}/login", login),
        web.post("/{tenant}/v2.0/adminconsent", admin_consent_decision),
        web.get("/{tenant}/oauth2/v2.0/logout", logout),
        web.get("/oidc/userinfo", userinfo),
    ])


# --- JSON endpoints --------------------------------------------------------------------------


async def openid_configuration(request: web.Request) -> web.Response:
    try:
        document = request.app[ENTRA].openid_configuration(_base(request), request.match_info["tenant"])
    except AadError as err:
        return _json_error(request, err)
    return web.json_response(document)


async def keys(request: web.Request) -> web.Response:
    try:
        return web.json_response(request.app[ENTRA].jwks(request.match_info["tenant"]))
    except AadError as err:
        return _json_error(request, err)


async def token(request: web.Request) -> web.Response:
    form = await _form(request)
    try:
        answer = request.app[ENTRA].token(_base(request), request.match_info["tenant"], form,
                                          _basic_credentials(request))
    except AadError as err:
        logger.info("token request refused: %s AADSTS%s", err.error, err.code)
        return _json_error(request, err)
    return web.json_response(answer, headers=_NO_STORE)


async def userinfo(request: web.Request) -> web.Response:
    platform = request.app[ENTRA]
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if scheme.lower() != "bearer" or not bearer:
        return web.json_response({"error": {"code": "InvalidAuthenticationToken",
                                            "message": "Access token is empty."}}, status=401, headers=challenge)
    try:
        claims = platform.state.issuer.verify_access_token(bearer)
    except InvalidToken:
        return web.json_response({"error": {"code": "InvalidAuthenticationToken",
                                            "message": "Access token validation failure."}},
                                 status=401, headers=challenge)
    user = platform.state.org.users.get(claims.get("oid", ""))
    if claims.get("idtyp") != "user" or "openid" not in claims.get("scp", "").split() or user is None:
        return web.json_response({"error": {"code": "Authorization_RequestDenied",
                                            "message": "Insufficient privileges to complete the operation."}},
                                 status=403)
    return web.json_response({
        "sub": pairwise_sub(user.id, claims.get("appid", "")), "name": user.display_name,
        "family_name": user.surname, "given_name": user.given_name, "email": user.mail,
    })


# --- browser endpoints -----------------------------------------------------------------------


async def authorize(request: web.Request) -> web.StreamResponse:
    csrf = _csrf_for(request)
    try:
        pending = request.app[ENTRA].begin_authorize(request.match_info["tenant"], request.query, csrf)
    except RedirectableError as err:
        return _redirect(request, err.redirect)
    except AadError as err:
        return _error_page(request, err)
    return _sign_in_page(request, pending)


async def admin_consent(request: web.Request) -> web.StreamResponse:
    csrf = _csrf_for(request)
    try:
        pending = request.app[ENTRA].begin_admin_consent(request.match_info["tenant"], request.query, csrf)
    except RedirectableError as err:
        return _redirect(request, err.redirect)
    except AadError as err:
        return _error_page(request, err)
    return _sign_in_page(request, pending)


async def login(request: web.Request) -> web.StreamResponse:
    platform = request.app[ENTRA]
    form = await _form(request)
    try:
        pending = _pending_from(request, form)
    except AadError as err:
        return _error_page(request, err)
    if form.get("switch"):
        return _sign_in_page(request, pending)
    try:
        redirect = platform.sign_in(pending, form.get("login", ""))
    except SignInProblem as problem:
        return _sign_in_page(request, pending, error=str(problem), login_hint=form.get("login"))
    if redirect is not None:
        return _redirect(request, redirect)
    user = platform.state.org.users[pending.user_id or ""]
    page = "consent.html" if is_global_admin(platform.state.org, user.id) else "need_admin.html"
    return _page(request, page, _form_context(request, pending, user=user))


async def admin_consent_decision(request: web.Request) -> web.StreamResponse:
    platform = request.app[ENTRA]
    form = await _form(request)
    try:
        pending = _pending_from(request, form)
        if not isinstance(pending.request, AdminConsentRequest) or form.get("decision") not in ("accept", "cancel"):
            raise AadError("invalid_request", None, "The consent form is not valid.")
        redirect = platform.consent(pending, accept=form["decision"] == "accept")
    except AadError as err:
        return _error_page(request, err)
    if form["decision"] == "accept":
        user = platform.state.org.users[pending.user_id or ""]
        logger.info("admin consent granted in tenant %s by %s", platform.state.tenant_id, user.user_principal_name)
    return _redirect(request, redirect)


async def logout(request: web.Request) -> web.StreamResponse:
    try:
        target = request.app[ENTRA].logout(request.match_info["tenant"], request.query)
    except AadError as err:
        return _error_page(request, err)
    response = _redirect(request, target) if target else _page(request, "signed_out.html", {})
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


# --- helpers ---------------------------------------------------------------------------------


def _base(request: web.Request) -> str:
    """The https origin clients use: fixed once the server listens, so issuers never change."""
    return request.app[ENTRA].state.base_url or f"{request.scheme}://{request.host}"


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    form: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str) and key not in form:
            form[key] = value
    return form


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """HTTP Basic client authentication (RFC 6749 §2.3.1: id and secret are form-urlencoded first)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise AadError("invalid_client", 7000218, "The request body must contain the following parameter: "
                       "'client_assertion' or 'client_secret'.", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


def _csrf_for(request: web.Request) -> str:
    """This browser's anti-CSRF token: the one in its cookie, or a new one."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    return existing if _CSRF_SHAPE.match(existing) else secrets.token_urlsafe(32)


def _pending_from(request: web.Request, form: dict[str, str]) -> PendingSignIn:
    pending = request.app[ENTRA].pending(form.get("flow", ""), form.get("csrf", ""), request.cookies.get(CSRF_COOKIE))
    if pending.request.tenant != request.match_info["tenant"]:
        raise AadError("invalid_request", None, "The form was posted to another tenant's sign-in page.")
    return pending


def _form_context(request: web.Request, pending: PendingSignIn, **extra: Any) -> dict[str, Any]:
    state = request.app[ENTRA].state
    tenant = pending.request.tenant
    return {
        "flow": pending.id, "csrf": pending.csrf, "app_name": state.app.display_name,
        "client_id": state.app.client_id, "tenant_name": state.org.display_name, "tenant_id": state.tenant_id,
        "login_action": f"/{tenant}/login", "consent_action": f"/{tenant}/v2.0/adminconsent",
        "permissions": sorted(GRAPH_PERMISSIONS.items()), **extra,
    }


def _sign_in_page(request: web.Request, pending: PendingSignIn, *, error: str | None = None,
                  login_hint: str | None = None) -> web.Response:
    platform = request.app[ENTRA]
    hint = login_hint if login_hint is not None else getattr(pending.request, "login_hint", None)
    domain = next((d.id for d in platform.state.org.domains if d.is_default), "")
    context = _form_context(
        request, pending, choices=platform.sign_in_choices(), error=error, login_hint=hint, domain=domain,
        action=f"/{pending.request.tenant}/login",
        admin_consent=isinstance(pending.request, AdminConsentRequest))
    response = _page(request, "signin.html", context)
    response.set_cookie(CSRF_COOKIE, pending.csrf, path="/", secure=True, httponly=True, samesite="Lax")
    return response


def _page(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200,
          headers: dict[str, str] | None = None) -> web.Response:
    html = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", status=status, headers={**_PAGE_HEADERS,
                                                                                        **(headers or {})})


def _error_page(request: web.Request, err: AadError) -> web.Response:
    return _page(request, "error.html", {
        "description": err.description, "error": err.error, "trace_id": str(uuid.uuid4()),
        "correlation_id": request.query.get("client-request-id") or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }, status=err.status)


def _redirect(request: web.Request, redirect: Redirect) -> web.Response:
    if redirect.mode == "form_post":
        return _page(request, "form_post.html", {"action": redirect.uri, "fields": redirect.params},
                     headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                              "script-src 'unsafe-inline'; frame-ancestors 'none'"})
    return web.Response(status=302, headers={**_NO_STORE, "Location": redirect.url()})


def _json_error(request: web.Request, err: AadError) -> web.Response:
    return web.json_response(err.body(request.headers.get("client-request-id")), status=err.status,
                             headers=_NO_STORE)
