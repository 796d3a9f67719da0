"""The console as its people meet it, in a real browser (Debian's Chromium through Playwright) against `python
app.py` in demo mode on a small consented devtenant: every page passes an axe-core WCAG 2.1 AA scan and shows
where keyboard focus is; the home's charts; a first sync offered before it has run; excluding a person and
seeing their name in the audit; a Global Administrator let in by role and an ordinary person told who may sign
in; an unknown domain answered on our own page. Screenshots go to build/screenshots/console-people/<test>/.

One app for the module; a fresh Chromium per test (test_console_browser's `browser` fixture).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import AXE, SCREENSHOTS, accessibility_problems, demo_app, demo_env
from tests.e2e.test_console_browser import _sign_in, _timings, browser  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e
if not AXE.exists():
    pytest.skip(f"axe-core is missing at {AXE}: install it with `npm ci` (make test does when npm is there)",
                allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402 - after test_console_browser's skips when it is missing

SHOTS = SCREENSHOTS / "console-people"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`python app.py --port 0` in demo mode on a consented 60-person devtenant; its ready line."""
    tmp = tmp_path_factory.mktemp("console-people")
    started = time.monotonic()
    with demo_app(demo_env(tmp / "demo.db", WATCHWORD_DEMO_USERS="60"), tmp / "app.log") as (_, ready):
        _timings("people-app", {"python app.py to ready line": time.monotonic() - started})
        yield ready


class Shots:
    def __init__(self, page: Page, name: str) -> None:
        self.page, self.dir, self.count = page, SHOTS / name, 0
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()

    def __call__(self, label: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.dir / f"{self.count:02d}-{label}.png"), full_page=True)


def _admin(page: Page, steps: Any, demo: dict[str, Any]) -> None:
    _sign_in(page, steps, demo, label="Watchword Admins")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto(demo["app"] + "/admin/settings/integrations")
    for _ in range(50):  # the configured tenant is connected at start: wait until the console says so
        if page.get_by_text("Connected", exact=True).count():
            return
        time.sleep(0.2)
        page.reload()
    raise AssertionError("the demo tenant never showed as connected")


def _accessible(page: Page, where: str) -> None:
    problems = accessibility_problems(page)
    assert not problems, f"{where}: " + "\n".join(problems)


def _focus_ring(page: Page) -> str:
    """The focused element's outline, as the browser draws it ("none" when focus is invisible)."""
    return page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                         " return s.outlineStyle === 'none' ? 'none' : `${s.outlineStyle} ${s.outlineWidth}`; }")


# --- the tests ------------------------------------------------------------------------------------------
def test_every_page_passes_an_accessibility_scan_and_shows_keyboard_focus(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "every-page")
    _admin(page, steps, demo)
    pages = [("/admin/", "The last 30 days"), ("/admin/settings/integrations", "Integrations"),
             ("/admin/entra", "Microsoft Entra"), ("/admin/entra/connect", "Connect Microsoft Entra"),
             ("/admin/users", "Protected users"), ("/admin/policy", "Policy"), ("/admin/audit", "Audit"),
             ("/admin/teams-app", "Teams app")]
    for path, heading in pages:
        page.goto(demo["app"] + path)
        expect(page.get_by_role("heading", name=heading, exact=False).first).to_be_visible()
        _accessible(page, path)
        shot(path.strip("/").replace("/", "-") or "home")
    # Keyboard: the first Tab lands on the skip link, visibly; every later stop shows a focus ring too.
    page.goto(demo["app"] + "/admin/policy")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the page's content")).to_be_focused()
    assert _focus_ring(page) != "none"
    shot("skip-link-focused")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert _focus_ring(page) != "none", page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
    shot("focus-on-a-control")


