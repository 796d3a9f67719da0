"""The public pages the Teams manifest links: served without sign-in, secured like the console, true to the app."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from markupsafe import escape

from app import create_app
from graph.permissions import PERMISSIONS
from manifest.package import render_manifest
from tests.admin.support import build_app, settings_for

PUBLIC_PAGES = ["/", "/privacy", "/terms"]
# The headers admin.security puts on console pages; a public page must carry the same values.
SECURITY_HEADERS = ["Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"]


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(build_app(settings_for(tmp_path)))


@pytest.mark.parametrize("path", PUBLIC_PAGES)
async def test_public_page_answers_without_a_session_and_sets_no_cookie(client, path):
    response = await client.get(path, allow_redirects=False)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", PUBLIC_PAGES)
async def test_public_page_carries_the_console_security_headers(client, path):
    console = await client.get("/admin/signin")
    page = await client.get(path)
    for name in SECURITY_HEADERS:
        assert page.headers.get(name) == console.headers[name], (path, name)


@pytest.mark.parametrize("path", PUBLIC_PAGES)
async def test_public_page_shows_no_console_navigation(client, path):
    html = await (await client.get(path)).text()
    assert 'class="sidenav"' not in html and "/admin/signout" not in html
    assert 'href="/privacy"' in html and 'href="/terms"' in html


async def test_privacy_page_lists_every_permission_the_app_requests_and_why(client):
    html = await (await client.get("/privacy")).text()
    for permission in PERMISSIONS:
        assert permission.name in html, permission.name
        assert str(escape(permission.purpose)) in html, permission.name


async def test_privacy_page_says_answers_and_temporary_passwords_are_never_kept(client):
    text = _words(await (await client.get("/privacy")).text())
    assert "Never the caller's answers" in text
    assert "Temporary passwords are never stored or logged" in text
    assert "Disconnect" in text and "contact your organisation's IT administrator" in text


async def test_terms_leave_the_reset_decision_with_the_helpdesk(client):
    text = _words(await (await client.get("/terms")).text())
    assert "one signal among several" in text
    assert "remain responsible for the decision to reset" in text
    assert "Contact your organisation's IT administrator" in text


async def test_every_url_the_manifest_links_to_us_is_served(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings_for(tmp_path)))
    base = str(client.make_url("/")).rstrip("/")
    developer = render_manifest(public_url=base)["developer"]
    assert isinstance(developer, dict)
    linked = [developer[key] for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl")]
    ours = [url for url in linked if url.startswith(base + "/")]
    assert len(ours) == 3, linked
    for url in ours:
        response = await client.get(urlsplit(url).path, allow_redirects=False)
        assert response.status == 200, url


def _words(html: str) -> str:
    """The page's text with line breaks folded, so a sentence can be found wherever the template wraps it."""
    return " ".join(html.split())
