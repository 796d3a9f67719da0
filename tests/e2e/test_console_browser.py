"""The admin console in a real browser: Debian's Chromium, driven by Playwright, against `python app.py` in demo mode
with devtenant started unconsented (WATCHWORD_DEMO_UNCONSENTED=true).

An admin signs in by picking an admin on devtenant's sign-in page, connects the tenant through devtenant's consent
page (declining once, then accepting), and someone who is not an admin is refused. Each page is kept as a
screenshot under build/screenshots/console/, with the time each step took in build/screenshots/console/timings.txt.

Skips, saying how to fix it, when Chromium (/usr/bin/chromium) or the playwright package is missing. Never run
`playwright install`: the browser comes from Debian (`make test` installs it when run as root).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import SCREENSHOTS, demo_app, demo_env, loopback_browser, skip_without_browser

pytestmark = pytest.mark.e2e

ARTIFACTS = SCREENSHOTS / "console"
TIMEOUT_MS = 20_000

skip_without_browser()
from playwright.sync_api import Page, expect  # noqa: E402 - after the skip


# --- the app under test ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`python app.py --port 0` in demo mode on an unconsented devtenant; its ready line."""
    tmp = tmp_path_factory.mktemp("console-browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.txt").write_text("")  # this run's figures only
    env = demo_env(tmp / "demo.db", WATCHWORD_DEMO_USERS="40", WATCHWORD_DEMO_UNCONSENTED="true")
    started = time.monotonic()
    with demo_app(env, tmp / "app.log") as (_, ready):
        ready["start_s"] = time.monotonic() - started
        _timings("app", {"python app.py to ready line": ready["start_s"]})
        yield ready


# --- the browser ----------------------------------------------------------------------------------------
class Steps:
    """Screenshots and timings of one test's pages, numbered in order."""

    def __init__(self, name: str, page: Page):
        self.dir = ARTIFACTS / name
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.page = page
        self.count = 0
        self.name = name
        self.last = time.monotonic()
        self.times: dict[str, float] = {}
        self.statuses: dict[str, int] = {}
        page.on("response", self._seen)

    def _seen(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.statuses[urlsplit(response.url).path] = response.status

    def shot(self, label: str) -> None:
        self.count += 1
        now = time.monotonic()
        self.times[label] = now - self.last
        self.page.screenshot(path=str(self.dir / f"{self.count:02d}-{label}.png"), full_page=True)
        self.last = time.monotonic()


@pytest.fixture
def browser(chromium: Any, request: pytest.FixtureRequest) -> Iterator[tuple[Page, Steps]]:
    """A fresh browser context (the module's Chromium) that may only reach loopback hosts."""
    started = time.monotonic()
    with loopback_browser(chromium, viewport={"width": 1280, "height": 900},
                          # devtenant's certificate comes from its own throwaway CA (loopback only)
                          ignore_https_errors=True) as (context, blocked):
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        steps = Steps(request.node.name.removeprefix("test_"), page)
        steps.times["open a browser context"] = time.monotonic() - started
        steps.last = time.monotonic()
        try:
            yield page, steps
        finally:
            steps.times["total"] = time.monotonic() - started
            _timings(steps.name, steps.times)
            context.close()
        assert not blocked, f"the pages tried to reach outside hosts: {blocked}"
        # A CSP violation shows up as a console error: the console must have none.
        assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def _timings(name: str, times: dict[str, float]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "timings.txt").open("a") as out:
        out.write(f"{name}: " + ", ".join(f"{k} {v:.2f}s" for k, v in times.items()) + "\n")


# --- steps on devtenant's pages and ours -----------------------------------------------------------------
def _pick_account(page: Page, label: str | None) -> str:
    """On devtenant's sign-in page, pick an account listed with `label`, or one with no label (an ordinary
    person). Returns the account's UPN."""
    accounts = page.locator("button.account")
    if label is None:
        account = accounts.filter(has_not=page.locator(".label")).first
    else:
        account = accounts.filter(has=page.locator(".label", has_text=label)).first
    upn = account.get_attribute("value") or ""
    account.click()
    return upn


def _sign_in(page: Page, steps: Steps, demo: dict[str, Any], label: str | None) -> str:
    """Sign in from Settings › Integrations (where the console's set-up starts), picking an account by label."""
    page.goto(demo["app"] + "/admin/settings/integrations")
    expect(page.get_by_role("heading", name="Sign in to the Watchword admin console")).to_be_visible()
    steps.shot("console-sign-in")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    steps.shot("devtenant-pick-an-account")
    return _pick_account(page, label)


def _connect_to(page: Page, steps: Steps, tenant: str) -> None:
    """Settings > Integrations > Microsoft Entra > Connect > Tenant ID > Enter > Open link."""
    page.get_by_role("link", name="Settings › Integrations").click()
    page.get_by_role("link", name="Connect", exact=True).click()
    expect(page.get_by_role("heading", name="Connect Microsoft Entra")).to_be_visible()
    page.get_by_label("Tenant ID").fill(tenant)
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_role("link", name="Open link")).to_be_visible()
    steps.shot("open-link")
    page.get_by_role("link", name="Open link").click()
    expect(page.get_by_role("heading", name="Sign in as an administrator")).to_be_visible()
    steps.shot("devtenant-admin-sign-in")
    _pick_account(page, "Global Administrator")
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    steps.shot("devtenant-permissions-requested")


