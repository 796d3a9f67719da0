"""Admin consent at /{tenant}/v2.0/adminconsent, as Watchword's onboarding drives it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from devtenant.state import GRAPH_PERMISSIONS
from tests.devtenant.browser import Browser, query_pairs
from tests.devtenant.helpers import msal_app
from tests.devtenant.tiny_org import DOMAIN, TENANT_ID

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
REDIRECT = "http://localhost:3978/admin/consented"
ADA = f"ada.lovelace@{DOMAIN}"  # Global Administrator
MARGARET = f"margaret.hamilton@{DOMAIN}"  # Helpdesk Administrator: not enough to consent


def _consent_url(dt, tenant: str = TENANT_ID, **overrides: str) -> str:
    params = {"client_id": dt.ready["client_id"], "scope": GRAPH_DEFAULT, "redirect_uri": REDIRECT,
              "state": "xyz-123", **overrides}
    return f"{dt.ready['login']}/{tenant}/v2.0/adminconsent?{urlencode(params)}"


def _consent_page(dt, browser: Browser, upn: str, tenant: str = TENANT_ID, **overrides: str):
    sign_in = browser.get(_consent_url(dt, tenant, **overrides))
    assert sign_in.status_code == 200, sign_in.text
    return browser.press(sign_in, upn)


@pytest.mark.parametrize("tenant_segment", [TENANT_ID, DOMAIN, "organizations"])
def test_accepting_redirects_with_microsofts_parameters_and_grants_every_permission(make_tenant, tenant_segment):
    dt = make_tenant(unconsented=True)
    browser = Browser(dt.ready)
    consent = _consent_page(dt, browser, ADA, tenant=tenant_segment)
    assert "Permissions requested" in consent.text
    assert "Watchword" in consent.text and "Tiny Example Ltd" in consent.text
    for name, purpose in GRAPH_PERMISSIONS.items():
        assert name in consent.text
        assert purpose.replace('"', "&#34;") in consent.text

    back = browser.press(consent, "accept")

    assert back.status_code == 302
    location = back.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    assert query_pairs(location) == [("admin_consent", "True"), ("tenant", TENANT_ID),
                                     ("scope", GRAPH_DEFAULT), ("state", "xyz-123")]
    assert dt.run(lambda: dt.running.state.consented) == set(GRAPH_PERMISSIONS)
    token = msal_app(dt.ready).acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in token, token


def test_cancelling_redirects_with_access_denied_and_grants_nothing(make_tenant):
    dt = make_tenant(unconsented=True)
    browser = Browser(dt.ready)
    back = browser.press(_consent_page(dt, browser, ADA), "cancel")
    assert back.status_code == 302
    assert query_pairs(back.headers["Location"]) == [
        ("error", "access_denied"), ("error_subcode", "cancel"),
        ("error_description", "AADSTS65004: User declined to consent to access the app."),
        ("state", "xyz-123")]
    assert dt.run(lambda: dt.running.state.consented) is None


def test_someone_who_is_not_a_global_administrator_cannot_consent(make_tenant):
    dt = make_tenant(unconsented=True)
    browser = Browser(dt.ready)
    page = _consent_page(dt, browser, MARGARET)
    assert "Need admin approval" in page.text
    assert not any(value == "accept" for form in Browser.forms(page) for _, value, _ in form.buttons)
    # Even a hand-made Accept is refused.
    form = next(f for f in Browser.forms(page) if any(v == "cancel" for _, v, _ in f.buttons))
    forged = browser.submit(form, decision="accept")
    assert forged.status_code == 403
    assert "Location" not in forged.headers
    assert dt.run(lambda: dt.running.state.consented) is None


def test_a_non_admin_can_switch_to_an_admin_account_and_consent(make_tenant):
    dt = make_tenant(unconsented=True)
    browser = Browser(dt.ready)
    need_admin = _consent_page(dt, browser, MARGARET)
    sign_in_again = browser.press(need_admin, "1")
    consent = browser.press(sign_in_again, ADA)
    back = browser.press(consent, "accept")
    assert dict(query_pairs(back.headers["Location"]))["admin_consent"] == "True"


def test_admin_consent_over_common_is_refused_without_redirecting(make_tenant):
    dt = make_tenant(unconsented=True)
    page = Browser(dt.ready).get(_consent_url(dt, tenant="common"))
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "AADSTS90130" in page.text


def test_admin_consent_to_an_unregistered_redirect_uri_shows_aadsts50011(make_tenant):
    dt = make_tenant(unconsented=True)
    page = Browser(dt.ready).get(_consent_url(dt, redirect_uri="https://evil.example/consented"))
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "AADSTS50011" in page.text


def test_admin_consent_for_other_scopes_is_sent_back_as_invalid_scope(make_tenant):
    dt = make_tenant(unconsented=True)
    back = Browser(dt.ready).get(_consent_url(dt, scope="https://graph.microsoft.com/Mail.Send"))
    assert back.status_code == 302
    params = dict(query_pairs(back.headers["Location"]))
    assert params["error"] == "invalid_scope" and params["state"] == "xyz-123"


def test_a_consent_form_replayed_after_use_is_refused(make_tenant):
    dt = make_tenant(unconsented=True)
    browser = Browser(dt.ready)
    consent = _consent_page(dt, browser, ADA)
    browser.press(consent, "cancel")
    replay = browser.press(consent, "accept")
    assert replay.status_code == 400
    assert dt.run(lambda: dt.running.state.consented) is None


def test_a_global_administrator_of_a_generated_org_is_offered_and_can_consent(make_tenant):
    dt = make_tenant(generated=True, unconsented=True, seed=5, users=40)
    browser = Browser(dt.ready)
    sign_in = browser.get(_consent_url(dt, dt.ready["tenant_id"]))
    admins = [value for form in Browser.forms(sign_in) for name, value, text in form.buttons
              if name == "login" and "Global Administrator" in text]
    assert admins, sign_in.text
    back = browser.press(browser.press(sign_in, admins[0]), "accept")
    assert dict(query_pairs(back.headers["Location"]))["tenant"] == dt.ready["tenant_id"]
    assert dt.run(lambda: dt.running.state.consented) == set(GRAPH_PERMISSIONS)
