"""devtenant's identity platform, driven by the real msal and a scripted browser over https."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace

import jwt
import pytest

from devtenant.state import GRAPH_PERMISSIONS
from tests.devtenant.browser import Browser, query_of
from tests.devtenant.helpers import TINY, ThreadedDevTenant, https_session, msal_app
from tests.devtenant.tiny_org import (
    ALAN,
    ALL_COMPANY,
    COMPILERS_TEAM,
    DOMAIN,
    HELPDESK_GROUP,
    MARGARET,
    TENANT_ID,
)

# msal nudges every query-mode flow towards form_post; both modes are tested here.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
CALLBACK = "http://localhost:3978/auth/callback"


@pytest.fixture(scope="module")
def claiming() -> Iterator[ThreadedDevTenant]:
    """The tiny org with an app registration that asks for the `groups` claim (groupMembershipClaims)."""
    dt = ThreadedDevTenant(replace(TINY, groups_claim=True))
    yield dt
    dt.close()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _verify_with_jwks(tenant, token: str, audience: str) -> dict:
    ready = tenant.ready
    session = https_session(ready)
    jwks_uri = session.get(f"{ready['authority']}/v2.0/.well-known/openid-configuration").json()["jwks_uri"]
    keys = session.get(jwks_uri).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience)


# --- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("segment", [TENANT_ID, DOMAIN, f"corp.{DOMAIN}"])
def test_discovery_by_tenant_id_or_verified_domain_names_the_tenant(tenant, segment):
    base = tenant.ready["login"]
    doc = https_session(tenant.ready).get(f"{base}/{segment}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{TENANT_ID}/v2.0"
    assert doc["token_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{base}/{TENANT_ID}/discovery/v2.0/keys"
    assert doc["end_session_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/logout"


def test_discovery_for_organizations_keeps_the_alias_and_an_issuer_template(tenant):
    base = tenant.ready["login"]
    doc = https_session(tenant.ready).get(f"{base}/organizations/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{base}/organizations/oauth2/v2.0/token"


def test_unknown_tenant_is_answered_with_aadsts90002(tenant):
    base = tenant.ready["login"]
    response = https_session(tenant.ready).get(f"{base}/nowhere.example/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nowhere.example' not found.")
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()


def test_server_certificate_is_trusted_for_localhost_and_127_0_0_1(tenant):
    port = tenant.ready["login"].rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost"):
        url = f"https://{host}:{port}/{TENANT_ID}/discovery/v2.0/keys"
        assert https_session(tenant.ready).get(url).json()["keys"][0]["kty"] == "RSA"


# --- client credentials ----------------------------------------------------------------------


def test_msal_client_credentials_token_carries_tenant_audience_roles_and_service_principal(tenant):
    result = msal_app(tenant.ready).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result
    claims = _verify_with_jwks(tenant, result["access_token"], "https://graph.microsoft.com")
    assert claims["tid"] == TENANT_ID
    assert claims["appid"] == tenant.ready["client_id"]
    assert claims["oid"] == tenant.running.state.sp_object_id
    assert set(claims["roles"]) == set(GRAPH_PERMISSIONS)
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/"
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000


def test_msal_with_a_wrong_secret_gets_invalid_client_aadsts7000215(tenant):
    result = msal_app(tenant.ready, secret="not-the-secret").acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_msal_with_an_unknown_client_id_gets_unauthorized_client_aadsts700016(tenant):
    app = msal_app(tenant.ready, client_id="00000000-0000-4000-8000-00000000beef")
    result = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


def test_unconsented_tenant_refuses_client_credentials_with_aadsts7000229(make_tenant):
    unconsented = make_tenant(unconsented=True)
    result = msal_app(unconsented.ready).acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000229]
    assert "missing service principal" in result["error_description"]


def test_client_credentials_accept_http_basic_client_authentication(tenant):
    ready = tenant.ready
    basic = base64.b64encode(f"{ready['client_id']}:{ready['client_secret']}".encode()).decode()
    response = https_session(ready).post(
        f"{ready['authority']}/oauth2/v2.0/token", headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"].startswith("no-store")
    assert _claims(response.json()["access_token"])["tid"] == TENANT_ID


@pytest.mark.parametrize(("scope", "code"), [
    ("https://graph.microsoft.com/User.Read.All", 1002012),
    ("https://management.azure.com/.default", 70011),
])
def test_client_credentials_need_the_graph_default_scope(tenant, scope, code):
    ready = tenant.ready
    response = https_session(ready).post(f"{ready['authority']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "scope": scope, "client_id": ready["client_id"],
        "client_secret": ready["client_secret"]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_codes"] == [code]


def test_client_credentials_on_organizations_are_refused_for_want_of_a_tenant(tenant):
    ready = tenant.ready
    app = msal_app(ready, authority=f"{ready['login']}/organizations")
    with pytest.warns(DeprecationWarning, match="organizations"):
        result = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert result["error"] == "invalid_request"
    assert result["error_codes"] == [50059]


# --- authorization code + PKCE ----------------------------------------------------------------


def _sign_in_with_msal(tenant, upn: str, **flow_kwargs):
    app = msal_app(tenant.ready)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK, **flow_kwargs)
    browser = Browser(tenant.ready)
    page = browser.get(flow["auth_uri"])
    assert page.status_code == 200, page.text
    back = browser.press(page, upn)
    assert back.status_code == 302, back.text
    assert back.headers["Location"].startswith(CALLBACK + "?")
    return app, flow, query_of(back.headers["Location"])


def test_auth_code_flow_with_msal_gives_an_id_token_naming_the_user_and_their_groups(claiming):
    tenant = claiming
    app, flow, auth_response = _sign_in_with_msal(tenant, f"margaret.hamilton@{DOMAIN}")
    assert auth_response["state"] == flow["state"]
    assert {"code", "session_state", "client_info"} <= auth_response.keys()

    result = app.acquire_token_by_auth_code_flow(flow, auth_response)

    assert "error" not in result, result
    claims = _verify_with_jwks(tenant, result["id_token"], tenant.ready["client_id"])
    assert claims["iss"] == f"{tenant.ready['login']}/{TENANT_ID}/v2.0"
    assert claims["oid"] == MARGARET and claims["tid"] == TENANT_ID
    assert claims["name"] == "Margaret Hamilton"
    assert claims["preferred_username"] == f"margaret.hamilton@{DOMAIN}"
    assert set(claims["groups"]) == {HELPDESK_GROUP, ALL_COMPANY, tenant.ready["admins_group_id"]}
    assert {"iat", "nbf", "exp", "nonce"} <= claims.keys()
    access = _claims(result["access_token"])
    assert access["aud"] == "https://graph.microsoft.com" and "User.Read" in access["scp"].split()
    assert access["oid"] == MARGARET
    assert result["refresh_token"]
    assert app.get_accounts()[0]["home_account_id"] == f"{MARGARET}.{TENANT_ID}"


def test_groups_claim_holds_nested_memberships(claiming):
    tenant = claiming
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    claims = app.acquire_token_by_auth_code_flow(flow, auth_response)["id_token_claims"]
    assert set(claims["groups"]) == {ALL_COMPANY, COMPILERS_TEAM}


def test_a_tampered_code_verifier_is_rejected(tenant):
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    flow["code_verifier"] = flow["code_verifier"][:-4] + "AAAA"
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_an_authorization_code_can_be_redeemed_only_once(tenant):
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    assert "access_token" in app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    again = app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    assert again["error"] == "invalid_grant"
    assert again["error_codes"] == [54005]


def test_the_redirect_uri_at_redemption_must_be_the_one_used_to_sign_in(tenant):
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    flow["redirect_uri"] = "http://localhost:3978/elsewhere"
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "invalid_grant"


def test_msal_refreshes_tokens_with_the_refresh_token(tenant):
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    first = app.acquire_token_by_auth_code_flow(flow, auth_response)
    account = app.get_accounts()[0]
    refreshed = app.acquire_token_silent(["User.Read"], account=account, force_refresh=True)
    assert refreshed and "access_token" in refreshed, refreshed
    assert refreshed["access_token"] != first["access_token"]
    assert _claims(refreshed["access_token"])["oid"] == ALAN


def test_userinfo_answers_for_a_delegated_token(tenant):
    app, flow, auth_response = _sign_in_with_msal(tenant, f"alan.turing@{DOMAIN}")
    access_token = app.acquire_token_by_auth_code_flow(flow, auth_response)["access_token"]
    session = https_session(tenant.ready)
    info = session.get(f"{tenant.ready['login']}/oidc/userinfo",
                       headers={"Authorization": f"Bearer {access_token}"}).json()
    assert info["name"] == "Alan Turing"
    assert session.get(f"{tenant.ready['login']}/oidc/userinfo").status_code == 401


def test_sign_in_page_lists_admins_helpdesk_and_ordinary_people_with_name_upn_and_title(tenant):
    flow = msal_app(tenant.ready).initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK)
    page = Browser(tenant.ready).get(flow["auth_uri"])
    accounts = {value: text for form in Browser.forms(page) for name, value, text in form.buttons
                if name == "login"}
    assert f"ada.lovelace@{DOMAIN}" in accounts  # Global Administrator, Watchword Admins
    assert f"margaret.hamilton@{DOMAIN}" in accounts  # Helpdesk Agents
    assert f"alan.turing@{DOMAIN}" in accounts  # an ordinary person
    assert "Margaret Hamilton" in accounts[f"margaret.hamilton@{DOMAIN}"]
    assert "IT Support Specialist" in accounts[f"margaret.hamilton@{DOMAIN}"]
    assert "Helpdesk Agents" in accounts[f"margaret.hamilton@{DOMAIN}"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_someone_not_listed_can_sign_in_by_typing_their_upn(tenant):
    app = msal_app(tenant.ready)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK)
    browser = Browser(tenant.ready)
    page = browser.get(flow["auth_uri"])
    typed = next(f for f in Browser.forms(page) if "login" in f.fields)
    unknown = browser.submit(typed, login=f"nobody@{DOMAIN}")
    assert unknown.status_code == 200 and "This username may be incorrect" in unknown.text
    back = browser.submit(typed, login=f"jose.muller@corp.{DOMAIN}")
    result = app.acquire_token_by_auth_code_flow(flow, query_of(back.headers["Location"]))
    assert result["id_token_claims"]["name"] == "José Müller"


def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(tenant):
    flow = msal_app(tenant.ready).initiate_auth_code_flow(
        ["User.Read"], redirect_uri="https://evil.example/callback")
    page = Browser(tenant.ready).get(flow["auth_uri"])
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "AADSTS50011" in page.text
    assert "https://evil.example/callback" in page.text


def test_an_invalid_scope_is_sent_back_to_the_app_as_an_error(tenant):
    flow = msal_app(tenant.ready).initiate_auth_code_flow(["Bogus.Permission"], redirect_uri=CALLBACK)
    back = Browser(tenant.ready).get(flow["auth_uri"])
    assert back.status_code == 302
    params = query_of(back.headers["Location"])
    assert params["error"] == "invalid_scope"
    assert params["error_description"].startswith("AADSTS70011:")
    assert params["state"] == flow["state"]


def test_prompt_none_without_a_session_answers_login_required(tenant):
    flow = msal_app(tenant.ready).initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK, prompt="none")
    params = query_of(Browser(tenant.ready).get(flow["auth_uri"]).headers["Location"])
    assert params["error"] == "login_required"


def test_a_sign_in_form_posted_without_this_browsers_csrf_cookie_is_refused(tenant):
    flow = msal_app(tenant.ready).initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK)
    page = Browser(tenant.ready).get(flow["auth_uri"])
    form = next(f for f in Browser.forms(page) if f.buttons)
    other_browser = Browser(tenant.ready)  # no cookie: a cross-site post
    refused = other_browser.submit(form, login=f"alan.turing@{DOMAIN}")
    assert refused.status_code == 400
    assert "Location" not in refused.headers


def test_form_post_response_mode_renders_a_self_posting_form(tenant):
    app = msal_app(tenant.ready)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=CALLBACK, response_mode="form_post")
    browser = Browser(tenant.ready)
    page = browser.press(browser.get(flow["auth_uri"]), f"alan.turing@{DOMAIN}")
    form = Browser.forms(page)[0]
    assert form.action == CALLBACK
    result = app.acquire_token_by_auth_code_flow(flow, form.fields)
    assert result["id_token_claims"]["oid"] == ALAN


def test_logout_goes_back_to_the_post_logout_redirect_uri(tenant):
    base = tenant.ready["authority"]
    browser = Browser(tenant.ready)
    back = browser.get(f"{base}/oauth2/v2.0/logout?post_logout_redirect_uri=http://localhost:3978/bye&state=s1")
    assert back.status_code == 302
    assert back.headers["Location"] == "http://localhost:3978/bye?state=s1"
    page = browser.get(f"{base}/oauth2/v2.0/logout?post_logout_redirect_uri=https://evil.example/")
    assert page.status_code == 200 and "signed out" in page.text


def test_token_errors_are_json_like_microsofts(tenant):
    ready = tenant.ready
    response = https_session(ready).post(f"{ready['authority']}/oauth2/v2.0/token",
                                         data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                                         headers={"client-request-id": "abc-123"})
    body = response.json()
    assert body["error"] == "unsupported_grant_type"
    assert body["correlation_id"] == "abc-123"
    assert "\r\nTrace ID: " in body["error_description"]
    json.dumps(body)  # plain JSON all the way down
