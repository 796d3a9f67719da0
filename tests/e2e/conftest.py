"""What the browser tests share: `python app.py` in demo mode as a subprocess (its ready line), and Debian's
Chromium through Playwright, allowed to reach loopback hosts only.

Never run `playwright install`: the browser comes from Debian (`make test` installs it when run as root). Test
modules that need the browser call `skip_without_browser()` at import time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def skip_without_browser() -> None:
    """Skip the calling test module, saying how to fix it, when Chromium or the playwright package is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
                    "(`make test` does so when run as root)", allow_module_level=True)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing: pip install -r requirements-dev.txt", allow_module_level=True)


# --- the app under test ---------------------------------------------------------------------------------
def ready_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The one JSON line `app.py` prints on stdout once it serves."""
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            ready = json.loads(line)
        except ValueError:
            continue
        if isinstance(ready, dict) and "app" in ready:
            return ready
    raise AssertionError(f"app.py exited ({proc.wait()}) without its ready line")


def demo_env(database: Path, **variables: str) -> dict[str, str]:
    """This environment without any Watchword or SDK settings, in demo mode (as `make run` sets it), on its own
    SQLite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env.update({"WATCHWORD_DEMO": "true", "WATCHWORD_DATABASE_URL": f"sqlite+aiosqlite:///{database}", **variables})
    return env


@contextmanager
def demo_app(env: Mapping[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """`python app.py --port 0 --no-playground` (the tests start their own Playground when they need one) with
    `env` (see `demo_env`), stderr to `log_path`; (process, ready line). Stopped with SIGTERM (killed after 20 s)
    on the way out."""
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", "0", "--no-playground"],  # noqa: S603
                                cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            yield proc, ready_line(proc)
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once for a test module (launching it took seconds a test): each test
    opens a fresh context of its own in it (`loopback_browser`), with no cookies, storage or cache of another's."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def loopback_browser(chromium: Any, **options: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh browser context in `chromium` (the fixture) whose pages may reach loopback hosts only:
    (Playwright BrowserContext, the outside URLs it tried and was refused). `options` go to Playwright's
    new_context (viewport, ignore_https_errors...)."""
    from playwright.sync_api import Route

    context = chromium.new_context(**options)
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    try:
        yield context, blocked
    finally:
        context.close()


# --- what a person sees: screenshots and the accessibility scan -------------------------------------------
# Screenshots are make test's artefacts (gitignored): anyone can look at what each browser test saw.
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # pinned in package.json; never from a CDN
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def accessibility_problems(page: Any, within: str | None = None) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (or only inside the elements `within` selects,
    e.g. our cards in the Playground, whose own page is not ours), one line each (rule, impact, where). axe is
    evaluated through the DevTools protocol, so the console's CSP (no inline script) stays as it is."""
    if not AXE.exists():
        raise AssertionError(f"axe-core is missing at {AXE}: run `npm ci` (make test does)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    violations = page.evaluate(
        "async ([tags, within]) => (await axe.run(within ? {include: [[within]]} : document,"
        " {runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)",
        [AXE_TAGS, within])
    return list(violations)
