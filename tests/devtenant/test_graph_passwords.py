"""PATCH /users/{id} with a passwordProfile: devtenant enforces Entra's reset rules."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from devtenant.graph_api.passwords import verify_password
from devtenant.model import Group, GroupKind, RoleAssignment
from tests.devtenant.graph_support import call, make_state, sdk_client, serve_graph
from tests.devtenant.tiny_org import (
    ADA,
    ALAN,
    GRACE,
    HELPDESK_ADMIN_ROLE,
    JOSE,
    KATHERINE,
    MARGARET,
    NOW,
    USER_ADMIN_ROLE,
)

# msgraph's generated request builders (and kiota under them) warn about their own deprecated classes.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

GOOD = "Blue-Kettle-Harbour-42"
RESET = ["User-PasswordProfile.ReadWrite.All"]


def reset_body(password: str = GOOD, force: bool = True, with_mfa: bool = False) -> dict:
    return {"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force,
                                "forceChangePasswordNextSignInWithMfa": with_mfa}}


async def test_successful_reset_answers_204_and_records_hash_force_flags_and_change_time(caplog):
    state = make_state()
    alan = state.org.users[ALAN]
    before_version, before_change = alan.version, alan.last_password_change_date_time
    with caplog.at_level(logging.DEBUG):
        resp = await call(state, "PATCH", f"/users/{ALAN}", body=reset_body(with_mfa=True), roles=RESET)
    assert resp.status == 204 and resp.body is None
    assert alan.force_change_password_next_sign_in is True
    assert alan.force_change_password_next_sign_in_with_mfa is True
    assert alan.last_password_change_date_time > before_change
    assert alan.version > before_version  # /users/delta will return the change
    assert alan.password and GOOD not in alan.password  # only a salted hash is kept
    assert verify_password(alan, GOOD) and not verify_password(alan, GOOD + "x")
    assert GOOD not in caplog.text


async def test_reset_by_user_principal_name_works_like_by_id():
    state = make_state()
    resp = await call(state, "PATCH", "/users/katherine.johnson@tiny.example", body=reset_body(force=False),
                      roles=RESET)
    assert resp.status == 204
    assert verify_password(state.org.users[KATHERINE], GOOD)
    assert state.org.users[KATHERINE].force_change_password_next_sign_in is False


async def test_reset_of_a_global_administrator_is_403_authorization_request_denied():
    state = make_state()
    resp = await call(state, "PATCH", f"/users/{ADA}", body=reset_body(), roles=RESET)
    assert resp.status == 403
    assert resp.body["error"]["code"] == "Authorization_RequestDenied"
    assert resp.body["error"]["message"] == "Insufficient privileges to complete the operation."
    assert state.org.users[ADA].password is None


async def test_user_administrator_app_may_reset_a_helpdesk_administrator():
    resp = await call(make_state(), "PATCH", f"/users/{MARGARET}", body=reset_body(), roles=RESET)
    assert resp.status == 204


async def test_helpdesk_administrator_app_may_not_reset_a_user_administrator():
    state = make_state(sp_role_id=HELPDESK_ADMIN_ROLE)
    state.org.role_assignments.append(RoleAssignment("cccccccc-0000-4000-8000-0000000000aa", USER_ADMIN_ROLE,
                                                     GRACE))
    assert (await call(state, "PATCH", f"/users/{GRACE}", body=reset_body(), roles=RESET)).status == 403
    assert (await call(state, "PATCH", f"/users/{ALAN}", body=reset_body(), roles=RESET)).status == 204


async def test_reset_of_a_member_of_a_role_assignable_group_is_403():
    state = make_state()
    state.org.groups["bbbbbbbb-0000-4000-8000-0000000000aa"] = Group(
        "bbbbbbbb-0000-4000-8000-0000000000aa", "Tier 1 Support", None, GroupKind.SECURITY, "tier1", None, None,
        True, NOW - timedelta(days=10), [KATHERINE])
    state.org.index()
    resp = await call(state, "PATCH", f"/users/{KATHERINE}", body=reset_body(), roles=RESET)
    assert resp.status == 403 and resp.body["error"]["code"] == "Authorization_RequestDenied"


async def test_reset_without_a_directory_role_on_the_service_principal_is_403():
    state = make_state(sp_role_id=None)
    resp = await call(state, "PATCH", f"/users/{ALAN}", body=reset_body(), roles=RESET)
    assert resp.status == 403 and resp.body["error"]["code"] == "Authorization_RequestDenied"


async def test_reset_without_a_password_permission_is_403():
    resp = await call(make_state(), "PATCH", f"/users/{ALAN}", body=reset_body(), roles=["User.Read.All"])
    assert resp.status == 403 and resp.body["error"]["code"] == "Authorization_RequestDenied"


async def test_password_permission_alone_cannot_change_other_properties():
    state = make_state()
    resp = await call(state, "PATCH", f"/users/{ALAN}", body={"jobTitle": "Boss"}, roles=RESET)
    assert resp.status == 403
    resp = await call(state, "PATCH", f"/users/{ALAN}", body={"jobTitle": "Boss"}, roles=["User.ReadWrite.All"])
    assert resp.status == 204 and state.org.users[ALAN].job_title == "Boss"


async def test_reset_of_the_federated_user_is_400_on_premises_mastered():
    state = make_state()
    resp = await call(state, "PATCH", f"/users/{JOSE}", body=reset_body(), roles=RESET)
    assert resp.status == 400
    assert resp.body["error"]["code"] == "Request_BadRequest"
    assert "on-premises mastered" in resp.body["error"]["message"]
    assert state.org.users[JOSE].password is None


@pytest.mark.parametrize("weak", [
    "Sh0rt!",  # fewer than 8 characters
    "alllowercaseletters",  # one character class
    "lowercase-and-symbols",  # two classes
    "Alan-Turing-2026",  # contains the user's name
    "P@ssw0rd-2026!",  # a banned word behind substitutions
    "Grüße-Kettle-42",  # a character Entra does not allow
    "A1!" + "x" * 254,  # longer than 256
])
async def test_weak_password_is_400_complexity(weak):
    state = make_state()
    resp = await call(state, "PATCH", f"/users/{ALAN}", body=reset_body(weak), roles=RESET)
    assert resp.status == 400
    assert resp.body["error"]["code"] == "Request_BadRequest"
    assert resp.body["error"]["message"] == (
        "The specified password does not comply with password complexity requirements. "
        "Please provide a different password.")
    assert state.org.users[ALAN].password is None
    assert weak not in str(resp.body)


async def test_reset_of_an_unknown_user_is_404():
    resp = await call(make_state(), "PATCH", "/users/nobody@tiny.example", body=reset_body(), roles=RESET)
    assert resp.status == 404 and resp.body["error"]["code"] == "Request_ResourceNotFound"


async def test_unknown_property_in_the_body_is_400():
    resp = await call(make_state(), "PATCH", f"/users/{ALAN}", body={"favouriteColour": "blue"},
                      roles=["User.ReadWrite.All"])
    assert resp.status == 400 and resp.body["error"]["code"] == "Request_BadRequest"


# --- contract: the product's SDK sends the reset and reads the refusals ----------------------------------
async def test_sdk_resets_a_password_with_a_user_patch(aiohttp_client):
    from msgraph.generated.models.password_profile import PasswordProfile
    from msgraph.generated.models.user import User

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=RESET)
    before = state.org.users[ALAN].last_password_change_date_time
    result = await client.users.by_user_id(ALAN).patch(User(password_profile=PasswordProfile(
        password=GOOD, force_change_password_next_sign_in=True)))
    assert result is None  # 204
    alan = state.org.users[ALAN]
    assert verify_password(alan, GOOD) and alan.force_change_password_next_sign_in is True
    assert alan.last_password_change_date_time > before


async def test_sdk_sees_refused_resets_as_odata_errors(aiohttp_client):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.password_profile import PasswordProfile
    from msgraph.generated.models.user import User

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=RESET)
    body = User(password_profile=PasswordProfile(password=GOOD, force_change_password_next_sign_in=True))
    with pytest.raises(ODataError) as admin:
        await client.users.by_user_id(ADA).patch(body)
    assert admin.value.response_status_code == 403 and admin.value.error.code == "Authorization_RequestDenied"
    with pytest.raises(ODataError) as federated:
        await client.users.by_user_id(JOSE).patch(body)
    assert federated.value.response_status_code == 400
    weak = User(password_profile=PasswordProfile(password="password", force_change_password_next_sign_in=True))
    with pytest.raises(ODataError) as complexity:
        await client.users.by_user_id(ALAN).patch(weak)
    assert complexity.value.response_status_code == 400
    assert "complexity" in complexity.value.error.message


async def test_a_new_password_works_for_sign_in_only_after_entra_replicated_it() -> None:
    import time

    from devtenant.entra import AadError, IdentityPlatform

    state = make_state()
    now = [time.time()]
    platform = IdentityPlatform(state, clock=lambda: now[0])
    assert (await call(state, "PATCH", f"/users/{ALAN}", body=reset_body(), roles=RESET)).status == 204
    form = {"grant_type": "password", "username": "alan.turing@tiny.example", "password": GOOD,
            "client_id": state.app.client_id, "client_secret": state.app.client_secret, "scope": "openid"}
    with pytest.raises(AadError) as first:  # at once: not replicated yet, it fails as a wrong password would
        platform.token("https://127.0.0.1", state.tenant_id, form)
    assert first.value.code == 50126
    now[0] += state.config.password_replication_s + 1
    with pytest.raises(AadError) as later:  # then it works, and must be changed
        platform.token("https://127.0.0.1", state.tenant_id, form)
    assert later.value.code == 50055
    with pytest.raises(AadError) as wrong:
        platform.token("https://127.0.0.1", state.tenant_id, {**form, "password": "not-it"})
    assert wrong.value.code == 50126
