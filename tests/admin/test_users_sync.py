"""The Protected users page: the list (search, filter, paging, who may not be reset), Sync now and its progress."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from admin.context import STORE
from admin.sync import SyncStatus
from admin.sync_wiring import SYNC
from store.audit import AuditFilter
from tests.admin.support import build_app, csrf_token, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory, person, uid
from tests.devtenant.tiny_org import TENANT_ID


def make_client_factory(aiohttp_client, tmp_path):
    async def make(directory: FakeDirectory, *, connect: bool = True):
        app = build_app(settings_for(tmp_path), directory=directory)
        client = await aiohttp_client(app)
        if connect:
            await app[STORE].tenants.connect(TENANT_ID, display_name="Tiny", granted_permissions=["User.Read.All"])
        sign_in_as(client)
        return client
    return make


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    return make_client_factory(aiohttp_client, tmp_path)


def rows(html: str) -> list[str]:
    """The names in the users table, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr[^>]*>\s*<td>([^<]+)", body)


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def synced(client, directory: FakeDirectory) -> None:
    result = await client.server.app[SYNC].run(TENANT_ID)
    assert result.status == SyncStatus.DONE, result.error


# --- the list -------------------------------------------------------------------------------------------
async def test_list_pages_through_everyone_in_name_order(make_client):
    directory = FakeDirectory(page_size=40)
    directory.add(*(person(i) for i in range(1, 121)))
    client = await make_client(directory)
    await synced(client, directory)

    first = await (await client.get("/admin/users")).text()
    second = await (await client.get(link(first, "next"))).text()
    third = await (await client.get(link(second, "next"))).text()
    back = await (await client.get(link(third, "prev"))).text()

    assert rows(first) == [f"Person {i:05d}" for i in range(1, 51)]
    assert rows(second) == [f"Person {i:05d}" for i in range(51, 101)]
    assert rows(third) == [f"Person {i:05d}" for i in range(101, 121)] and link(third, "next") is None
    assert rows(back) == rows(second)
    assert link(first, "prev") is None
    assert "120 of 120 users" in first


async def test_search_by_name_or_upn_prefix(make_client):
    directory = FakeDirectory()
    directory.add(person(1, display_name="Ada Lovelace", upn="ada@contoso.example"),
                  person(2, display_name="Grace Hopper", upn="grace@contoso.example"),
                  person(3, display_name="Adam Smith", upn="a.smith@contoso.example"),
                  person(4, display_name="100% Sure", upn="sure@contoso.example"))
    client = await make_client(directory)
    await synced(client, directory)

    by_name = await (await client.get("/admin/users", params={"q": "ada"})).text()
    by_upn = await (await client.get("/admin/users", params={"q": "GRACE@"})).text()
    literal = await (await client.get("/admin/users", params={"q": "1_0"})).text()

    assert rows(by_name) == ["Ada Lovelace", "Adam Smith"] and "2 of 4 users match “ada”" in by_name
    assert rows(by_upn) == ["Grace Hopper"]
    assert rows(literal) == []  # "_" is not a wildcard


async def test_users_who_may_not_be_reset_are_marked_with_the_reason(make_client):
    directory = FakeDirectory(not_resettable={uid(1): ("privileged_admin",)})
    directory.add(person(1, display_name="Ada Admin"),
                  person(2, display_name="Fed User", on_premises_sync_enabled=True),
                  person(3, display_name="Plain Person"))
    client = await make_client(directory)
    await synced(client, directory)

    html = await (await client.get("/admin/users")).text()
    only = await (await client.get("/admin/users", params={"show": "not_resettable"})).text()

    ada = html.split("Ada Admin", 1)[1].split("</tr>", 1)[0]
    fed = html.split("Fed User", 1)[1].split("</tr>", 1)[0]
    plain = html.split("Plain Person", 1)[1].split("</tr>", 1)[0]
    assert "No: Administrator" in ada and "privileged directory role" in ada
    assert "No: On-premises account" in fed and "Active Directory" in fed
    assert ">Yes<" in plain
    assert rows(only) == ["Ada Admin", "Fed User"]


