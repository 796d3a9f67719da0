"""Mounting the console on the application: `setup_admin(app)`, called once by app.create_app.

It adds, under /admin: the guard middleware (session, CSRF, sign-in required), the security headers on every
response, the Jinja2 environment over templates/pages, /admin/static/, the sign-in pages, and every console
section's routes and resources (see SECTIONS; Settings > Integrations > Microsoft Entra is one). Outside /admin,
the public pages the Teams manifest links (/, /privacy, /terms; see admin.public_pages): same templates and
security headers, no sign-in. Resources it needs are opened and closed in a cleanup context, after app.py's
store and token source and directory: the console's msal client and an HTTP client for small Graph reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import web
from cryptography.fernet import Fernet

from admin import audit, entra, home, policy, public_pages, signin, teams_app, users
from admin.context import NAV, SESSIONS, SETTINGS, SIGN_IN, TEMPLATES
from admin.security import console_guard, content_security_policy, security_headers, setup_refusals
from admin.session import SessionCodec
from graph.signin import ConsoleSignIn

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "templates" / "pages"
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Section:
    """A page in the console's navigation, its routes, and what sets up its own resources (if anything)."""

    key: str
    label: str
    href: str
    routes: web.RouteTableDef
    setup: Callable[[web.Application], None] | None = None


# The console's navigation, in order.
SECTIONS: tuple[Section, ...] = (
    Section("home", "Last 30 days", "/admin/", home.routes),
    Section("integrations", "Settings › Integrations", "/admin/settings/integrations", entra.routes),
    Section("users", "Protected users", "/admin/users", users.routes, users.setup),  # the sync service
    Section("policy", "Policy", "/admin/policy", policy.routes),
    Section("audit", "Audit", "/admin/audit", audit.routes, audit.setup),  # the chain's watch, the daily head
    Section("teams", "Teams app", "/admin/teams-app", teams_app.routes),
)


def setup_admin(app: web.Application) -> None:
    """Mount the console on `app` (which must get SETTINGS now and STORE, TOKENS from app.py's contexts)."""
    settings = app[SETTINGS]
    key = settings.session_key.get_secret_value()
    if not key:
        if not settings.demo:
            log.warning("WATCHWORD_SESSION_KEY is not set: console sessions use a key made for this run, so "
                        "everyone signs in again after a restart and instances cannot share sessions.")
        key = Fernet.generate_key().decode()
    if not settings.demo and not (settings.admin_group_id or settings.admin_role_ids):
        log.warning("Neither WATCHWORD_ADMIN_GROUP_ID nor WATCHWORD_ADMIN_ROLES is set: nobody can sign in to "
                    "the admin console.")
    app[SESSIONS] = SessionCodec(key)
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app[NAV] = SECTIONS
    app.middlewares.append(console_guard)
    setup_refusals(app)  # counts anonymous refusals for the guard (admin/security.py)
    app.on_response_prepare.append(security_headers(content_security_policy(settings.login_url)))
    app.cleanup_ctx.append(_console_ctx)
    app.router.add_static("/admin/static/", STATIC_DIR, append_version=False)
    app.add_routes(public_pages.routes)
    app.add_routes(signin.routes)
    for section in SECTIONS:
        app.add_routes(section.routes)
        if section.setup is not None:
            section.setup(app)


async def _console_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    sign_in = ConsoleSignIn(login_url=s.login_url, client_id=s.client_id,
                            client_secret=s.client_secret.get_secret_value(), ca_file=s.ca_file)
    app[SIGN_IN] = sign_in
    preconnect = asyncio.create_task(entra.connect_configured_tenant(app)) if s.tenant_id else None
    yield
    if preconnect is not None:
        # Let it finish rather than cancel it mid-query: a cancelled store call can leave the database
        # connection half-closed while the store shuts down.
        _, pending = await asyncio.wait({preconnect}, timeout=15)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    sign_in.close()
