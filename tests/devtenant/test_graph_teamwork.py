"""Teams apps in users' personal scope: list, install for a user, and the chat between the user and the app."""

from __future__ import annotations

import pytest

from devtenant.graph_api import teamwork
from devtenant.graph_api.router import Router
from manifest.package import derive_app_id
from tests.devtenant.graph_support import call, make_state, sdk_client, serve_graph
from tests.devtenant.tiny_org import ALAN, MARGARET

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

SELF = ["TeamsAppInstallation.ReadWriteSelfForUser.All"]


def router() -> Router:
    r = Router()
    teamwork.register(r)
    return r


async def get(state, path, query=None, roles=SELF):
    return await call(state, "GET", path, query, roles=roles, router=router())


async def post(state, path, body, roles=SELF):
    return await call(state, "POST", path, roles=roles, body=body, router=router())


def bind(state, app_id: str) -> dict:
    return {"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{app_id}"}


async def watchword_catalog_id(state) -> str:
    manifest_id = derive_app_id(state.app.client_id)
    resp = await get(state, f"/users/{MARGARET}/teamwork/installedApps",
                     {"$expand": "teamsApp", "$filter": f"teamsApp/externalId eq '{manifest_id}'"})
    [row] = resp.body["value"]
    assert row["teamsApp"]["externalId"] == manifest_id and row["teamsApp"]["distributionMethod"] == "organization"
    return row["teamsApp"]["id"]


async def test_helpdesk_agents_have_watchword_and_others_do_not():
    state = make_state()
    assert (await watchword_catalog_id(state))
    resp = await get(state, f"/users/{ALAN}/teamwork/installedApps", {"$expand": "teamsApp"})
    assert resp.status == 200 and resp.body["value"] == []


async def test_install_for_a_user_answers_201_without_a_body_then_the_chat_can_be_read():
    state = make_state()
    app_id = await watchword_catalog_id(state)
    resp = await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, app_id))
    assert resp.status == 201 and resp.body is None
    listed = await get(state, f"/users/{ALAN}/teamwork/installedApps",
                       {"$expand": "teamsApp", "$filter": f"teamsApp/id eq '{app_id}'"})
    [row] = listed.body["value"]
    chat = await get(state, f"/users/{ALAN}/teamwork/installedApps/{row['id']}/chat")
    assert chat.status == 200 and chat.body["chatType"] == "oneOnOne"
    assert chat.body["id"].startswith(f"19:{ALAN}_") and chat.body["id"].endswith("@unq.gbl.spaces")
    assert chat.body["tenantId"] == state.tenant_id


async def test_installing_twice_is_a_conflict():
    state = make_state()
    app_id = await watchword_catalog_id(state)
    await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, app_id))
    again = await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, app_id))
    assert again.status == 409 and again.body["error"]["code"] == "Conflict"


async def test_the_self_permission_sees_and_installs_only_its_own_app():
    state = make_state()
    other = next(a.id for a in teamwork.teamwork(state).catalog.values() if a.web_application_id == "")
    resp = await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, other))
    assert resp.status == 403
    everything = await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, other),
                            roles=["TeamsAppInstallation.ReadWriteForUser.All"])
    assert everything.status == 201
    mine = await get(state, f"/users/{ALAN}/teamwork/installedApps", {"$expand": "teamsApp"})
    assert mine.body["value"] == []  # the other app is there, but not for an app that may only see itself


async def test_without_the_permission_it_is_forbidden():
    state = make_state()
    resp = await get(state, f"/users/{ALAN}/teamwork/installedApps", roles=["User.Read.All"])
    assert resp.status == 403


async def test_unknown_app_user_installation_and_bad_bodies():
    state = make_state()
    assert (await post(state, f"/users/{ALAN}/teamwork/installedApps", bind(state, "nope"))).status == 404
    assert (await post(state, f"/users/{ALAN}/teamwork/installedApps", {"teamsApp": "x"})).status == 400
    assert (await get(state, "/users/nobody/teamwork/installedApps")).status == 404
    assert (await get(state, f"/users/{ALAN}/teamwork/installedApps/bogus/chat")).status == 404
    assert (await get(state, f"/users/{ALAN}/teamwork/installedApps", {"$filter": "displayName eq 'x'"})).status \
        == 400


async def test_the_real_sdk_installs_and_reads_the_chat(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation
    from msgraph.generated.users.item.teamwork.installed_apps.installed_apps_request_builder import (
        InstalledAppsRequestBuilder,
    )

    state = make_state()
    base = await serve_graph(aiohttp_client, state)
    client = sdk_client(state, base, SELF)
    app_id = await watchword_catalog_id(state)
    installed = client.users.by_user_id(ALAN).teamwork.installed_apps
    await installed.post(UserScopeTeamsAppInstallation(
        additional_data={"teamsApp@odata.bind": f"{base}/appCatalogs/teamsApps/{app_id}"}))
    query = InstalledAppsRequestBuilder.InstalledAppsRequestBuilderGetQueryParameters(
        expand=["teamsApp"], filter=f"teamsApp/id eq '{app_id}'")
    page = await installed.get(RequestConfiguration(query_parameters=query))
    [row] = page.value
    assert row.teams_app.id == app_id
    chat = await installed.by_user_scope_teams_app_installation_id(row.id).chat.get()
    assert chat.id.startswith(f"19:{ALAN}_")
