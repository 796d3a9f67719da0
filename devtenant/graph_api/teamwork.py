"""Teams apps in users' personal scope: list, install, and the chat between the user and the app.

    GET  /users/{id}/teamwork/installedApps        ($expand=teamsApp,teamsAppDefinition; $filter)
    POST /users/{id}/teamwork/installedApps        {"teamsApp@odata.bind": ".../appCatalogs/teamsApps/{id}"}
    GET  /users/{id}/teamwork/installedApps/{installation-id}/chat

As Graph answers an application token:
* the org catalog holds one app, Watchword (its `externalId` the manifest id, derived from the app registration's
  client id as manifest/package.py does); the app's `webApplicationInfo` names that client id;
* TeamsAppInstallation.ReadWriteSelfForUser.All (or ReadForUser.All / ReadWriteForUser.All) reads and manages
  installations; with only the *Self* permission the app sees and installs only itself: other apps are left out of
  lists and installing one is 403;
* installing returns 201 Created with no body; installing an app the user already has is 409 Conflict; a catalog id
  that is not in the catalog is 404;
* `$filter` supports `teamsApp/id eq '...'` and `teamsApp/externalId eq '...'`;
* the chat between a user and a bot is a one-on-one chat with an id of the form `19:{user}_{bot}@unq.gbl.spaces`.
Who has Watchword installed at the start: the helpdesk group (they use it), as an admin's app setup policy would do
for them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, bad_request, not_found
from devtenant.state import DevTenantState
from manifest.package import derive_app_id

SELF = "TeamsAppInstallation.ReadWriteSelfForUser.All"
READERS = ("TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadWriteForUser.All", SELF)
WRITERS = ("TeamsAppInstallation.ReadWriteForUser.All", SELF)
_FILTER = re.compile(r"^teamsApp/(id|externalId) eq '([^']*)'$")
_BIND = re.compile(r"/appCatalogs/teamsApps/([^/?#]+)$")
KEY = "teamwork"  # in DevTenantState.extras


@dataclass(frozen=True)
class CatalogApp:
    id: str
    external_id: str
    display_name: str
    web_application_id: str  # the client id in the manifest's webApplicationInfo ("" for apps without one)


@dataclass
class Teamwork:
    catalog: dict[str, CatalogApp]
    installed: dict[str, dict[str, str]] = field(default_factory=dict)  # user id -> installation id -> app id
    installed_at: dict[str, datetime] = field(default_factory=dict)  # installation id -> when


def teamwork(state: DevTenantState) -> Teamwork:
    """This tenant's catalog and installations, made on first use."""
    found = state.extras.get(KEY)
    if found is None:
        watchword = CatalogApp(str(uuid.uuid5(uuid.NAMESPACE_URL, f"teams-catalog:{state.app.client_id}")),
                               derive_app_id(state.app.client_id), state.app.display_name, state.app.client_id)
        other = CatalogApp(str(uuid.uuid5(uuid.NAMESPACE_URL, f"teams-catalog:other:{state.tenant_id}")),
                           str(uuid.uuid5(uuid.NAMESPACE_URL, "other-app")), "Contoso Expenses", "")
        found = Teamwork({watchword.id: watchword, other.id: other})
        helpdesk = state.org.transitive_user_members(state.org.helpdesk_group_id)
        for user_id in helpdesk:
            _install(found, user_id, watchword.id, datetime.now(UTC))
        state.extras[KEY] = found
    return found


def register(router: Router) -> None:
    router.route("GET", "/users/{id}/teamwork/installedApps", permissions=READERS)(list_installed)
    router.route("POST", "/users/{id}/teamwork/installedApps", permissions=WRITERS)(install)
    router.route("GET", "/users/{id}/teamwork/installedApps/{installation}/chat", permissions=READERS)(get_chat)


async def list_installed(req: GraphRequest) -> GraphResponse:
    user_id = _user(req)
    work = teamwork(req.state)
    expand = {e.strip() for e in req.query.get("$expand", "").split(",") if e.strip()}
    if expand - {"teamsApp", "teamsAppDefinition"}:
        raise bad_request(f"Could not find a property named '{sorted(expand)[0]}' on type "
                          "'microsoft.graph.userScopeTeamsAppInstallation'.")
    wanted = _filter(req.query.get("$filter", ""))
    rows = []
    for installation_id, app_id in work.installed.get(user_id, {}).items():
        app = work.catalog[app_id]
        if not _visible(req, app):
            continue
        if wanted is not None and getattr(app, wanted[0]) != wanted[1]:
            continue
        rows.append(_installation_json(work, installation_id, app, expand))
    context = f"{req.base_url}/$metadata#users('{user_id}')/teamwork/installedApps"
    return GraphResponse(body={"@odata.context": context, "value": rows})


