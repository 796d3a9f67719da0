"""Signing in to the console with OpenID Connect on devtenant: admins get in, everyone else gets a 403."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import ANY

import pytest

from admin.access import Refusal, decide
from admin.context import SESSIONS, STORE
from graph.signin import SignedInPerson
from store.audit import AuditFilter
from tests.admin.support import (
    ADA,
    ALAN,
    MARGARET,
    FakeDirectory,
    build_app,
    settings_for,
    sign_in_through_devtenant,
)
from tests.devtenant.helpers import TINY, ThreadedDevTenant
from tests.devtenant.tiny_org import ADMINS_GROUP, GLOBAL_ADMIN_ROLE, TENANT_ID
from tests.devtenant.tiny_org import ALAN as ALAN_OID

OTHER_TENANT = "99999999-9999-4999-8999-999999999999"


@pytest.fixture(scope="module")
def tenant() -> Iterator[ThreadedDevTenant]:
    dt = ThreadedDevTenant(TINY)
    yield dt
    dt.close()


@pytest.fixture
async def client(aiohttp_client, tmp_path, tenant):
    """A fresh Watchword process on the module's devtenant, whose throttling bookkeeping starts clean too (as
    tests/graph/support.py's directory_for does): the configured tenant's check at start reads the sign-in logs, and
    the earlier tests' reads had spent their budget, so later tests' apps waited it out as they stopped."""
    tenant.run(lambda: tenant.running.state.throttles.clear())
    return await aiohttp_client(build_app(settings_for(tmp_path, tenant.ready)))


async def _sign_in_audit(client) -> list:
    page = await client.server.app[STORE].audit.query(AuditFilter(action="console.sign_in"))
    return list(page.entries)


async def test_a_member_of_the_admin_group_signs_in_and_lands_on_integrations(client, tenant):
    back = await sign_in_through_devtenant(client, tenant.ready, ADA)
    assert back.status == 302 and back.headers["Location"] == "/admin/settings/integrations"
    page = await client.get("/admin/settings/integrations")
    html = await page.text()
    assert page.status == 200
    assert "Ada Lovelace" in html and "Sign out" in html and "Microsoft Entra" in html
    [entry] = await _sign_in_audit(client)
    assert (entry.outcome, entry.actor, entry.tenant_id) == ("allowed", ADA, TENANT_ID)
    assert entry.details == {"name": "Ada Lovelace", "via": "group", "correlation_id": ANY}


async def test_sign_in_returns_to_the_page_first_asked_for(client, tenant):
    first = await client.get("/admin/entra/connect", allow_redirects=False)
    nxt = first.headers["Location"].split("next=", 1)[1]
    start = await client.get(f"/admin/signin/start?next={nxt}", allow_redirects=False)
    from tests.devtenant.browser import Browser

    browser = Browser(tenant.ready)
    back = browser.press(browser.get(start.headers["Location"]), MARGARET)
    callback = back.headers["Location"].split("127.0.0.1", 1)[1].split("/", 1)[1]
    landed = await client.get("/" + callback, allow_redirects=False)
    assert landed.headers["Location"] == "/admin/entra/connect"


async def test_someone_outside_the_admin_group_is_refused_with_403_and_audited(client, tenant):
    refused = await sign_in_through_devtenant(client, tenant.ready, ALAN)
    html = await refused.text()
    assert refused.status == 403
    assert "You can't use the admin console" in html and "Alan Turing" in html
    assert "not a Watchword administrator" in html
    # The page says who may sign in: the group by its name, and the directory roles allowed.
    assert "Who may sign in" in html and "Members of the group “Watchword Admins”" in html
    assert "Global Administrators of the organisation Watchword serves" in html
    assert "Privileged Role Administrators of the organisation Watchword serves" in html
    # No session was granted: the console still sends Alan to the sign-in page.
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 302
    [entry] = await _sign_in_audit(client)
    assert (entry.outcome, entry.actor, entry.subject) == ("refused", ALAN, ALAN_OID)
    assert entry.details["reason"] == "not_admin"


async def test_a_global_administrator_outside_the_admin_group_gets_in_by_role(aiohttp_client, tmp_path, tenant):
    other_group = "dddddddd-0000-4000-8000-000000000099"
    client = await aiohttp_client(build_app(settings_for(tmp_path, tenant.ready, admin_group_id=other_group)))
    back = await sign_in_through_devtenant(client, tenant.ready, ADA)
    assert back.status == 302 and back.headers["Location"] == "/admin/settings/integrations"
    [entry] = await _sign_in_audit(client)
    assert entry.outcome == "allowed" and entry.details["via"] == "role"


async def test_signing_in_gives_a_new_session_id_and_csrf_token(client, tenant):
    await client.get("/admin/signin")
    codec = client.server.app[SESSIONS]
    before, _ = codec.loads(next(iter(client.session.cookie_jar)).value)
    await sign_in_through_devtenant(client, tenant.ready, ADA)
    after, _ = codec.loads(next(iter(client.session.cookie_jar)).value)
    assert after.admin is not None and after.admin.username == ADA
    assert after.sid != before.sid and after.csrf != before.csrf


async def test_a_callback_with_a_state_this_browser_never_got_is_refused(client, tenant):
    start = await client.get("/admin/signin/start", allow_redirects=False)
    assert start.status == 302
    forged = await client.get("/admin/signin/callback", params={"code": "stolen", "state": "not-ours"})
    assert forged.status == 400
    assert "not started in this browser" in await forged.text()
    [entry] = await _sign_in_audit(client)
    assert entry.outcome == "failed" and entry.details["error"] == "state_mismatch"


async def test_a_callback_without_a_sign_in_in_progress_is_refused(client):
    response = await client.get("/admin/signin/callback", params={"code": "x", "state": "y"})
    assert response.status == 400
    assert (await client.get("/admin/settings/integrations", allow_redirects=False)).status == 302


async def test_an_error_from_microsoft_is_shown_and_audited(client):
    await client.get("/admin/signin/start", allow_redirects=False)
    cookie_state = client.server.app[SESSIONS].loads(next(iter(client.session.cookie_jar)).value)[0]
    state = cookie_state.data["signin"]["flow"]["state"]
    response = await client.get("/admin/signin/callback", params={
        "error": "access_denied", "error_description": "AADSTS50126: user cancelled", "state": state})
    assert response.status == 400
    assert "cancelled the sign-in" in await response.text()


# --- the rule itself ------------------------------------------------------------------------------------
def _person(**overrides) -> SignedInPerson:
    values = {"oid": ALAN_OID, "tenant_id": TENANT_ID, "name": "Alan Turing", "username": ALAN, "groups": (),
              "groups_listed": True, "directory_roles": ()}
    return SignedInPerson(**{**values, **overrides})


async def test_too_many_groups_for_the_token_means_asking_the_directory():
    person = _person(groups_listed=False)
    directory = FakeDirectory(members={(ALAN_OID, ADMINS_GROUP)})
    decision = await decide(person, admin_group_id=ADMINS_GROUP, admin_role_ids=(), known_tenants=frozenset(),
                            directory=directory)
    assert decision.allowed and decision.via == "group"
    refused = await decide(person, admin_group_id=ADMINS_GROUP, admin_role_ids=(), known_tenants=frozenset(),
                           directory=FakeDirectory())
    assert not refused.allowed and refused.refusal == Refusal.NOT_ADMIN


async def test_a_token_without_a_groups_claim_means_asking_the_directory():
    # Entra sends no `groups` claim unless the app registration asks for it: an admin must still get in.
    person = _person(groups_listed=False, groups=())
    decision = await decide(person, admin_group_id=ADMINS_GROUP, admin_role_ids=(), known_tenants=frozenset(),
                            directory=FakeDirectory(members={(ALAN_OID, ADMINS_GROUP)}))
    assert decision.allowed and decision.via == "group"


async def test_directory_role_holders_get_in_only_from_a_known_tenant():
    person = _person(directory_roles=(GLOBAL_ADMIN_ROLE,))
    allowed = await decide(person, admin_group_id="", admin_role_ids=(GLOBAL_ADMIN_ROLE,),
                           known_tenants=frozenset({TENANT_ID}), directory=None)
    assert allowed.allowed and allowed.via == "role"
    # A Global Administrator of any tenant holds the same role template id: before a tenant is known, no.
    unknown = await decide(person, admin_group_id="", admin_role_ids=(GLOBAL_ADMIN_ROLE,), known_tenants=frozenset(),
                           directory=None)
    assert not unknown.allowed
    elsewhere = await decide(_person(tenant_id=OTHER_TENANT, directory_roles=(GLOBAL_ADMIN_ROLE,)),
                             admin_group_id=ADMINS_GROUP, admin_role_ids=(GLOBAL_ADMIN_ROLE,),
                             known_tenants=frozenset({TENANT_ID}), directory=None)
    assert not elsewhere.allowed and elsewhere.refusal == Refusal.OTHER_TENANT


async def test_with_no_admin_group_or_role_configured_nobody_gets_in():
    decision = await decide(_person(groups=(ADMINS_GROUP,)), admin_group_id="", admin_role_ids=(),
                            known_tenants=frozenset(), directory=None)
    assert not decision.allowed and decision.refusal == Refusal.NO_ADMINS_CONFIGURED
    assert "WATCHWORD_ADMIN_GROUP_ID" in decision.message
