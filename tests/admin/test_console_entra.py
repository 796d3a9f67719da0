"""Settings > Integrations > Microsoft Entra: the Tenant ID form, the consent link, and Microsoft's answer checked
before anything is recorded (the returned tenant can be forged)."""

from __future__ import annotations

import asyncio
from unittest.mock import ANY
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

import admin.entra
from admin.context import STORE
from admin.session import ConsoleSession, SessionCodec
from devtenant.state import DevTenantConfig
from graph.consent import DomainNotFound, TenantInputError, describe_consent_error, parse_tenant
from graph.permissions import PERMISSIONS
from store.audit import AuditFilter
from store.tenants import TenantStatus
from tests.admin.support import (
    ADA,
    ALL_PERMISSIONS,
    FakeDirectory,
    FakeTokens,
    build_app,
    csrf_token,
    settings_for,
    sign_in_as,
    sign_in_through_devtenant,
)
from tests.devtenant.browser import Browser
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import DOMAIN, TENANT_ID

FORGED = "66666666-6666-4666-8666-666666666666"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


# --- what the admin types -------------------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "value", "is_guid"), [
    (TENANT_ID, TENANT_ID, True),
    ("  11111111-1111-4111-8111-111111111111 ", TENANT_ID, True),
    (TENANT_ID.upper(), TENANT_ID, True),
    ("contoso.onmicrosoft.com", "contoso.onmicrosoft.com", False),
    ("Contoso.COM", "contoso.com", False),
    ("eu.sub-domain.contoso.co.uk", "eu.sub-domain.contoso.co.uk", False),
])
def test_a_tenant_id_or_a_verified_domain_is_accepted(typed, value, is_guid):
    parsed = parse_tenant(typed)
    assert (parsed.value, parsed.is_guid) == (value, is_guid)


@pytest.mark.parametrize(("typed", "says"), [
    ("", "Enter your Tenant ID"),
    ("11111111-1111-4111-8111-11111111111", "is not a valid Tenant ID"),
    ("11111111-1111-4111-8111-11111111111g", "is not a valid Tenant ID"),
    ("https://contoso.com/tenant", "looks like a web address"),
    ("ada@contoso.com", "looks like an email address"),
    ("common", "not a tenant of its own"),
    ("organizations", "not a tenant of its own"),
    ("contoso", "neither a Tenant ID nor a domain"),
    ("contoso..com", "neither a Tenant ID nor a domain"),
    ("-contoso.com", "neither a Tenant ID nor a domain"),
    ("contoso.com/path", "neither a Tenant ID nor a domain"),
    ("<script>.com", "neither a Tenant ID nor a domain"),
])
def test_anything_else_gets_a_message_saying_what_to_enter(typed, says):
    with pytest.raises(TenantInputError, match=says):
        parse_tenant(typed)


UNKNOWN_DOMAIN = "no-such-tenant.example"


async def _fake_discovery(http, login_url: str, domain: str) -> str:
    """Microsoft's OpenID discovery as the fake client sees it: every domain is a tenant's but one."""
    if domain == UNKNOWN_DOMAIN:
        raise DomainNotFound(domain)
    return TENANT_ID


@pytest.fixture
async def fake_client(aiohttp_client, tmp_path, monkeypatch):
    """The console with a token source, directory and domain lookup that the test controls."""
    monkeypatch.setattr(admin.entra, "resolve_domain", _fake_discovery)
    tokens, directory = FakeTokens(), FakeDirectory()
    client = await aiohttp_client(build_app(settings_for(tmp_path), tokens=tokens, directory=directory))
    client.tokens, client.directory = tokens, directory
    sign_in_as(client)
    return client


async def test_a_bad_tenant_id_keeps_what_was_typed_and_says_why(fake_client):
    token = await csrf_token(fake_client, "/admin/entra/connect")
    response = await fake_client.post("/admin/entra/connect", data={"tenant": "contoso", "csrf_token": token})
    html = await response.text()
    assert response.status == 400
    assert 'value="contoso"' in html and 'aria-invalid="true"' in html
    assert "neither a Tenant ID nor a domain" in html


