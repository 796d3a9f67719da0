"""The Protected users page as an admin meets it: before the first sync, excluding and including a person, and
why someone protected cannot be reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest

from admin.context import STORE
from store.audit import AuditFilter
from tests.admin.support import csrf_token
from tests.admin.sync_fakes import FakeDirectory, person, uid
from tests.admin.test_users_sync import make_client_factory, synced
from tests.devtenant.tiny_org import TENANT_ID


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    return make_client_factory(aiohttp_client, tmp_path)


async def test_before_the_first_sync_the_page_says_it_has_not_run_what_it_changes_and_offers_it(make_client):
    client = await make_client(FakeDirectory())
    html = " ".join((await (await client.get("/admin/users")).text()).split())
    assert "The directory sync has not run yet." in html
    assert "verifies every person in your directory" in html and "applies the protected groups" in html
    assert "Run the first sync now" in html and "0 of 0 users" not in html


async def test_after_a_sync_the_not_run_notice_is_gone(make_client):
    directory = FakeDirectory()
    directory.add(person(1))
    client = await make_client(directory)
    await synced(client, directory)
    html = await (await client.get("/admin/users")).text()
    assert "has not run yet" not in html and "1 of 1 users" in html and ">Sync now<" in html


async def test_an_admin_excludes_then_includes_a_person_and_both_are_audited(make_client):
    directory = FakeDirectory()
    directory.add(person(1, display_name="Grace Hopper"), person(2, display_name="Alan Turing"))
    client = await make_client(directory)
    await synced(client, directory)
    token = await csrf_token(client, "/admin/users")

    excluded = await client.post("/admin/users/exclude", data={
        "user_id": uid(1), "exclude": "true", "back": "/admin/users?q=gr", "csrf_token": token}, allow_redirects=False)
    assert excluded.status == 303 and excluded.headers["Location"] == "/admin/users?q=gr"
    page = await (await client.get("/admin/users?q=gr")).text()
    assert "Grace Hopper is excluded" in page and "No (excluded by an admin)" in page
    assert 'aria-label="Include Grace Hopper again"' in page
    repo = client.server.app[STORE].protected_users
    assert not (await repo.get(TENANT_ID, uid(1))).in_scope

    await client.post("/admin/users/exclude", data={"user_id": uid(1), "exclude": "false", "csrf_token": token})
    assert (await repo.get(TENANT_ID, uid(1))).in_scope
    entries = (await client.server.app[STORE].audit.query(AuditFilter())).entries
    decided = [(e.action, e.subject, e.details) for e in entries if e.action.startswith("protected_user.")]
    assert sorted(decided) == [("protected_user.excluded", uid(1), {"name": "Grace Hopper", "correlation_id": ANY}),
                               ("protected_user.included", uid(1), {"name": "Grace Hopper", "correlation_id": ANY})]


async def test_excluding_someone_unknown_or_going_elsewhere_is_refused_quietly(make_client):
    directory = FakeDirectory()
    directory.add(person(1))
    client = await make_client(directory)
    await synced(client, directory)
    token = await csrf_token(client, "/admin/users")
    for user_id, back in (("not-a-guid", "//evil.example/"), (uid(99), "https://evil.example/admin/users")):
        response = await client.post("/admin/users/exclude", data={
            "user_id": user_id, "exclude": "true", "back": back, "csrf_token": token}, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/admin/users"
    assert not any(e.action.startswith("protected_user.")
                   for e in (await client.server.app[STORE].audit.query(AuditFilter())).entries)


async def test_protected_but_not_resettable_says_why_in_a_word(make_client):
    directory = FakeDirectory(not_resettable={uid(1): ("privileged_admin",)})
    directory.add(person(1, display_name="Ada Admin"))
    client = await make_client(directory)
    await synced(client, directory)
    html = " ".join((await (await client.get("/admin/users")).text()).split())
    row = html.split("Ada Admin", 1)[1].split("</tr>", 1)[0]
    assert "No: Administrator" in row and "but a call for them is refused (see Resettable)" in row


async def test_an_admin_sees_who_is_locked_out_and_lifts_it_audited(make_client):
    directory = FakeDirectory()
    directory.add(person(1, display_name="Grace Hopper"), person(2, display_name="Alan Turing"))
    client = await make_client(directory)
    await synced(client, directory)
    store = client.server.app[STORE]
    until = datetime.now(UTC) + timedelta(hours=20)
    await store.lockouts.lock(TENANT_ID, uid(1), until=until, reason="3 failed or abandoned verifications in 24 hours")

    html = " ".join((await (await client.get("/admin/users")).text()).split())
    assert "Locked out" in html and "Grace Hopper" in html and "3 failed or abandoned verifications" in html
    assert 'aria-label="Lift the lockout of Grace Hopper"' in html
    token = await csrf_token(client, "/admin/users")
    lifted = await client.post("/admin/users/unlock", data={"user_id": uid(1), "back": "/admin/users",
                                                            "csrf_token": token}, allow_redirects=False)

    assert lifted.status == 303 and lifted.headers["Location"] == "/admin/users"
    assert await store.lockouts.active_lockout(TENANT_ID, uid(1)) is None
    page = await (await client.get("/admin/users")).text()
    assert "lockout is lifted" in page and 'id="lockouts"' not in page
    [entry] = (await store.audit.query(AuditFilter(action="lockout.lifted"))).entries
    assert entry.subject == uid(1) and entry.actor != "anonymous"
    assert entry.details == {"name": "Grace Hopper", "correlation_id": ANY}


async def test_lifting_a_lockout_nobody_has_or_of_no_one_changes_nothing(make_client):
    directory = FakeDirectory()
    directory.add(person(1))
    client = await make_client(directory)
    await synced(client, directory)
    token = await csrf_token(client, "/admin/users")
    for user_id in ("not-a-guid", uid(1), "x" * 5000):
        response = await client.post("/admin/users/unlock", data={"user_id": user_id, "back": "//evil.example/",
                                                                  "csrf_token": token}, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/admin/users"
    assert not (await client.server.app[STORE].audit.query(AuditFilter(action="lockout.lifted"))).entries