def test_the_home_shows_the_month_as_charts_with_the_numbers_as_text(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "home")
    _admin(page, steps, demo)
    page.goto(demo["app"] + "/admin/")
    for title in ("Median time to verify", "Verifications by outcome", "Verifications per day", "Password resets",
                  "Lockouts", "Graph sources unavailable"):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    # The pictures are hidden from screen readers; each has a table of its numbers for them.
    assert page.locator("svg[aria-hidden='true']").count() >= 3
    expect(page.locator("table.sr-only caption", has_text="Verifications per day, per day")).to_have_count(1)
    shot("home")


def test_a_first_sync_is_offered_then_a_person_is_excluded_and_named_in_the_audit(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "users")
    _admin(page, steps, demo)
    page.goto(demo["app"] + "/admin/users")
    if page.get_by_text("The directory sync has not run yet.").count():
        shot("sync-not-run")
        page.get_by_role("button", name="Run the first sync now").click()
    expect(page.locator("#sync-summary")).to_contain_text("Last synced", timeout=60_000)
    page.goto(demo["app"] + "/admin/users")
    row = page.locator("table.users tbody tr").filter(has=page.get_by_role("button", name="Exclude")).first
    name = row.locator("td").first.inner_text().splitlines()[0].strip()
    row.get_by_role("button", name="Exclude").click()
    expect(page.get_by_role("status").filter(has_text=f"{name} is excluded")).to_be_visible()
    expect(page.get_by_role("button", name=f"Include {name} again")).to_be_visible()
    _accessible(page, "users after excluding")
    shot("excluded")
    page.goto(demo["app"] + "/admin/audit?action=protected_user.excluded")
    expect(page.locator("table.audit tbody tr").first).to_contain_text(name)
    shot("audit-names-the-person")
    page.goto(demo["app"] + "/admin/users")
    page.get_by_role("button", name=f"Include {name} again").click()
    expect(page.get_by_role("status").filter(has_text=f"{name} is included again")).to_be_visible()


def test_the_policy_names_the_helpdesk_group_in_force_and_the_teams_app_lists_cancel(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "policy-and-teams-app")
    _admin(page, steps, demo)
    page.goto(demo["app"] + "/admin/policy")
    expect(page.locator("#helpdesk-in-force")).to_contain_text("Helpdesk Agents")
    page.locator("#helpdesk_group_id").scroll_into_view_if_needed()
    shot("helpdesk-group-in-force")
    page.goto(demo["app"] + "/admin/teams-app")
    expect(page.get_by_role("listitem").filter(has_text="cancel: Stop the verification")).to_be_visible()
    shot("commands")


def test_a_global_administrator_gets_in_by_role_and_others_are_told_who_may(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "who-may-sign-in")
    page.goto(demo["app"] + "/admin/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    accounts = page.locator("button.account")
    global_admin = accounts.filter(has=page.locator(".label", has_text="Global Administrator")).filter(
        has_not=page.locator(".label", has_text="Watchword Admins")).first
    global_admin.click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    shot("global-administrator-in")
    page.get_by_role("button", name="Sign out").click()
    page.goto(demo["app"] + "/admin/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    accounts.filter(has_not=page.locator(".label")).first.click()
    expect(page.get_by_role("heading", name="You can't use the admin console")).to_be_visible()
    expect(page.get_by_role("heading", name="Who may sign in")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="Members of the group “Watchword Admins”")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="Global Administrators of the organisation")).to_be_visible()
    _accessible(page, "refusal page")
    shot("refused-with-who-may")


def test_an_unknown_domain_on_connect_is_answered_on_our_page(browser, demo):  # noqa: F811
    page, steps = browser
    shot = Shots(page, "unknown-domain")
    _admin(page, steps, demo)
    page.goto(demo["app"] + "/admin/entra/connect")
    page.get_by_label("Tenant ID").fill("no-such-tenant.example")
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_role("alert")).to_contain_text("No Microsoft Entra tenant has the domain")
    assert page.url.startswith(demo["app"])  # still on our page, not Microsoft's AADSTS90002
    _accessible(page, "connect with an error")
    shot("unknown-domain")
