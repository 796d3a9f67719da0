"""Helpers for the console's HTTP tests: the app on a tiny devtenant, signing in through its pages, fakes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet

from admin.context import DIRECTORY, SESSIONS, TOKENS
from admin.session import COOKIE_NAME, Admin, ConsoleSession
from app import create_app
from graph.directory import ConnectionCheck, PermissionStatus
from graph.permissions import PERMISSIONS
from graph.tokens import AppToken, TokenError
from settings import Settings
from tests.devtenant.browser import Browser
from tests.devtenant.tiny_org import ADMINS_GROUP, DOMAIN, TENANT_ID

SESSION_KEY = Fernet.generate_key().decode()
ADA = f"ada.lovelace@{DOMAIN}"  # Global Administrator, in "Watchword Admins"
MARGARET = f"margaret.hamilton@{DOMAIN}"  # helpdesk, in "Watchword Admins"
ALAN = f"alan.turing@{DOMAIN}"  # an engineer: no business in the console
ADA_OID = "aaaaaaaa-0000-4000-8000-000000000001"
ALL_PERMISSIONS = [p.name for p in PERMISSIONS]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def settings_for(tmp_path: Path, ready: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    """Settings for a console test: on a devtenant (`ready`), or on a fake registration nothing answers."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/console.db", session_key=SESSION_KEY)
    if ready is not None:
        settings = settings.with_devtenant(ready)
    else:
        settings = settings.replace(client_id="22222222-2222-4222-8222-222222222222", client_secret="s",
                           admin_group_id=ADMINS_GROUP, login_url="https://login.invalid")
    return settings.replace(**overrides)


def build_app(settings: Settings, *, tokens: Any = None, directory: Any = None) -> web.Application:
    """create_app, with a fake token source and/or directory put in place of the real ones."""
    app = create_app(settings)

    async def fakes(app: web.Application):
        if tokens is not None:
            app[TOKENS] = tokens
        if directory is not None:
            app[DIRECTORY] = directory
        yield

    # Right after app.py's last own context (store, tokens, directory; others such as the metrics listener may sit
    # between them): the fakes replace the real ones before the console's and the bot's contexts pick them up.
    contexts = list(app.cleanup_ctx)
    last_own = max(i for i, ctx in enumerate(contexts) if ctx.__module__ == "app")
    app.cleanup_ctx.insert(last_own + 1, fakes)
    return app


def sign_in_as(client: TestClient, admin: Admin | None = None, *, tenant_id: str = TENANT_ID) -> ConsoleSession:
    """Put a signed-in console session in the client's cookie jar, without going through Microsoft."""
    app = client.server.app
    codec = app[SESSIONS]
    admin = admin or Admin(oid=ADA_OID, tenant_id=tenant_id, name="Ada Lovelace", username=ADA, via="group",
                           signed_in_at=codec.clock())
    session = ConsoleSession.new(codec.clock())
    session.admin = admin
    set_session(client, session)
    return session


def set_session(client: TestClient, session: ConsoleSession) -> None:
    jar = client.session.cookie_jar
    jar.clear()
    jar.update_cookies({COOKIE_NAME: client.server.app[SESSIONS].dumps(session)}, response_url=client.make_url("/"))


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def csrf_token(client: TestClient, path: str = "/admin/settings/integrations") -> str:
    page = await client.get(path)
    return csrf_of(await page.text())


async def sign_in_through_devtenant(client: TestClient, ready: dict[str, Any], upn: str) -> Any:
    """Sign in like a person: our start page, devtenant's account picker, back to our callback."""
    start = await client.get("/admin/signin/start", allow_redirects=False)
    assert start.status == 302, await start.text()
    browser = Browser(ready)
    picker = browser.get(start.headers["Location"])
    assert picker.status_code == 200, picker.text
    back = browser.press(picker, upn)
    assert back.status_code == 302, back.text
    parts = urlsplit(back.headers["Location"])
    return await client.get(f"{parts.path}?{parts.query}", allow_redirects=False)


# --- fakes ---------------------------------------------------------------------------------------------
def app_token(tid: str, roles: list[str] | None = None) -> AppToken:
    return AppToken("not-a-real-token", 3600, {"tid": tid, "roles": ALL_PERMISSIONS if roles is None else roles})


@dataclass
class FakeTokens:
    """TokenSource stand-in: `tids` maps the tenant asked for to the tid the issued token carries."""

    tids: dict[str, str] = field(default_factory=dict)
    roles: list[str] | None = None
    refuse: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def token(self, tenant_id: str, *, fresh: bool = False) -> AppToken:
        self.asked.append(tenant_id)
        if tenant_id in self.refuse:
            raise TokenError(tenant_id, "invalid_client", "AADSTS7000229: missing service principal")
        return app_token(self.tids.get(tenant_id, tenant_id), self.roles)

    def close(self) -> None:
        pass


@dataclass
class FakeDirectory:
    granted: list[str] = field(default_factory=lambda: list(ALL_PERMISSIONS))
    sp_roles: tuple[str, ...] = ("Helpdesk Administrator",)
    members: set[tuple[str, str]] = field(default_factory=set)
    checks: list[str] = field(default_factory=list)

    async def check_connection(self, tenant_id: str) -> ConnectionCheck:
        self.checks.append(tenant_id)
        perms = tuple(PermissionStatus(p.name, p.purpose, p.name in self.granted) for p in PERMISSIONS)
        can_reset = "Helpdesk Administrator" in self.sp_roles
        problems = () if can_reset else ("Watchword's service principal holds no directory role that may reset "
                                         "passwords.",)
        return ConnectionCheck(tenant_id=tenant_id, checked_at=datetime.now(UTC), token_ok=True,
                               tenant_matches=True, permissions=perms,
                               sp_object_id="33333333-3333-4333-8333-333333333333", sp_roles=self.sp_roles,
                               can_reset=can_reset, problems=problems)

    async def is_member_of(self, tenant_id: str, user_id: str, group_id: str) -> bool:
        return (user_id, group_id) in self.members
