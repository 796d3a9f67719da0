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
