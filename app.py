"""Watchword's entry point: `create_app(settings)` wires every part; `main()` runs it.

With no app registration configured (`WATCHWORD_CLIENT_ID` unset) Watchword runs in demo mode:
it starts devtenant, the local stand-in for Microsoft's cloud, in this process and talks to it
with the same msal and Graph code it uses against Microsoft.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from admin.app import setup_admin
from bot.hosting import setup_bot
from graph.tokens import TokenSource
from observability.correlation import correlated
from observability.logs import configure_logging
from observability.metrics import METRICS, Metrics, metrics_listener
from refusals import REFUSAL_LIMIT, RefusalLimit
from resources import DIRECTORY, GRAPH_HTTP, SETTINGS, STORE, TOKENS
from settings import Settings, SettingsError, check_loopback, load_settings
from store.db import open_store
from store.errors import StoreUnwritableError

if TYPE_CHECKING:
    from devtenant.model import Org, User
    from devtenant.playground import RunningPlayground

log = logging.getLogger("watchword")

__all__ = ["DIRECTORY", "SETTINGS", "STORE", "TOKENS", "create_app", "main"]


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application for these settings. Nothing happens at import time."""
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[REFUSAL_LIMIT] = RefusalLimit(settings.anonymous_refusals_per_minute)  # the console's and the bot's
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_tokens_ctx)
    app.cleanup_ctx.append(_directory_ctx)
    app.cleanup_ctx.append(metrics_listener)
    app.middlewares.append(_correlated)  # first: the console's guard and every handler run inside it
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    setup_admin(app)
    setup_bot(app)
    return app


