"""What a console page may use. Everything another page of the console needs is here; import from this module.

The app's resources (typed keys on the aiohttp application, set by app.py and admin.app):

    request.app[SETTINGS]   settings.Settings        (public_url, login_url, admin_group_id...)
    request.app[STORE]      store.Store               (tenants, protected_users, audit...)
    request.app[TOKENS]     graph.tokens.TokenSource  (app-only Graph tokens per tenant)
    request.app[DIRECTORY]  graph.directory.Directory (check_connection, sync_users, group_names...)

A page handler, with the route table its module exposes (admin.app mounts `routes` of each section module):

    routes = web.RouteTableDef()

    @routes.get("/admin/users")
    @require_admin
    async def users_page(request: web.Request) -> web.Response:
        tenant = await connected_tenant(request)              # Tenant | None (None: show "connect first")
        return render(request, "users.html", tenant=tenant, users=...)

    @routes.post("/admin/users/sync")
    @require_admin
    async def sync(request: web.Request) -> web.Response:
        form = await request.post()                          # the CSRF token was already checked
        ...
        await audit(request, "users.sync", "ok", tenant_id=tenant.tenant_id, details={"added": 3})
        flash(request, "Synchronised 3 people.")
        raise web.HTTPSeeOther("/admin/users")               # POST-redirect-GET

Rules the base already enforces, so a page does not have to:
- Every path under /admin needs a signed-in admin (anonymous GETs go to the sign-in page, other methods get
  401), except the sign-in/out pages and /admin/static/. `require_admin` states it at the handler and gives
  `current_admin(request)`.
- Every POST/PUT/PATCH/DELETE under /admin must carry the session's CSRF token (form field `csrf_token`, or
  header `X-CSRF-Token`), else 403. In a template: `{% from "_macros.html" import csrf_field with context %}`
  then `{{ csrf_field() }}` inside each <form method="post">.
- Every response carries the security headers (CSP `default-src 'self'`, no inline script or style: put JS
  and CSS in admin/static/ and link them as `/admin/static/<file>`).

Templates live in templates/pages/ and extend "base.html" (blocks: title, content; set `active` to the nav
key: "integrations", "users", "policy", "audit", "teams"). `render` adds `admin`, `csrf_token`, `flashes`, `nav`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jinja2
from aiohttp import web

from admin.session import Admin, ConsoleSession, SessionCodec
from graph.signin import ConsoleSignIn
from resources import DIRECTORY, GRAPH_HTTP, SETTINGS, STORE, TOKENS
from store.tenants import Tenant, TenantStatus

__all__ = [
    "DIRECTORY", "GRAPH_HTTP", "SETTINGS", "SIGN_IN", "STORE", "TEMPLATES", "TOKENS", "Admin", "ConsoleSession",
    "audit",
    "connected_tenant", "current_admin", "current_session", "flash", "render", "require_admin",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# --- application keys (besides those in resources.py) -----------------------------------------------------
TEMPLATES = web.AppKey("admin_templates", jinja2.Environment)
SESSIONS = web.AppKey("admin_sessions", SessionCodec)
SIGN_IN = web.AppKey("admin_sign_in", ConsoleSignIn)
# The navigation (admin.app.SECTIONS), for base.html.
NAV = web.AppKey("admin_nav", tuple)

# --- request keys ----------------------------------------------------------------------------------------
SESSION = web.RequestKey("admin_session", ConsoleSession)


def current_session(request: web.Request) -> ConsoleSession:
    """The console session of this request (anonymous until someone signs in)."""
    return request[SESSION]


def current_admin(request: web.Request) -> Admin:
    """The signed-in admin. Only call it behind `require_admin` (or the /admin guard)."""
    admin = request[SESSION].admin
    if admin is None:
        raise web.HTTPUnauthorized(text="Sign in to the console first.")
    return admin


def require_admin(handler: Handler) -> Handler:
    """Mark a handler as admins-only. The /admin guard already refuses everyone else; this repeats the check
    at the handler so a route mounted outside /admin by mistake is not left open."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        session = request.get(SESSION)
        if session is None or session.admin is None:
            raise web.HTTPUnauthorized(text="Sign in to the console first.")
        return await handler(request)

    guarded.__watchword_admin_only__ = True  # type: ignore[attr-defined]
    return guarded


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render templates/pages/<template> with the console's common context."""
    session = request.get(SESSION)
    flashes: list[str] = []
    if session is not None and session.data.get("flash"):
        flashes = list(session.data.pop("flash"))
        session.changed = True
    html = request.app[TEMPLATES].get_template(template).render(
        admin=session.admin if session else None, csrf_token=session.csrf if session else "",
        flashes=flashes, nav=request.app[NAV], **context)
    return web.Response(text=html, content_type="text/html", status=status)


def flash(request: web.Request, message: str) -> None:
    """A one-line message for the next page this person sees (after a redirect)."""
    session = request[SESSION]
    session.data.setdefault("flash", []).append(message)
    session.changed = True


async def audit(request: web.Request, action: str, outcome: str, *, subject: str | None = None,
                tenant_id: str | None = None, details: Mapping[str, Any] | None = None,
                actor: str | None = None) -> None:
    """Append to the audit log as the signed-in admin (or `actor`). Never put secrets in `details`."""
    if actor is None:
        session = request.get(SESSION)
        actor = session.admin.username if session is not None and session.admin else "anonymous"
    await request.app[STORE].audit.append(action=action, outcome=outcome, actor=actor, subject=subject,
                                          tenant_id=tenant_id, details=dict(details or {}))


async def connected_tenant(request: web.Request) -> Tenant | None:
    """The tenant the console works on: the first connected one (Watchword serves one tenant per install)."""
    tenants = await request.app[STORE].tenants.list_tenants()
    live = [t for t in tenants if t.status != TenantStatus.DISCONNECTED]
    return live[0] if live else None
