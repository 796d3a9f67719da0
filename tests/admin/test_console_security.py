"""The console's guard: security headers, CSRF on every POST, who may open what, and the session cookie."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from admin.context import SESSIONS, STORE
from admin.session import ABSOLUTE_LIFETIME_S, COOKIE_NAME, IDLE_TIMEOUT_S, ConsoleSession
from store.audit import AuditFilter
from tests.admin.support import build_app, csrf_token, set_session, settings_for, sign_in_as
from tests.devtenant.tiny_org import TENANT_ID
from tests.store.sql import scalar

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "pages"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(build_app(settings_for(tmp_path)))


@pytest.fixture
def clock(client) -> Clock:
    fake = Clock()
    client.server.app[SESSIONS].clock = fake
    return fake


# --- headers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin/signin", "/admin/settings/integrations", "/admin/static/console.css",
                                  "/admin/no-such-page", "/healthz", "/nowhere"])
async def test_every_response_carries_the_security_headers(client, path):
    response = await client.get(path, allow_redirects=False)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (path, name)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


async def test_signed_in_pages_carry_the_headers_and_are_not_cached(client):
    sign_in_as(client)
    response = await client.get("/admin/settings/integrations")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_or_style_for_the_csp_to_block():
    for page in TEMPLATES.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert "<style" not in html and " style=" not in html, page.name
        assert not re.search(r"\son[a-z]+=", html), page.name  # onclick=... is inline script too


# --- CSRF -----------------------------------------------------------------------------------------------
async def test_post_without_csrf_token_is_refused_with_403(client):
    sign_in_as(client)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID})
    assert response.status == 403
    assert "This form has expired" in await response.text()


async def test_post_with_a_wrong_csrf_token_is_refused_with_403(client):
    sign_in_as(client)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID, "csrf_token": "x" * 43})
    assert response.status == 403


async def test_csrf_token_of_another_session_is_refused(client):
    sign_in_as(client)
    token = await csrf_token(client)
    sign_in_as(client)  # a new session (another person, or after signing in again)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID, "csrf_token": token})
    assert response.status == 403


async def test_post_from_another_origin_is_refused_even_with_the_token(client):
    sign_in_as(client)
    token = await csrf_token(client)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID, "csrf_token": token},
                                 headers={"Origin": "https://evil.example"})
    assert response.status == 403


async def test_post_with_the_sessions_token_goes_through(client):
    sign_in_as(client)
    token = await csrf_token(client)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID, "csrf_token": token},
                                 allow_redirects=False)
    assert response.status == 303


async def test_csrf_token_in_a_header_is_accepted(client):
    sign_in_as(client)
    token = await csrf_token(client)
    response = await client.post("/admin/entra/connect", data={"tenant": TENANT_ID},
                                 headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert response.status == 303


async def test_sign_out_needs_the_csrf_token_too(client):
    sign_in_as(client)
    response = await client.post("/admin/signout")
    assert response.status == 403
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 200


async def test_a_refused_post_is_audited_without_the_token(client):
    sign_in_as(client)
    await client.post("/admin/entra/connect", data={"tenant": TENANT_ID, "csrf_token": "wrong"})
    page = await client.server.app[STORE].audit.query(AuditFilter(action="console.request_refused"))
    assert len(page.entries) == 1
    entry = page.entries[0]
    assert entry.outcome == "refused" and entry.details["reason"] == "csrf_mismatch"
    assert "wrong" not in str(entry.details)


# --- who may open what ----------------------------------------------------------------------------------
async def test_anonymous_get_is_sent_to_the_sign_in_page(client):
    response = await client.get("/admin/entra/connect", allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/admin/signin" and parse_qs(location.query) == {"next": ["/admin/entra/connect"]}


async def test_anonymous_post_with_a_valid_token_still_needs_sign_in(client):
    codec = client.server.app[SESSIONS]
    anonymous = ConsoleSession.new(codec.clock())
    set_session(client, anonymous)
    response = await client.post("/admin/entra/check", data={"csrf_token": anonymous.csrf})
    assert response.status == 401


async def test_next_after_sign_in_cannot_point_off_site(client):
    for evil in ("https://evil.example/", "//evil.example/admin", "/\\evil.example", "/elsewhere"):
        page = await client.get("/admin/signin", params={"next": evil})
        assert 'href="/admin/signin/start?next=/admin/settings/integrations"' in await page.text(), evil


# --- the session cookie ---------------------------------------------------------------------------------
async def test_session_cookie_is_httponly_and_lax_and_not_secure_over_http(client):
    response = await client.get("/admin/signin")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("watchword_console=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert f"Max-Age={IDLE_TIMEOUT_S}" in cookie


async def test_session_cookie_is_secure_with_the_host_prefix_behind_an_https_public_url(aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(settings_for(tmp_path, public_url="https://watchword.example.com")))
    response = await client.get("/admin/signin")
    cookie = response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert cookie.startswith("__Host-watchword_console=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_session_cookie_holds_nothing_readable(client):
    session = sign_in_as(client)
    response = await client.get("/admin/settings/integrations")
    cookie = response.headers["Set-Cookie"]
    # The admin's surname, not "Ada": three letters turn up by chance in a sealed cookie's base64 about once in 500.
    assert "Lovelace" not in cookie and session.csrf not in cookie and session.sid not in cookie


async def test_session_expires_after_30_idle_minutes(client, clock):
    sign_in_as(client)
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 200
    clock.now += IDLE_TIMEOUT_S - 60
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 200
    clock.now += IDLE_TIMEOUT_S - 60  # active a minute ago: the idle timer restarted
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 200
    clock.now += IDLE_TIMEOUT_S + 1
    expired = await client.get("/admin/settings/integrations", allow_redirects=False)
    assert expired.status == 302 and expired.headers["Location"].startswith("/admin/signin")
    page = await client.get(expired.headers["Location"])
    assert "signed out after 30 minutes without activity" in await page.text()


async def test_session_ends_at_its_absolute_lifetime_however_active(client, clock):
    sign_in_as(client)
    for _ in range(ABSOLUTE_LIFETIME_S // (IDLE_TIMEOUT_S - 60) + 2):
        clock.now += IDLE_TIMEOUT_S - 60
        response = await client.get("/admin/settings/integrations", allow_redirects=False)
        if response.status != 200:
            break
    assert response.status == 302
    page = await client.get(response.headers["Location"])
    assert "8-hour limit" in await page.text()


async def test_a_tampered_cookie_gives_an_anonymous_session(client):
    sign_in_as(client)
    cookie = next(iter(client.session.cookie_jar))
    client.session.cookie_jar.update_cookies({cookie.key: cookie.value[:-4] + "AAAA"},
                                             response_url=client.make_url("/"))
    response = await client.get("/admin/settings/integrations", allow_redirects=False)
    assert response.status == 302


async def test_signing_out_ends_the_session_and_a_kept_copy_of_the_cookie_is_refused(client):
    sign_in_as(client)
    token = await csrf_token(client)
    kept = next(iter(client.session.cookie_jar)).value
    response = await client.post("/admin/signout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/signed-out"
    assert 'watchword_console=""' in response.headers["Set-Cookie"]
    client.session.cookie_jar.update_cookies({"watchword_console": kept}, response_url=client.make_url("/"))
    replay = await client.get("/admin/settings/integrations", allow_redirects=False)
    assert replay.status == 302
    page = await client.get("/admin/signed-out")
    assert "Sign out of Microsoft as well" in await page.text()
    audit = await client.server.app[STORE].audit.query(AuditFilter(action="console.sign_out"))
    assert [e.actor for e in audit.entries] == ["ada.lovelace@tiny.example"]


async def _sign_out_keeping_a_copy(client) -> str:
    """Sign in, keep a copy of the cookie, sign out (which deletes the browser's cookie); the copy."""
    sign_in_as(client)
    token = await csrf_token(client)
    kept = next(iter(client.session.cookie_jar)).value
    response = await client.post("/admin/signout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    return kept


async def _replay(client, cookie: str):
    client.session.cookie_jar.update_cookies({COOKIE_NAME: cookie}, response_url=client.make_url("/"))
    return await client.get("/admin/settings/integrations", allow_redirects=False)


async def test_a_cookie_kept_from_before_sign_out_is_refused_by_another_instance(aiohttp_client, tmp_path):
    one = await aiohttp_client(build_app(settings_for(tmp_path)))
    other = await aiohttp_client(build_app(settings_for(tmp_path)))  # same database, same session key
    sign_in_as(one)
    live = next(iter(one.session.cookie_jar)).value
    assert (await _replay(other, live)).status == 200  # the other instance reads the same cookies

    kept = await _sign_out_keeping_a_copy(one)

    replay = await _replay(other, kept)
    assert replay.status == 302 and replay.headers["Location"].startswith("/admin/signin")


async def test_a_cookie_kept_from_before_sign_out_is_refused_after_a_restart(aiohttp_client, tmp_path):
    before = await aiohttp_client(build_app(settings_for(tmp_path)))
    kept = await _sign_out_keeping_a_copy(before)
    await before.close()

    after = await aiohttp_client(build_app(settings_for(tmp_path)))  # restarted: same database, same key

    replay = await _replay(after, kept)
    assert replay.status == 302 and replay.headers["Location"].startswith("/admin/signin")


async def test_the_store_keeps_a_hash_of_the_signed_out_id_and_only_for_signed_in_sessions(client):
    anonymous = ConsoleSession.new(client.server.app[SESSIONS].clock())
    set_session(client, anonymous)
    await client.post("/admin/signout", data={"csrf_token": anonymous.csrf})
    store = client.server.app[STORE]
    assert await scalar(store, "SELECT count(*) FROM console_signouts") == 0

    await _sign_out_keeping_a_copy(client)

    assert await scalar(store, "SELECT count(*) FROM console_signouts") == 1
    stored = await scalar(store, "SELECT sid_hash FROM console_signouts")
    assert len(stored) == 64 and all(c in "0123456789abcdef" for c in stored)


# --- anonymous refusals are counted, not written one by one --------------------------------------------------
async def test_a_flood_of_anonymous_refused_posts_is_a_few_audit_rows_with_the_count(aiohttp_client, tmp_path,
                                                                                     monkeypatch):
    from admin import security

    unlimited = settings_for(tmp_path, anonymous_refusals_per_minute=100_000)  # counting alone (the limit: below)
    client = await aiohttp_client(build_app(unlimited))
    now = [1000.0]
    monkeypatch.setattr(security, "monotonic", lambda: now[0])
    for n in range(600):
        response = await client.post(f"/admin/entra/connect/{n % 7}", data={"tenant": "x"})
        assert response.status == 403
    await client.post("/admin/signout", data={"csrf_token": "forged"})  # another reason: its own first row
    store = client.server.app[STORE]
    refused = AuditFilter(action="console.request_refused")
    assert len((await store.audit.query(refused)).entries) == 2

    now[0] += security.REFUSAL_WINDOW_S + 1
    assert (await client.post("/admin/entra/connect", data={"tenant": "x"})).status == 403

    entries = (await store.audit.query(refused)).entries
    counted = [e for e in entries if "count" in e.details]
    assert len(entries) == 4 and len(counted) == 1
    [tally] = counted
    assert tally.details["count"] == 599 and tally.details["reason"] == "csrf_missing"
    assert tally.actor == "anonymous" and len(tally.details["sample_paths"]) == security.SAMPLE_PATHS
    assert sum(e.details.get("count", 1) for e in entries) == 602


async def test_an_address_refused_too_often_is_told_to_retry_later_and_the_flood_stays_a_few_rows(
        aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(settings_for(tmp_path, anonymous_refusals_per_minute=20)))
    statuses = [(await client.post(f"/admin/entra/connect/{n % 7}", data={"tenant": "x"})).status
                for n in range(600)]
    assert statuses[:20] == [403] * 20 and set(statuses[20:]) == {429}
    limited = await client.post("/admin/policy", data={"csrf_token": "forged"})
    assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many" in await limited.text()

    # Signed in, the same address is served (an admin's requests are never anonymous refusals).
    session = sign_in_as(client)
    assert (await client.post("/admin/audit/verify", data={"csrf_token": session.csrf})).status == 200

    await client.close()  # the counted refusals are written on the way out
    from store import open_store

    store = await open_store(settings_for(tmp_path).database_url)
    try:
        entries = (await store.audit.query(AuditFilter(action="console.request_refused"))).entries
    finally:
        await store.close()
    assert len(entries) <= 4  # the first of each kind, then one row per kind with its count
    assert sum(e.details.get("count", 1) for e in entries) == 601
    assert {e.details["reason"] for e in entries} == {"csrf_missing", "rate_limited"}


async def test_the_limit_is_per_address_and_lifts_after_the_minute() -> None:
    from refusals import RefusalLimit

    now = [0.0]
    limit = RefusalLimit(2, clock=lambda: now[0])
    for _ in range(2):
        assert limit.wait_s("192.0.2.1") is None
        limit.refused("192.0.2.1")
    assert limit.wait_s("192.0.2.1") == 60
    assert limit.wait_s("192.0.2.2") is None  # another address: its own count
    now[0] = 45.2
    assert limit.wait_s("192.0.2.1") == 15
    now[0] = 60.0
    assert limit.wait_s("192.0.2.1") is None


async def test_refusals_still_counted_are_written_when_the_console_stops(aiohttp_client, tmp_path):
    settings = settings_for(tmp_path)
    client = await aiohttp_client(build_app(settings))
    for _ in range(3):
        await client.post("/admin/entra/connect", data={"tenant": "x"})
    await client.close()  # runs the app's cleanup

    from store import open_store

    store = await open_store(settings.database_url)
    try:
        entries = (await store.audit.query(AuditFilter(action="console.request_refused"))).entries
    finally:
        await store.close()
    assert sorted(e.details.get("count", 1) for e in entries) == [1, 2]


async def test_a_signed_in_admins_refusals_are_each_written(client):
    sign_in_as(client)
    for _ in range(3):
        await client.post("/admin/entra/connect", data={"tenant": "x", "csrf_token": "wrong"})
    page = await client.server.app[STORE].audit.query(AuditFilter(action="console.request_refused"))
    assert len(page.entries) == 3 and all(e.actor != "anonymous" for e in page.entries)
