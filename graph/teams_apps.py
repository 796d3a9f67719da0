"""Watchword's Teams app in a person's personal scope: find it, install it, and read the chat it opens.

Used after a password reset, to tell a person who has never chatted with Watchword (so there is no conversation
to send to). Needs the optional application permission TeamsAppInstallation.ReadWriteSelfForUser.All, which lets
an app install only itself (the manifest's `webApplicationInfo.id` must be the app registration's client id):

1. the org catalog's id for Watchword, from someone who has it (the agent asking): `GET /users/{agent}/teamwork/
   installedApps?$expand=teamsApp&$filter=teamsApp/externalId eq '{manifest id}'` (reading the catalog itself
   would need AppCatalog.Read.All, which Watchword does not ask for);
2. `POST /users/{person}/teamwork/installedApps` with `teamsApp@odata.bind` -> 201 (409: already installed);
3. the installation: `GET /users/{person}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{id}'`;
4. the chat: `GET /users/{person}/teamwork/installedApps/{installation id}/chat` -> its id, to send to.
"""

from __future__ import annotations

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation
from msgraph.generated.users.item.teamwork.installed_apps.installed_apps_request_builder import (
    InstalledAppsRequestBuilder,
)

from graph.urls import odata_string

INSTALL_PERMISSION = "TeamsAppInstallation.ReadWriteSelfForUser.All"


class NotPermitted(Exception):
    """The tenant did not grant the permission (403), or Watchword's app is not in its catalog."""


async def app_chat_id(client: GraphServiceClient, graph_url: str, *, user_id: str, catalog_id: str) -> str:
    """The id of the 1:1 chat between `user_id` and Watchword (`catalog_id`: see `catalog_id`), installing
    Watchword for them if needed. Raises NotPermitted, or ODataError for anything else."""
    installed = client.users.by_user_id(user_id).teamwork.installed_apps
    try:
        await installed.post(UserScopeTeamsAppInstallation(
            additional_data={"teamsApp@odata.bind": f"{graph_url}/appCatalogs/teamsApps/{catalog_id}"}))
    except ODataError as err:
        if err.response_status_code == 403:
            raise NotPermitted(f"{INSTALL_PERMISSION} not granted") from None
        if err.response_status_code != 409:  # 409: they have it already; its chat is what we need
            raise
    page = await installed.get(_query(f"teamsApp/id eq {odata_string(catalog_id)}"))
    rows = page.value if page is not None and page.value else []
    if not rows or not rows[0].id:
        raise NotPermitted("Watchword is not installed for the person after installing it")
    chat = await installed.by_user_scope_teams_app_installation_id(rows[0].id).chat.get()
    if chat is None or not chat.id:
        raise NotPermitted("the installation has no chat")
    return chat.id


async def catalog_id(client: GraphServiceClient, via_user_id: str, manifest_id: str) -> str:
    """The organisation catalog's id for Watchword, found through someone who has it installed (step 1 above)."""
    try:
        page = await client.users.by_user_id(via_user_id).teamwork.installed_apps.get(
            _query(f"teamsApp/externalId eq {odata_string(manifest_id)}"))
    except ODataError as err:
        if err.response_status_code == 403:
            raise NotPermitted(f"{INSTALL_PERMISSION} not granted") from None
        raise
    for row in (page.value if page is not None and page.value else []):
        if row.teams_app is not None and row.teams_app.id:
            return row.teams_app.id
    raise NotPermitted("Watchword's app was not found in the organisation's catalog")


def _query(filter_text: str) -> RequestConfiguration:
    params = InstalledAppsRequestBuilder.InstalledAppsRequestBuilderGetQueryParameters(
        expand=["teamsApp"], filter=filter_text)
    return RequestConfiguration(query_parameters=params)