async def install(req: GraphRequest) -> GraphResponse:
    user_id = _user(req)
    body = req.body if isinstance(req.body, dict) else {}
    bind = body.get("teamsApp@odata.bind")
    match = _BIND.search(bind) if isinstance(bind, str) else None
    if match is None:
        raise bad_request("The teamsApp@odata.bind property is required and must reference "
                          "appCatalogs/teamsApps/{id}.")
    work = teamwork(req.state)
    app = work.catalog.get(match.group(1))
    if app is None:
        raise GraphError(404, "NotFound", f"The app {match.group(1)} was not found in the app catalog.")
    if not _visible(req, app):
        raise GraphError(403, "Forbidden", "The application may only install itself with the "
                         f"'{SELF}' permission.")
    if app.id in work.installed.get(user_id, {}).values():
        raise GraphError(409, "Conflict", "App is already installed for the user.")
    _install(work, user_id, app.id, datetime.now(UTC))
    return GraphResponse(status=201)


async def get_chat(req: GraphRequest) -> GraphResponse:
    user_id = _user(req)
    work = teamwork(req.state)
    installation_id = req.params["installation"]
    app_id = work.installed.get(user_id, {}).get(installation_id)
    if app_id is None or not _visible(req, work.catalog[app_id]):
        raise GraphError(404, "NotFound", f"Installation {installation_id} was not found for the user.")
    bot = work.catalog[app_id].web_application_id or app_id
    created = work.installed_at[installation_id].isoformat().replace("+00:00", "Z")
    body = {
        "@odata.context": f"{req.base_url}/$metadata#chats/$entity",
        "id": f"19:{user_id}_{bot}@unq.gbl.spaces", "topic": None, "createdDateTime": created,
        "lastUpdatedDateTime": created, "chatType": "oneOnOne",
        "webUrl": f"https://teams.microsoft.com/l/chat/19%3A{user_id}_{bot}%40unq.gbl.spaces/0?tenantId="
                  f"{req.state.tenant_id}",
        "tenantId": req.state.tenant_id, "onlineMeetingInfo": None, "viewpoint": None,
    }
    return GraphResponse(body=body)


# --- helpers ------------------------------------------------------------------------------------------------------
def _user(req: GraphRequest) -> str:
    user = req.state.org.user(req.params["id"])
    if user is None:
        raise not_found()
    return user.id


def _visible(req: GraphRequest, app: CatalogApp) -> bool:
    """With only the Self permission an app sees (and installs) itself alone."""
    if req.roles & {"TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadWriteForUser.All"}:
        return True
    return app.web_application_id == str(req.claims.get("appid") or req.claims.get("azp") or "")


def _filter(text: str) -> tuple[str, str] | None:
    if not text:
        return None
    match = _FILTER.match(text.strip())
    if match is None:
        raise bad_request(f"Invalid filter clause: {text[:80]}", "BadRequest")
    return ("id" if match.group(1) == "id" else "external_id"), match.group(2)


def _install(work: Teamwork, user_id: str, app_id: str, at: datetime) -> str:
    installation_id = _installation_id(user_id, app_id)
    work.installed.setdefault(user_id, {})[installation_id] = app_id
    work.installed_at[installation_id] = at
    return installation_id


def _installation_id(user_id: str, app_id: str) -> str:
    import base64

    return base64.b64encode(f"{user_id}##{app_id}".encode()).decode()


def _installation_json(work: Teamwork, installation_id: str, app: CatalogApp, expand: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": installation_id}
    if "teamsApp" in expand:
        row["teamsApp"] = {"id": app.id, "externalId": app.external_id, "displayName": app.display_name,
                           "distributionMethod": "organization"}
    if "teamsAppDefinition" in expand:
        row["teamsAppDefinition"] = {"id": f"{app.id}##1.0.0", "teamsAppId": app.id,
                                     "displayName": app.display_name, "version": "1.0.0"}
    return row
