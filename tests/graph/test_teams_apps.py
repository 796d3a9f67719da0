"""Installing Watchword for a person through Graph, to reach them in Teams (GraphDirectory.open_app_chat)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from graph.permissions import PERMISSION_NAMES
from manifest.package import derive_app_id
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN, JOSE, KATHERINE, MARGARET
from tests.graph.support import directory_for, state

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]


async def test_a_person_without_watchword_gets_it_installed_and_their_chat_id_back(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    manifest_id = derive_app_id(dt.ready["client_id"])
    async with directory_for(dt) as directory:
        chat = await directory.open_app_chat(dt.ready["tenant_id"], ALAN, via_user_id=MARGARET,
                                             manifest_id=manifest_id)
        again = await directory.open_app_chat(dt.ready["tenant_id"], ALAN, via_user_id=MARGARET,
                                              manifest_id=manifest_id)  # installed already: the same chat
    assert chat is not None and chat.startswith(f"19:{ALAN}_") and again == chat


async def test_the_catalogs_id_for_watchword_is_read_once_per_tenant(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # Each manager asked and each reset notice installs through it: reading it every time was ~12 ms of the event
    # loop (msgraph-sdk decoding) per call under load. The second person is reached even though the one asking
    # (Jose) has no Watchword to find it through: the id was kept from the first.
    dt = make_tenant()
    manifest_id = derive_app_id(dt.ready["client_id"])
    async with directory_for(dt) as directory:
        first = await directory.open_app_chat(dt.ready["tenant_id"], ALAN, via_user_id=MARGARET,
                                              manifest_id=manifest_id)
        second = await directory.open_app_chat(dt.ready["tenant_id"], KATHERINE, via_user_id=JOSE,
                                               manifest_id=manifest_id)
    assert first is not None and second is not None and second.startswith(f"19:{KATHERINE}_")


async def test_without_the_optional_permission_nobody_is_installed(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    state(dt).consented = set(PERMISSION_NAMES)
    async with directory_for(dt) as directory:
        chat = await directory.open_app_chat(dt.ready["tenant_id"], ALAN, via_user_id=MARGARET,
                                             manifest_id=derive_app_id(dt.ready["client_id"]))
    assert chat is None


async def test_an_app_missing_from_the_catalog_gives_none(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    async with directory_for(dt) as directory:
        chat = await directory.open_app_chat(dt.ready["tenant_id"], ALAN, via_user_id=MARGARET,
                                             manifest_id="00000000-0000-4000-8000-000000000000")
    assert chat is None


async def test_whether_watchword_may_install_itself_follows_the_tenants_consent(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    granted, withheld = make_tenant(), make_tenant()
    state(withheld).consented = set(PERMISSION_NAMES)  # the optional install permission left out
    async with directory_for(granted) as directory:
        assert await directory.may_install_app(granted.ready["tenant_id"]) is True
    async with directory_for(withheld) as directory:
        assert await directory.may_install_app(withheld.ready["tenant_id"]) is False


async def test_the_install_sends_the_calls_msgraph_sdk_sent_and_reads_their_json() -> None:
    # Read as Graph's JSON, not as msgraph-sdk models (~12 ms of CPU per answer, and ~2 s to import the models on the
    # first): the same requests, an existing installation's 409 taken as "installed already".
    from graph.directory import GraphHttpError
    from graph.teams_apps import app_chat_id, catalog_id

    sent: list[tuple[str, str, object]] = []

    async def send(method: str, url: str, body: object) -> object:
        sent.append((method, url, body))
        if method == "POST":
            raise GraphHttpError(409, "Conflict", "installing Watchword for the person: 409: Conflict")
        if url.endswith("/chat"):
            return {"id": "19:chat", "topic": None}
        return {"value": [{"id": "install-1", "teamsApp": {"id": "catalog-1", "externalId": "manifest-1"}}]}

    assert await catalog_id(send, "agent-1", "manifest-1") == "catalog-1"
    assert await app_chat_id(send, "https://graph.example/v1.0", user_id="person-1", catalog_id="catalog-1") \
        == "19:chat"
    assert sent == [
        ("GET", "/users/agent-1/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/externalId%20eq%20"
                "'manifest-1'", None),
        ("POST", "/users/person-1/teamwork/installedApps",
         {"teamsApp@odata.bind": "https://graph.example/v1.0/appCatalogs/teamsApps/catalog-1"}),
        ("GET", "/users/person-1/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id%20eq%20'catalog-1'",
         None),
        ("GET", "/users/person-1/teamwork/installedApps/install-1/chat", None)]


async def test_an_install_graph_refuses_otherwise_is_graph_unavailable() -> None:
    from graph.directory import GraphHttpError, GraphUnavailable
    from graph.teams_apps import NotPermitted, app_chat_id

    for status, expected in ((403, NotPermitted), (404, GraphUnavailable), (500, GraphUnavailable)):
        async def send(method: str, url: str, body: object, status: int = status) -> object:
            raise GraphHttpError(status, "", f"{status}")

        with pytest.raises(expected):
            await app_chat_id(send, "https://graph.example/v1.0", user_id="p", catalog_id="c")