# --- the tests ------------------------------------------------------------------------------------------
def test_someone_who_is_not_an_admin_is_refused_with_403(browser, demo):
    page, steps = browser
    upn = _sign_in(page, steps, demo, label=None)
    expect(page.get_by_role("heading", name="You can't use the admin console")).to_be_visible()
    steps.shot("refused-403")
    assert steps.statuses["/admin/signin/callback"] == 403
    expect(page.get_by_text(upn)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("not a Watchword administrator")
    # Still no way in.
    page.goto(demo["app"] + "/admin/settings/integrations")
    expect(page.get_by_role("heading", name="Sign in to the Watchword admin console")).to_be_visible()


def test_an_admin_who_declines_consent_is_told_in_plain_words(browser, demo):
    page, steps = browser
    _sign_in(page, steps, demo, label="Watchword Admins")
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    steps.shot("integrations")
    # A typo first: a clear message, and what was typed is still there.
    page.get_by_role("link", name="Connect", exact=True).click()
    page.get_by_label("Tenant ID").fill("contoso")
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_role("alert")).to_contain_text("neither a Tenant ID nor a domain")
    expect(page.get_by_label("Tenant ID")).to_have_value("contoso")
    steps.shot("tenant-id-refused")
    _connect_to(page, steps, demo["devtenant"]["domain"])
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", name="The permissions were declined")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("An administrator declined the permissions")
    expect(page.get_by_text("AADSTS65004")).to_be_visible()
    steps.shot("declined")


def test_an_admin_connects_the_tenant_and_sees_every_permission(browser, demo):
    page, steps = browser
    _sign_in(page, steps, demo, label="Watchword Admins")
    _connect_to(page, steps, demo["devtenant"]["tenant_id"])
    page.get_by_role("button", name="Accept").click()
    # devtenant, like Microsoft, issues tokens without the new roles for a few seconds after consent: the return
    # page says it is waiting and refreshes itself until they arrive.
    waiting = page.get_by_role("heading", name="Waiting for Microsoft to apply the consent")
    done = page.get_by_role("heading", name="Installation completed successfully")
    expect(waiting.or_(done)).to_be_visible()
    if waiting.is_visible():
        steps.shot("waiting-for-microsoft")
    expect(done).to_be_visible(timeout=90_000)
    rows = page.locator("table.permissions tbody tr")
    expect(rows).to_have_count(12)  # the 11 Watchword needs and the optional one that reaches people without a chat
    expect(page.locator("table.permissions tbody tr.granted")).to_have_count(12)
    expect(page.get_by_text("User-PasswordProfile.ReadWrite.All")).to_be_visible()
    steps.shot("installation-completed")
    page.get_by_role("link", name="Go to the connection").click()
    page.get_by_role("button", name="Check again").click()
    expect(page.get_by_role("status")).to_contain_text("Connection checked")
    expect(page.get_by_text(re.compile("Assigned"))).to_be_visible()
    steps.shot("checked-again")
    page.get_by_role("link", name="Disconnect").click()
    steps.shot("disconnect-confirm")
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("status")).to_contain_text("Disconnected")
    expect(page.get_by_text("Not connected")).to_be_visible()
    steps.shot("disconnected")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You signed out of the Watchword console")).to_be_visible()
    steps.shot("signed-out")