async def test_page_asks_to_connect_entra_first(make_client):
    client = await make_client(FakeDirectory(), connect=False)

    html = await (await client.get("/admin/users")).text()

    assert "Connect Microsoft Entra first" in html


# --- Sync now and its progress --------------------------------------------------------------------------
async def test_sync_now_runs_in_the_background_and_is_audited(make_client):
    directory = FakeDirectory()
    directory.add(*(person(i) for i in range(1, 8)))
    client = await make_client(directory)
    token = await csrf_token(client, "/admin/users")

    response = await client.post("/admin/users/sync", data={"csrf_token": token}, allow_redirects=False)

    assert response.status == 303 and response.headers["Location"] == "/admin/users#sync"
    progress = {}
    for _ in range(500):
        progress = await (await client.get("/admin/users/sync/progress")).json()
        if progress["status"] != "running":
            break
        await asyncio.sleep(0.02)
    assert progress["status"] == "done" and progress["users_seen"] == 7 and progress["percent"] == 100
    page = await (await client.get("/admin/users")).text()
    assert "Sync started." in page and "Last synced" in page and len(rows(page)) == 7
    log = await client.server.app[STORE].audit.query(AuditFilter(tenant_id=TENANT_ID))
    actions = {(e.action, e.outcome, e.actor) for e in log.entries}
    assert ("directory.sync_requested", "ok", "ada.lovelace@tiny.example") in actions
    assert ("directory.sync", "ok", "ada.lovelace@tiny.example") in actions


async def test_sync_now_needs_the_csrf_token(make_client):
    client = await make_client(FakeDirectory())

    response = await client.post("/admin/users/sync", data={}, allow_redirects=False)

    assert response.status == 403 and not client.server.app[SYNC].running(TENANT_ID)


async def test_a_running_sync_shows_its_progress_and_refreshes_without_javascript(make_client):
    directory = FakeDirectory(page_size=2, hang_after_pages=2, total=10)
    directory.add(*(person(i) for i in range(1, 11)))
    client = await make_client(directory)
    service = client.server.app[SYNC]
    service.start(TENANT_ID, started_by="ada")
    await directory.hanging.wait()
    async for p in service.watch(TENANT_ID):  # the writer stores the two pages fetched
        if p.pages >= 2:
            break

    progress = await (await client.get("/admin/users/sync/progress")).json()
    html = await (await client.get("/admin/users")).text()

    assert progress["status"] == "running" and progress["users_seen"] == 4 and progress["percent"] == 40
    assert progress["expected_users"] == 10 and "4 of about 10 users" in progress["summary"]
    assert '<meta http-equiv="refresh" content="3">' in html and 'data-status="running"' in html
    assert '<script src="/admin/static/sync-progress.js" defer></script>' in html
    assert re.search(r'<button type="submit" class="primary" disabled>Sync now</button>', html)
    client.server.app[SYNC].start(TENANT_ID).cancel()


async def test_a_sync_run_elsewhere_shows_as_running(make_client):
    client = await make_client(FakeDirectory())
    store = client.server.app[STORE]
    assert await store.sync_leases.acquire(TENANT_ID, "cli-host/123/abc", timedelta(minutes=2))

    progress = await (await client.get("/admin/users/sync/progress")).json()
    html = await (await client.get("/admin/users")).text()

    assert progress["status"] == "running_elsewhere"
    assert "A sync started elsewhere (the command line or another instance) is running" in html


async def test_progress_script_is_served(make_client):
    client = await make_client(FakeDirectory())

    script = await client.get("/admin/static/sync-progress.js")

    # The URL to poll comes from the page (data-url), not from the script.
    assert script.status == 200 and "/admin/users/sync/progress" not in await script.text()
