"""The identity platform's rules without HTTP: lifetimes, PKCE, redirect URIs, the groups overage."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import replace

import jwt
import pytest

from devtenant.entra import (
    AUTH_CODE_LIFETIME_S,
    AadError,
    IdentityPlatform,
    RedirectableError,
    redirect_uri_allowed,
)
from devtenant.model import Group, GroupKind
from devtenant.server import build_state
from devtenant.state import DevTenantConfig
from tests.devtenant.tiny_org import ALAN, DOMAIN, NOW, TENANT_ID, tiny_org

BASE = "https://127.0.0.1:9999"
CALLBACK = "http://127.0.0.1:3978/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def platform(clock) -> IdentityPlatform:
    state = build_state(DevTenantConfig(), tiny_org())
    state.base_url = BASE
    return IdentityPlatform(state, clock=clock)


def _authorize(platform: IdentityPlatform, upn: str = f"alan.turing@{DOMAIN}", **overrides: str):
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"client_id": platform.state.app.client_id, "redirect_uri": CALLBACK, "response_type": "code",
             "scope": "User.Read openid profile offline_access", "code_challenge": challenge,
             "code_challenge_method": "S256", "state": "st", "nonce": "n0", **overrides}
    pending = platform.begin_authorize(TENANT_ID, query, csrf="c" * 43)
    redirect = platform.sign_in(pending, upn)
    code = dict(redirect.params)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": verifier, "client_id": platform.state.app.client_id,
            "client_secret": platform.state.app.client_secret}
    return form


def test_an_authorization_code_expires_after_ten_minutes(platform, clock):
    form = _authorize(platform)
    clock.now += AUTH_CODE_LIFETIME_S + 1
    with pytest.raises(AadError) as err:
        platform.token(BASE, TENANT_ID, form)
    assert (err.value.error, err.value.code) == ("invalid_grant", 70008)


def test_an_authorization_code_within_its_lifetime_is_redeemed(platform, clock):
    form = _authorize(platform)
    clock.now += AUTH_CODE_LIFETIME_S - 5
    answer = platform.token(BASE, TENANT_ID, form)
    claims = jwt.decode(answer["id_token"], options={"verify_signature": False})
    assert claims["oid"] == ALAN and claims["nonce"] == "n0"
    assert claims["aud"] == platform.state.app.client_id and claims["ver"] == "2.0"


def test_a_failed_redemption_burns_the_code(platform):
    form = _authorize(platform)
    with pytest.raises(AadError):
        platform.token(BASE, TENANT_ID, {**form, "code_verifier": "wrong" * 9})
    with pytest.raises(AadError) as err:
        platform.token(BASE, TENANT_ID, form)
    assert err.value.code == 54005


def test_replaying_a_code_revokes_the_refresh_token_it_gave(platform):
    form = _authorize(platform)
    refresh = platform.token(BASE, TENANT_ID, form)["refresh_token"]
    with pytest.raises(AadError):
        platform.token(BASE, TENANT_ID, form)
    with pytest.raises(AadError) as err:
        platform.token(BASE, TENANT_ID, {"grant_type": "refresh_token", "refresh_token": refresh,
                                         "client_id": form["client_id"], "client_secret": form["client_secret"]})
    assert err.value.error == "invalid_grant"


def test_a_code_redeemed_without_a_client_secret_is_refused(platform):
    form = _authorize(platform)
    with pytest.raises(AadError) as err:
        platform.token(BASE, TENANT_ID, {**form, "client_secret": ""})
    assert (err.value.status, err.value.code) == (401, 7000218)


@pytest.mark.parametrize(("overrides", "error"), [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "api://someone-else/.default"}, "invalid_resource"),
    ({"scope": "https://graph.microsoft.com/.default User.Read"}, "invalid_scope"),
])
def test_bad_authorization_requests_go_back_to_the_app(platform, overrides, error):
    with pytest.raises(RedirectableError) as err:
        _authorize(platform, **overrides)
    params = dict(err.value.redirect.params)
    assert params["error"] == error and params["state"] == "st"


def test_a_disabled_account_cannot_sign_in(platform):
    from devtenant.entra import SignInProblem

    platform.state.org.users[ALAN].account_enabled = False
    with pytest.raises(SignInProblem, match="AADSTS50057"):
        _authorize(platform)


@pytest.mark.parametrize(("uri", "allowed"), [
    ("http://localhost:3978/auth/callback", True),
    ("http://127.0.0.1:1/x?y=1", True),
    ("https://[::1]:8443/cb", True),
    ("http://localhost.evil.example/cb", False),
    ("https://login.example.com/cb", False),
    ("http://user@localhost/cb", False),
    ("http://localhost/cb#frag", False),
    ("javascript:alert(1)", False),
    ("http://localhost:99999/cb", False),
])
def test_only_loopback_redirect_uris_are_accepted(uri, allowed):
    assert redirect_uri_allowed(uri) is allowed


def test_no_groups_claim_unless_the_app_registration_asks_for_it(platform):
    claims = jwt.decode(platform.token(BASE, TENANT_ID, _authorize(platform))["id_token"],
                        options={"verify_signature": False})
    assert "groups" not in claims and "_claim_names" not in claims


def test_more_than_200_groups_become_entras_overage_claim(platform):
    platform.state.config = replace(platform.state.config, groups_claim=True)
    org = platform.state.org
    for i in range(201):
        gid = f"99999999-0000-4000-8000-{i:012d}"
        org.groups[gid] = Group(gid, f"Group {i}", None, GroupKind.SECURITY, f"g{i}", None, None, False,
                                NOW, [ALAN])
    org.index()
    claims = jwt.decode(platform.token(BASE, TENANT_ID, _authorize(platform))["id_token"],
                        options={"verify_signature": False})
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"} and claims["hasgroups"] is True


def test_pending_sign_ins_expire(platform, clock):
    from devtenant.entra import PENDING_SIGN_IN_LIFETIME_S

    query = {"client_id": platform.state.app.client_id, "redirect_uri": CALLBACK, "response_type": "code",
             "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    pending = platform.begin_authorize(TENANT_ID, query, csrf="c" * 43)
    assert platform.pending(pending.id, "c" * 43, "c" * 43) is pending
    clock.now += PENDING_SIGN_IN_LIFETIME_S + 1
    with pytest.raises(AadError):
        platform.pending(pending.id, "c" * 43, "c" * 43)