@web.middleware
async def _correlated(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request (a Teams turn, a console action) under a correlation id of its own: on its log lines, its
    Graph requests and its audit rows, and on the background work it starts (a directory sync)."""
    with correlated():
        return await handler(request)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS].database_url)
    app[STORE] = store
    yield
    await store.close()


async def _tokens_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    tokens = TokenSource(login_url=s.login_url, client_id=s.client_id, client_secret=s.client_secret.get_secret_value(),
                         ca_file=s.ca_file)
    app[TOKENS] = tokens
    yield
    tokens.close()


async def _directory_ctx(app: web.Application) -> AsyncIterator[None]:
    from graph.client import build_http_client
    from graph.graph_directory import GraphDirectory  # msgraph-sdk: imported only when the app starts

    s = app[SETTINGS]
    http = build_http_client(s.ca_file, calls=app[METRICS])
    app[GRAPH_HTTP] = http
    directory = GraphDirectory(app[TOKENS], http, s.graph_url, s.client_id, calls=app[METRICS])
    app[DIRECTORY] = directory
    for tenant in await _connected_tenant_ids(app):
        directory.warm_up(tenant)
    yield
    await directory.aclose()  # first: a background refresh must not run into a closed client
    await http.aclose()


async def _connected_tenant_ids(app: web.Application) -> set[str]:
    """Tenants whose directory facts are worth caching at start: the connected ones and the configured one."""
    ids = {t.tenant_id for t in await app[STORE].tenants.list_tenants()}
    if app[SETTINGS].tenant_id:
        ids.add(app[SETTINGS].tenant_id)
    return ids


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers, and Graph answers for the configured tenant (a cheap read with a short
    timeout, remembered for seconds), not merely a token in msal's cache."""
    checks: dict[str, str] = {}
    try:
        await request.app[STORE].ping()
        checks["store"] = "ok"
    except Exception:  # readiness must report, never raise; the log has the details
        log.exception("readiness: store check failed")
        checks["store"] = "unavailable"
    tenant = request.app[SETTINGS].tenant_id
    if not tenant:
        checks["graph"] = "no tenant connected"
    else:
        problem = await request.app[DIRECTORY].answers(tenant)
        if problem is None:
            checks["graph"] = "ok"
        else:
            log.warning("readiness: %s", problem)
            checks["graph"] = problem.reason
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


# --- running it -----------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run Watchword (demo mode on devtenant when no tenant is configured).")
    parser.add_argument("--port", type=int, help="port (0 = any free one); default WATCHWORD_PORT or 3978")
    parser.add_argument("--host", help="interface to listen on; default WATCHWORD_HOST or 127.0.0.1")
    parser.add_argument("--no-playground", action="store_true",
                        help="in demo mode, don't start the Microsoft 365 Agents Playground (Teams-like client)")
    return parser.parse_args(argv)


async def serve(settings: Settings, *, playground: bool = True) -> None:
    """Start devtenant when in demo mode, then the app (and the Agents Playground on it, when `playground` and it
    is installed); print the ready line; run until a signal."""
    devtenant = None
    ready: dict[str, object] = {}
    if settings.demo:
        from devtenant.server import start_devtenant
        from devtenant.state import DevTenantConfig

        log.warning("DEMO MODE: no app registration configured; serving the built-in dev tenant. "
                    "Never use demo mode with real people.")
        settings = _demo_keys(settings)
        devtenant = await start_devtenant(DevTenantConfig(seed=settings.demo_seed, users=settings.demo_users,
                                                           latency_ms=float(settings.demo_latency_ms),
                                                           unconsented=settings.demo_unconsented,
                                                           # as the README's app registration does: the first
                                                           # admin signs in before consent lets Graph be asked
                                                           groups_claim=True))
        settings = settings.with_devtenant(devtenant.ready)
        ready["devtenant"] = devtenant.ready
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://{settings.host}:{port}"
    ready["app"] = url
    chat = None
    if devtenant is not None and playground:
        from devtenant.playground import start_demo_playground

        chat = await start_demo_playground(devtenant.state.org, url)
        if chat is not None:
            ready["playground"] = chat.url
    _announce(url, ready)
    if devtenant is not None:
        print(_demo_welcome(url, devtenant.state.org, chat), file=sys.stderr, flush=True)
    # Everything made so far (modules, the SDK, devtenant's organisation) lives as long as the process: keep the
    # collector from walking it on every full collection (turn latency; see microsoft-facts.md).
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if chat is not None:
            await chat.stop()
        await runner.cleanup()
        if devtenant is not None:
            await devtenant.stop()


def _announce(url: str, ready: dict[str, object]) -> None:
    log.info("Watchword is up: health %s/healthz, readiness %s/readyz", url, url)
    if "devtenant" in ready:
        dt = ready["devtenant"]
        assert isinstance(dt, dict)
        log.info("devtenant: sign-in and consent at %s, Graph at %s (tenant %s)",
                 dt["login"], dt["graph"], dt["tenant_id"])
    # One line of JSON on stdout for scripts and tests; everything else goes to stderr.
    print(json.dumps(ready), flush=True)


def _demo_keys(settings: Settings) -> Settings:
    """Demo mode makes the console's session key and the bot's state key it was not given, and says so once: the
    warnings the console and the bot give for a missing key are for real deployments, where it matters."""
    from cryptography.fernet import Fernet

    made = [name for name, value in (("WATCHWORD_SESSION_KEY", settings.session_key),
                                     ("WATCHWORD_STATE_KEY", settings.state_key)) if not value]
    if not made:
        return settings
    log.info("Demo mode made %s for this run (nothing to set up; sessions and verifications in progress end "
             "when it stops).", " and ".join(made))
    return settings.replace(session_key=settings.session_key or Fernet.generate_key().decode("ascii"),
                            state_key=settings.state_key or Fernet.generate_key().decode("ascii"))


def demo_admin(org: Org) -> User | None:
    """The first enabled member of devtenant's Watchword admins group: whom a newcomer signs in to the console as."""
    for uid in org.transitive_user_members(org.admins_group_id):
        user = org.users.get(uid)
        if user is not None and user.account_enabled:
            return user
    return None


def _demo_welcome(url: str, org: Org, chat: RunningPlayground | None) -> str:
    """The short block `make run` ends with, after the start-up logs: where to go and who to be."""
    admin = demo_admin(org)
    lines = ["", "=" * 72, "Watchword is running in demo mode on a generated organisation (" + org.display_name + ").",
             f"  Admin console   {url}/admin"]
    if admin is not None:
        group = org.groups[org.admins_group_id].display_name
        lines.append(f"                  sign in as {admin.display_name} ({admin.user_principal_name}), "
                     f"one of \"{group}\"")
    if chat is not None:
        lines += [f"  Teams chat      {chat.url}  (the Agents Playground)",
                  f"                  you are {chat.agent.display_name}, a helpdesk agent; "
                  f"try: verify {chat.people[0].display_name}",
                  "                  also: " + ", ".join(p.display_name for p in chat.people[1:])]
    else:
        lines.append("  Teams chat      not started (make run without ARGS=--no-playground, with Node.js and npm)")
    lines += [f"  Health          {url}/healthz and {url}/readyz", "Stop with Ctrl-C.", "=" * 72]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as err:
        print(f"watchword: configuration error: {err}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.replace(port=args.port)
    if args.host:
        settings = settings.replace(host=args.host)
    if settings.demo:
        try:
            check_loopback(settings.host)
        except SettingsError as err:
            print(f"watchword: configuration error: {err}", file=sys.stderr)
            return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.log_level != "DEBUG":
        # The Agents SDK logs every message it sends at INFO (conversation ids included): a line per reply that
        # says nothing Watchword's own log does not, and a measurable share of a turn's time. Its warnings stay.
        logging.getLogger("microsoft_agents").setLevel(logging.WARNING)
        # One line per HTTP request (devtenant's access log, httpx's "HTTP Request: ...") buries the lines a
        # person needs: kept for WATCHWORD_LOG_LEVEL=DEBUG.
        for noisy in ("devtenant.access", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(serve(settings, playground=not args.no_playground))
    except StoreUnwritableError as err:  # what is wrong and how to fix it, not a traceback
        print(f"watchword: database error: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
