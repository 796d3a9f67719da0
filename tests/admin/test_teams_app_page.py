"""Teams app: admins download the package they upload to Teams, and the download is audited."""

from __future__ import annotations

import io
import zipfile

from admin.context import STORE
from tests.admin.support import build_app, settings_for, sign_in_as


async def test_admin_downloads_the_package_with_the_manifest_and_both_icons(aiohttp_client, tmp_path):
    settings = settings_for(tmp_path)
    client = await aiohttp_client(build_app(settings))
    sign_in_as(client)
    page = await client.get("/admin/teams-app")
    assert page.status == 200 and "Download watchword-teams.zip" in await page.text()
    response = await client.get("/admin/teams-app/watchword-teams.zip")
    assert response.status == 200 and response.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await response.read())) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
    entries = (await client.app[STORE].audit.query()).entries
    assert any(e.action == "teams_app.download" and e.outcome == "ok" for e in entries)


async def test_someone_signed_out_cannot_download_the_package(aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(settings_for(tmp_path)))
    response = await client.get("/admin/teams-app/watchword-teams.zip", allow_redirects=False)
    assert response.status in (302, 303) and response.headers["Location"].startswith("/admin/signin")


async def test_the_page_lists_every_command_an_agent_can_type_cancel_included(aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(settings_for(tmp_path)))
    sign_in_as(client)
    html = await (await client.get("/admin/teams-app")).text()
    for command in ("verify", "cancel", "help"):
        assert f"<li><strong>{command}</strong>:" in html
    assert "<code>cancel</code> stops a verification in progress" in html