async def test_an_unknown_domain_is_caught_on_our_page_before_microsofts(fake_client):
    token = await csrf_token(fake_client, "/admin/entra/connect")
    response = await fake_client.post("/admin/entra/connect", data={"tenant": UNKNOWN_DOMAIN, "csrf_token": token},
                                      allow_redirects=False)
    html = await response.text()
    assert response.status == 400 and 'aria-invalid="true"' in html
    assert f"No Microsoft Entra tenant has the domain “{UNKNOWN_DOMAIN}”" in html and "AADSTS" not in html
    [entry] = (await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.consent_started"))).entries
    assert (entry.outcome, entry.details) == ("refused", {"reason": "unknown_domain", "correlation_id": ANY})


async def test_a_domain_is_looked_up_at_the_real_identity_platform_through_openid_discovery(aiohttp_client,
                                                                                           tmp_path):
    dt = ThreadedDevTenant(DevTenantConfig(seed=1, users=20, unconsented=True))
    try:
        client = await aiohttp_client(build_app(settings_for(tmp_path, dt.ready)))
        sign_in_as(client)
        token = await csrf_token(client, "/admin/entra/connect")
        unknown = await client.post("/admin/entra/connect", data={"tenant": UNKNOWN_DOMAIN, "csrf_token": token},
                                    allow_redirects=False)
        assert unknown.status == 400 and "No Microsoft Entra tenant has the domain" in await unknown.text()
        known = await client.post("/admin/entra/connect", data={"tenant": DOMAIN, "csrf_token": token},
                                  allow_redirects=False)
        assert known.status == 303 and known.headers["Location"] == "/admin/entra/consent"
    finally:
        dt.close()


async def test_typed_markup_is_escaped_when_shown_again(fake_client):
    token = await csrf_token(fake_client, "/admin/entra/connect")
    response = await fake_client.post("/admin/entra/connect",
                                      data={"tenant": '"><script>alert(1)</script>', "csrf_token": token})
    html = await response.text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


async def _start_connect(client, typed: str = TENANT_ID) -> dict[str, list[str]]:
    token = await csrf_token(client, "/admin/entra/connect")
    posted = await client.post("/admin/entra/connect", data={"tenant": typed, "csrf_token": token},
                               allow_redirects=False)
    assert posted.status == 303 and posted.headers["Location"] == "/admin/entra/consent"
    page = await client.get("/admin/entra/consent")
    html = await page.text()
    assert "Open link" in html
    href = html.split('id="consent-link" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    return {"url": [href], **parse_qs(urlsplit(href).query)}


async def test_the_open_link_is_microsofts_admin_consent_with_a_fresh_state(fake_client):
    link = await _start_connect(fake_client, DOMAIN)
    parts = urlsplit(link["url"][0])
    assert f"{parts.scheme}://{parts.netloc}" == "https://login.invalid"
    assert parts.path == f"/{DOMAIN}/v2.0/adminconsent"
    assert link["client_id"] == ["22222222-2222-4222-8222-222222222222"]
    assert link["scope"] == [GRAPH_DEFAULT]
    assert link["redirect_uri"] == [str(fake_client.make_url("/admin/entra/callback"))]
    assert len(link["state"][0]) >= 32
    again = await _start_connect(fake_client, DOMAIN)
    assert again["state"] != link["state"]


async def test_a_callback_without_state_is_refused(fake_client):
    await _start_connect(fake_client)
    response = await fake_client.get("/admin/entra/callback", params={"admin_consent": "True", "tenant": TENANT_ID})
    assert response.status == 400
    assert "does not belong to a connection started here" in await response.text()
    assert await fake_client.server.app[STORE].tenants.get(TENANT_ID) is None
    assert fake_client.tokens.asked == []


async def test_a_callback_with_a_wrong_state_is_refused_and_the_real_one_still_works(fake_client):
    link = await _start_connect(fake_client)
    wrong = await fake_client.get("/admin/entra/callback",
                                  params={"admin_consent": "True", "tenant": TENANT_ID, "state": "guess"})
    assert wrong.status == 400
    right = await fake_client.get("/admin/entra/callback",
                                  params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert right.status == 200
    assert "Installation completed successfully" in await right.text()


async def test_a_state_works_once(fake_client):
    link = await _start_connect(fake_client)
    params = {"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]}
    assert (await fake_client.get("/admin/entra/callback", params=params)).status == 200
    replay = await fake_client.get("/admin/entra/callback", params=params)
    assert replay.status == 400


async def test_a_state_works_once_even_with_a_cookie_saved_before_it_was_used(fake_client):
    link = await _start_connect(fake_client)
    saved = {c.key: c.value for c in fake_client.session.cookie_jar}
    params = {"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]}
    assert (await fake_client.get("/admin/entra/callback", params=params)).status == 200
    fake_client.session.cookie_jar.update_cookies(saved, response_url=fake_client.make_url("/"))

    replay = await fake_client.get("/admin/entra/callback", params=params)

    assert replay.status == 400 and "already used" in await replay.text()
    refused = await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.connect", outcome="refused"))
    assert refused.entries[0].details["reason"] == "state_used"


async def test_a_state_from_another_browser_session_is_refused(fake_client):
    link = await _start_connect(fake_client)
    sign_in_as(fake_client)  # the same admin, another session (another browser)
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert response.status == 400


async def test_a_forged_tenant_is_refused_when_its_token_names_another_tenant(fake_client):
    # Someone crafts the redirect: state is right (e.g. a victim admin's own), tenant is not.
    link = await _start_connect(fake_client, DOMAIN)
    fake_client.tokens.tids = {FORGED: TENANT_ID}  # Microsoft's token for "FORGED" says tid = the real tenant
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": FORGED, "state": link["state"][0]})
    html = await response.text()
    assert response.status == 400
    assert "could not confirm the connection" in html and "was not genuine" in html
    store = fake_client.server.app[STORE]
    assert await store.tenants.get(FORGED) is None and await store.tenants.get(TENANT_ID) is None
    [entry] = (await store.audit.query(AuditFilter(action="entra.connect"))).entries
    assert (entry.outcome, entry.details["reason"]) == ("refused", "tenant_mismatch")


async def test_a_returned_tenant_other_than_the_guid_asked_for_is_refused(fake_client):
    link = await _start_connect(fake_client, TENANT_ID)
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": FORGED, "state": link["state"][0]})
    assert response.status == 400
    assert f"not for the tenant {TENANT_ID}" in await response.text()
    assert fake_client.tokens.asked == []  # refused before asking Microsoft anything


async def test_a_domain_that_belongs_to_another_tenant_is_refused(fake_client):
    link = await _start_connect(fake_client, "contoso.com")
    fake_client.tokens.tids = {"contoso.com": FORGED}
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert response.status == 400
    assert "belongs to another tenant" in await response.text()


async def test_a_tenant_that_will_not_issue_a_token_is_refused(fake_client):
    link = await _start_connect(fake_client)
    fake_client.tokens.refuse = {TENANT_ID}
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert response.status == 400
    assert "would not issue Watchword a token" in await response.text()


async def test_consent_for_a_tenant_other_than_the_admins_own_is_refused(fake_client):
    link = await _start_connect(fake_client, FORGED)
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": FORGED, "state": link["state"][0]})
    assert response.status == 400
    assert "Sign in with an account of the tenant you are connecting" in await response.text()


async def test_a_declined_consent_is_explained_in_plain_words(fake_client):
    link = await _start_connect(fake_client)
    response = await fake_client.get("/admin/entra/callback", params={
        "error": "access_denied", "error_subcode": "cancel",
        "error_description": "AADSTS65004: User declined to consent to access the app.", "state": link["state"][0]})
    html = await response.text()
    assert response.status == 400
    assert "An administrator declined the permissions" in html
    assert "choose Accept" in html and "AADSTS65004" in html
    [entry] = (await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.connect"))).entries
    assert entry.outcome == "declined"


@pytest.mark.parametrize(("error", "description", "says"), [
    ("consent_required", "AADSTS65001: The user or administrator has not consented", "Global Administrator"),
    ("invalid_tenant", "AADSTS90002: Tenant 'x' not found.", "does not name a Microsoft Entra tenant"),
    ("invalid_request", "AADSTS50011: The redirect URI ... does not match", "WATCHWORD_PUBLIC_URL"),
    ("server_error", "", "Try Connect again"),
])
def test_other_consent_errors_say_what_to_do(error, description, says):
    problem = describe_consent_error(error, description)
    assert says in problem.what_to_do or says in problem.explanation


async def test_a_good_consent_records_the_tenant_and_shows_the_permissions(fake_client):
    fake_client.directory.granted = [p for p in ALL_PERMISSIONS if p != "Chat.Read.All"]
    link = await _start_connect(fake_client)
    response = await fake_client.get("/admin/entra/callback",
                                     params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    html = await response.text()
    assert response.status == 200
    assert "Installation completed successfully" in html
    for name in ALL_PERMISSIONS:
        assert name in html
    assert "1 permission missing: Chat.Read.All" in html
    tenant = await fake_client.server.app[STORE].tenants.get(TENANT_ID)
    assert tenant.status == TenantStatus.NEEDS_ATTENTION
    assert "Chat.Read.All" not in tenant.granted_permissions
    assert len(tenant.granted_permissions) == len(ALL_PERMISSIONS) - 1
    assert tenant.sp_directory_roles == ("Helpdesk Administrator",)
    assert fake_client.tokens.asked == [TENANT_ID, TENANT_ID]  # verify, then the organisation's name
    [entry] = (await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.connect"))).entries
    assert (entry.outcome, entry.actor, entry.tenant_id) == ("ok", ADA, TENANT_ID)


async def _connected(client, **directory) -> None:
    for key, value in directory.items():
        setattr(client.directory, key, value)
    link = await _start_connect(client)
    response = await client.get("/admin/entra/callback",
                                params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert response.status == 200


async def test_the_connection_page_says_how_to_assign_a_reset_role_when_none_is_held(fake_client):
    await _connected(fake_client, sp_roles=())
    html = await (await fake_client.get("/admin/entra")).text()
    assert "Not assigned" in html and "Roles &amp; admins" in html and "Add assignments" in html
    assert "Check again" in html and "Last checked" in html


async def test_check_again_rechecks_records_and_audits(fake_client):
    await _connected(fake_client, sp_roles=())
    fake_client.directory.sp_roles = ("Helpdesk Administrator",)
    token = await csrf_token(fake_client, "/admin/entra")
    response = await fake_client.post("/admin/entra/check", data={"csrf_token": token})
    html = await response.text()
    assert response.status == 200 and "Connection checked: everything works." in html
    assert "Assigned" in html
    tenant = await fake_client.server.app[STORE].tenants.get(TENANT_ID)
    assert tenant.status == TenantStatus.CONNECTED and tenant.sp_directory_roles == ("Helpdesk Administrator",)
    [entry] = (await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.check"))).entries
    assert entry.outcome == "ok" and entry.actor == ADA


async def test_disconnect_asks_first_then_disconnects_and_audits(fake_client):
    await _connected(fake_client)
    confirm = await fake_client.get("/admin/entra/disconnect")
    html = await confirm.text()
    assert "Disconnect Tiny" in html or "Disconnect " in html
    token = await csrf_token(fake_client, "/admin/entra/disconnect")
    unconfirmed = await fake_client.post("/admin/entra/disconnect", data={"csrf_token": token})
    assert "Nothing was disconnected" in await unconfirmed.text()
    assert (await fake_client.server.app[STORE].tenants.get(TENANT_ID)).is_connected
    done = await fake_client.post("/admin/entra/disconnect", data={"csrf_token": token, "confirm": TENANT_ID})
    assert done.status == 200 and "Disconnected" in await done.text()
    assert not (await fake_client.server.app[STORE].tenants.get(TENANT_ID)).is_connected
    [entry] = (await fake_client.server.app[STORE].audit.query(AuditFilter(action="entra.disconnect"))).entries
    assert entry.outcome == "ok" and entry.actor == ADA


# --- the whole flow against devtenant ------------------------------------------------------------------
async def test_connecting_an_unconsented_devtenant_end_to_end(aiohttp_client, tmp_path):
    # Before consent Graph cannot be asked who is in the admins group: the README has the app registration ask
    # for the `groups` claim so that the first administrator gets in to connect the tenant.
    dt = ThreadedDevTenant(DevTenantConfig(seed=1, users=20, unconsented=True, groups_claim=True))
    try:
        client = await aiohttp_client(build_app(settings_for(tmp_path, dt.ready)))
        assert (await sign_in_through_devtenant(client, dt.ready, ADA)).status == 302
        integrations = await (await client.get("/admin/settings/integrations")).text()
        assert "Not connected" in integrations and 'href="/admin/entra/connect"' in integrations
        link = await _start_connect(client, DOMAIN)
        browser = Browser(dt.ready)
        consent = browser.press(browser.get(link["url"][0]), ADA)
        assert "Permissions requested" in consent.text
        back = browser.press(consent, "accept")
        parts = urlsplit(back.headers["Location"])
        assert parts.path == "/admin/entra/callback"
        # As on Microsoft's side, the new permissions take seconds to reach the tokens: the page waits and asks again.
        done = await client.get(f"{parts.path}?{parts.query}")
        html = await done.text()
        assert done.status == 200 and "Waiting for Microsoft to apply the consent" in html, html
        assert 'http-equiv="refresh"' in html and "/admin/entra/consent/wait" in html
        for _ in range(30):
            await asyncio.sleep(1)
            done = await client.get("/admin/entra/consent/wait")
            html = await done.text()
            if "Waiting for Microsoft" not in html:
                break
        assert done.status == 200, html
        assert "Installation completed successfully" in html and "Tiny Example Ltd" in html
        assert html.count('class="granted"') == len(PERMISSIONS)
        tenant = await client.server.app[STORE].tenants.get(TENANT_ID)
        assert tenant.status == TenantStatus.CONNECTED and tenant.sp_directory_roles == ("User Administrator",)
    finally:
        dt.close()


async def test_consent_that_never_reaches_the_tokens_is_explained_after_waiting(fake_client, monkeypatch):
    fake_client.tokens.roles = []  # Microsoft keeps issuing tokens without the permissions
    link = await _start_connect(fake_client)
    waiting = await fake_client.get("/admin/entra/callback",
                                    params={"admin_consent": "True", "tenant": TENANT_ID, "state": link["state"][0]})
    assert "Waiting for Microsoft to apply the consent" in await waiting.text()
    assert (await fake_client.server.app[STORE].tenants.get(TENANT_ID)) is None  # nothing connected yet
    monkeypatch.setattr(admin.entra, "CONSENT_PROPAGATION_S", 0.0)  # the two minutes are over
    failed = await fake_client.get("/admin/entra/consent/wait")
    html = await failed.text()
    assert failed.status == 400 and "Microsoft has not applied the consent" in html
    outcomes = [e.outcome for e in (await fake_client.server.app[STORE].audit.query(
        AuditFilter(action="entra.connect"))).entries]
    assert outcomes == ["refused", "waiting"]


def test_sessions_round_trip_through_the_cookie_codec():
    codec = SessionCodec(Fernet.generate_key())
    session = ConsoleSession.new(codec.clock())
    session.data["consent"] = {"state": "s", "tenant": DOMAIN}
    loaded, why = codec.loads(codec.dumps(session))
    assert why == "" and loaded.sid == session.sid and loaded.data == session.data
