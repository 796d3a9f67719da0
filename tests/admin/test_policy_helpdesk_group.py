"""The Policy page shows the helpdesk group in force when the policy names none (in demo: "Helpdesk Agents")."""

from __future__ import annotations

from admin.context import STORE
from store import TenantAccess
from tests.admin.support import build_app, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory
from tests.admin.test_policy_page import ENGINEERING, HELPDESK, NAMES
from tests.devtenant.tiny_org import TENANT_ID
from verification.policy import Policy


async def _page(aiohttp_client, tmp_path, access: TenantAccess | None = None) -> str:
    app = build_app(settings_for(tmp_path, helpdesk_group_id=HELPDESK), directory=FakeDirectory(names=dict(NAMES)))
    client = await aiohttp_client(app)
    await app[STORE].tenants.connect(TENANT_ID, display_name="Tiny", granted_permissions=["User.Read.All"])
    if access is not None:
        await app[STORE].policies.save(TENANT_ID, Policy(), "ada@tiny.example", access)
    sign_in_as(client)
    return " ".join((await (await client.get("/admin/policy")).text()).split())


async def test_an_empty_helpdesk_field_says_which_group_is_in_force(aiohttp_client, tmp_path):
    html = await _page(aiohttp_client, tmp_path)
    assert f"In force now: <strong>Helpdesk Agents</strong> ({HELPDESK})" in html


async def test_a_group_the_policy_names_is_the_one_shown(aiohttp_client, tmp_path):
    html = await _page(aiohttp_client, tmp_path, TenantAccess(helpdesk_group_id=ENGINEERING))
    assert "In force now" not in html and "Group: <strong>Engineering</strong>" in html
