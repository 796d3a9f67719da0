"""Starting and stopping a devtenant in-process; the state it starts with."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from devtenant.entra import ROLE_TEMPLATE_IDS
from devtenant.server import build_state, running_devtenant
from devtenant.state import GRAPH_PERMISSIONS, DevTenantConfig
from tests.devtenant.helpers import TINY, https_session, msal_app
from tests.devtenant.tiny_org import ADMINS_GROUP, DOMAIN, HELPDESK_GROUP, TENANT_ID, USER_ADMIN_ROLE, tiny_org

READY_KEYS = {"authority", "graph", "login", "tenant_id", "domain", "client_id", "client_secret", "ca_file",
              "seed", "users", "helpdesk_group_id", "admins_group_id"}


async def test_running_devtenant_serves_https_with_its_ca_and_stops_on_exit(tmp_path):
    async with running_devtenant(TINY, org=tiny_org(), ca_dir=tmp_path) as running:
        ready = running.ready
        assert ready.keys() == READY_KEYS
        assert ready["authority"] == f"{ready['login']}/{TENANT_ID}"
        assert ready["graph"] == f"{ready['login']}/v1.0"
        assert (ready["tenant_id"], ready["domain"]) == (TENANT_ID, DOMAIN)
        assert (ready["helpdesk_group_id"], ready["admins_group_id"]) == (HELPDESK_GROUP, ADMINS_GROUP)
        assert ready["ca_file"] == str(tmp_path / "devtenant-ca.pem")
        context = ssl.create_default_context(cafile=ready["ca_file"])
        async with aiohttp.ClientSession() as http:
            url = f"{ready['authority']}/v2.0/.well-known/openid-configuration"
            async with http.get(url, ssl=context) as response:
                assert (await response.json())["issuer"] == f"{ready['authority']}/v2.0"
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(url, ssl=context)


def test_graph_under_v1_0_accepts_the_identity_platforms_tokens(tenant):
    ready = tenant.ready
    token = msal_app(ready).acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
    session = https_session(ready)
    url = f"{ready['graph']}/users/ada.lovelace@{DOMAIN}?$select=id,displayName"
    assert session.get(url).status_code == 401
    user = session.get(url, headers={"Authorization": f"Bearer {token}"}).json()
    assert user["displayName"] == "Ada Lovelace"


def test_the_demo_tenant_starts_consented_with_the_service_principal_as_user_administrator():
    state = build_state(DevTenantConfig(), tiny_org())
    assert state.consented == set(GRAPH_PERMISSIONS)
    assert [r.id for r in state.org.roles_of(state.sp_object_id)] == [USER_ADMIN_ROLE]


def test_an_unconsented_tenant_starts_without_consent():
    assert build_state(DevTenantConfig(unconsented=True), tiny_org()).consented is None


def test_a_missing_role_definition_is_added_with_entras_template_id():
    org = tiny_org()
    del org.role_definitions[USER_ADMIN_ROLE]
    state = build_state(DevTenantConfig(), org)
    role = state.org.role_definitions[ROLE_TEMPLATE_IDS["User Administrator"]]
    assert role.id == "fe930be7-5e62-47db-91af-98c3a49a38b1" and role.display_name == "User Administrator"
    assert state.org.roles_of(state.sp_object_id) == [role]


def test_no_reset_role_means_no_role_for_the_service_principal():
    state = build_state(DevTenantConfig(sp_reset_role=None), tiny_org())
    assert state.org.roles_of(state.sp_object_id) == []


def test_an_unknown_reset_role_fails_at_start():
    with pytest.raises(ValueError, match="Chief Wizard"):
        build_state(DevTenantConfig(sp_reset_role="Chief Wizard"), tiny_org())
