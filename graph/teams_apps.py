"""Watchword's Teams app in a person's personal scope: find it, install it, and read the chat it opens.

Used to reach a person who has never chatted with Watchword (so there is no conversation to send to): a manager
asked to confirm a caller, a person told of a reset. Needs the optional application permission
TeamsAppInstallation.ReadWriteSelfForUser.All, which lets an app install only itself (the manifest's
`webApplicationInfo.id` must be the app registration's client id):

1. the org catalog's id for Watchword, from someone who has it (the agent asking): `GET /users/{agent}/teamwork/
   installedApps?$expand=teamsApp&$filter=teamsApp/externalId eq '{manifest id}'` (reading the catalog itself
   would need AppCatalog.Read.All, which Watchword does not ask for);
2. `POST /users/{person}/teamwork/installedApps` with `teamsApp@odata.bind` -> 201 (409: already installed);
3. the installation: `GET /users/{person}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{id}'`;
4. the chat: `GET /users/{person}/teamwork/installedApps/{installation id}/chat` -> its id, to send to.

The answers are read as Graph's JSON (`send`: GraphDirectory's direct requests, the HTTP calls msgraph-sdk's
request builders make), not as msgraph-sdk models: kiota's models cost ~12 ms of CPU per answer to build here
(`Entity.get_field_deserializers` makes the deserialisers of hundreds of models on every call), and the first
one imported those models, ~2 s, on the event loop of whichever start first asked a manager.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from graph.directory import GraphHttpError
from graph.urls import odata_string, relative_url

INSTALL_PERMISSION = "TeamsAppInstallation.ReadWriteSelfForUser.All"

# (method, URL below the Graph version, JSON body or None) -> the answer's JSON (None when it has no body);
# an error answer raises GraphHttpError, anything else that stops it GraphUnavailable.
Send = Callable[[str, str, Any], Awaitable[Any]]


class NotPermitted(Exception):
    """The tenant did not grant the permission (403), or Watchword's app is not in its catalog."""


async def app_chat_id(send: Send, graph_url: str, *, user_id: str, catalog_id: str) -> str:
    """The id of the 1:1 chat between `user_id` and Watchword (`catalog_id`: see `catalog_id`), installing
    Watchword for them if needed. Raises NotPermitted, or GraphUnavailable (GraphHttpError) for anything else."""
    installed = f"/users/{quote(user_id, safe='')}/teamwork/installedApps"
    try:
        await send("POST", installed, {"teamsApp@odata.bind": f"{graph_url}/appCatalogs/teamsApps/{catalog_id}"})
    except GraphHttpError as err:
        if err.status == 403:
            raise NotPermitted(f"{INSTALL_PERMISSION} not granted") from None
        if err.status != 409:  # 409: they have it already; its chat is what we need
            raise
    page = await send("GET", _query(installed, f"teamsApp/id eq {odata_string(catalog_id)}"), None)
    rows = _rows(page)
    installation = rows[0].get("id") if rows else None
    if not installation:
        raise NotPermitted("Watchword is not installed for the person after installing it")
    chat = await send("GET", f"{installed}/{quote(str(installation), safe='')}/chat", None)
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not chat_id:
        raise NotPermitted("the installation has no chat")
    return str(chat_id)


async def catalog_id(send: Send, via_user_id: str, manifest_id: str) -> str:
    """The organisation catalog's id for Watchword, found through someone who has it installed (step 1 above)."""
    installed = f"/users/{quote(via_user_id, safe='')}/teamwork/installedApps"
    try:
        page = await send("GET", _query(installed, f"teamsApp/externalId eq {odata_string(manifest_id)}"), None)
    except GraphHttpError as err:
        if err.status == 403:
            raise NotPermitted(f"{INSTALL_PERMISSION} not granted") from None
        raise
    for row in _rows(page):
        app = row.get("teamsApp")
        if isinstance(app, dict) and app.get("id"):
            return str(app["id"])
    raise NotPermitted("Watchword's app was not found in the organisation's catalog")


def _query(path: str, filter_text: str) -> str:
    return relative_url(path, {"$expand": "teamsApp", "$filter": filter_text})


def _rows(page: Any) -> list[dict[str, Any]]:
    value = page.get("value") if isinstance(page, dict) else None
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []
