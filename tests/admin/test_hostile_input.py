"""The console under hostile input: never a 5xx, whatever the path, cursor or number."""

from __future__ import annotations

import base64

import pytest

from admin.context import STORE
from store.audit import AuditFilter
from tests.admin.support import build_app, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory
from tests.devtenant.tiny_org import TENANT_ID


@pytest.fixture
async def anonymous(aiohttp_client, tmp_path):
    return await aiohttp_client(build_app(settings_for(tmp_path)))


@pytest.fixture
async def admin(aiohttp_client, tmp_path):
    app = build_app(settings_for(tmp_path), directory=FakeDirectory())
    client = await aiohttp_client(app)
    await app[STORE].tenants.connect(TENANT_ID, display_name="Tiny", granted_permissions=["User.Read.All"])
    sign_in_as(client)
    return client


async def test_an_anonymous_post_to_a_long_path_is_refused_and_audited_shortened(anonymous) -> None:
    path = "/admin/" + "a" * 4000
    response = await anonymous.post(path, data={"x": "1"})
    assert response.status == 403
    page = await anonymous.server.app[STORE].audit.query(AuditFilter(action="console.request_refused"))
    [entry] = page.entries
    assert entry.subject is not None and len(entry.subject) <= 256 and entry.subject.startswith("/admin/aaa")


def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("after", [cursor(b"[" * 1490), cursor(b"[" * 700 + b"]" * 700), cursor(b'{"a":' * 290),
                                   "%%%", "x" * 1999, cursor(b"\xff\xfe"), cursor(b"[1, 2]")])
async def test_a_malformed_users_cursor_shows_the_first_page(admin, after: str) -> None:
    for name in ("after", "before"):
        response = await admin.get("/admin/users", params={name: after})
        assert response.status == 200


async def test_a_cursor_longer_than_a_url_may_be_is_refused_as_bad_input(admin) -> None:
    response = await admin.get("/admin/users", params={"after": cursor(b"[" * 100_000)})
    assert 400 <= response.status < 500


@pytest.mark.parametrize("before", ["9" * 40, str(2**63), "-5", "1e999", "nan", "0x10", "٣"])
async def test_an_out_of_range_audit_cursor_shows_the_newest_page(admin, before: str) -> None:
    response = await admin.get("/admin/audit", params={"before": before})
    assert response.status == 200
