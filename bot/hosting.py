"""`POST /api/messages`: Bot Framework authentication, a sanity check of the body, then the Agents SDK.

Authentication is the SDK's own `jwt_authorization_middleware` logic (applied to this route only, as its
`jwt_authorization_decorator`, so the admin console and health checks are not asked for a Bot Framework
token): a request without a valid token for our app id gets 401. Anonymous requests are accepted only
when `settings.bot_anonymous` is set, which only demo mode does, and which is logged loudly at start.

Before the SDK sees it, the body must be at most 256 KB of JSON, nested at most 64 levels, describing an
Activity with a type, channel, conversation, sender and an absolute https service URL (plain http only to a
channel on this machine: devtenant, the Playground, tests); anything else gets 400 (the SDK would answer some
of these with a 500 and a stack trace in the log). A bearer token whose header names no key (`kid`) gets 401
before the SDK's key lookup, which would raise KeyError on it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler
from microsoft_agents.activity import Activity
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_decorator, start_agent_process
from microsoft_agents.hosting.core import AgentAuthConfiguration
from pydantic import ValidationError

from bot.agent import WatchwordAgent
from bot.connector_clients import PooledClientsFactory
from bot.sealing import FernetSealer
from bot.turn_errors import correlation_id
from dialogs.session_keeper import SWITCH_INTERVAL_S, StartLimits
from observability.correlation import correlated
from observability.metrics import METRICS
from refusals import REFUSAL_LIMIT, client_address
from resources import DIRECTORY, SETTINGS, STORE
from settings import Settings
from store.turns import BEAT_EVERY
from verification.clock import utc_now

log = logging.getLogger("watchword.bot")

MESSAGES_PATH = "/api/messages"
MAX_ACTIVITY_BYTES = 256 * 1024
MAX_ACTIVITY_DEPTH = 64  # Teams' own activities nest about 10 levels; Python's JSON and pydantic recurse
SDK_AUTH_KEY = "agent_configuration"  # the (string) app key the SDK's JWT check reads
EXPIRY_SWEEP_S = 60.0


@dataclass(frozen=True)
class Bot:
    agent: WatchwordAgent
    adapter: CloudAdapter


BOT = web.AppKey("bot", Bot)


def auth_configuration(settings: Settings) -> AgentAuthConfiguration:
    """The bot's identity: Watchword's app registration is also its Azure Bot's app id (the tokens' audience)."""
    return AgentAuthConfiguration(
        client_id=settings.client_id or None,
        client_secret=settings.client_secret.get_secret_value() or None,
        # Outbound replies are signed by the Bot Framework tenant for a multi-tenant bot.
        tenant_id="botframework.com",
        connection_name="SERVICE_CONNECTION",
        anonymous_allowed=settings.bot_anonymous,
        validate_issuer=True,  # Bot Framework's issuer (and Microsoft's first-party ones) only: opt-in in the SDK
    )


def setup_bot(app: web.Application) -> None:
    """Add /api/messages to the app; the bot itself is built when the app starts (it needs the store)."""

    settings = app[SETTINGS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app[SDK_AUTH_KEY] = auth_configuration(settings)
    if settings.bot_anonymous:
        log.warning("DEMO MODE: %s accepts requests WITHOUT authentication (no app registration is configured). "
                    "Never expose this to a network.", MESSAGES_PATH)
    elif not settings.client_id:
        log.error("%s refuses every request: no app registration (WATCHWORD_CLIENT_ID) to check tokens against.",
                  MESSAGES_PATH)
    app.cleanup_ctx.append(_bot_ctx)
    app.router.add_post(MESSAGES_PATH, _limited(_keyed_tokens_only(jwt_authorization_decorator(messages))))


def _limited(handler: Handler) -> Handler:
    """Requests refused for their token (401) count against their address (refusals.py); once it has used its
    refusals this minute, its requests with no token are answered 429 before anything else, and those whose token
    fails are answered 429 instead of 401. A valid token is served whatever its address did."""

    async def check(request: web.Request) -> web.StreamResponse:
        limit, address = request.app[REFUSAL_LIMIT], client_address(request)
        wait_s = limit.wait_s(address)
        if wait_s is not None and not request.app[SETTINGS].bot_anonymous \
                and "Authorization" not in request.headers:
            return _too_many(wait_s)
        response = await handler(request)
        if response.status != 401:
            return response
        limit.refused(address)
        return _too_many(wait_s) if wait_s is not None else response

    return check


def _too_many(wait_s: int) -> web.Response:
    return web.json_response({"error": "Too many refused requests from this address: try again later."},
                             status=429, headers={"Retry-After": str(wait_s)})


def _keyed_tokens_only(handler: Handler) -> Handler:
    """401 for a bearer token whose header names no signing key: the SDK reads `header["kid"]` unguarded."""

    async def check(request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                kid = jwt.get_unverified_header(token.strip()).get("kid")
            except jwt.PyJWTError:
                kid = None
            if not isinstance(kid, str) or not kid:
                return web.json_response({"error": "Invalid token or authentication failed."}, status=401)
        return await handler(request)

    return check


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:

    settings, store = app[SETTINGS], app[STORE]
    key = settings.state_key.get_secret_value()
    if not key:
        key = FernetSealer.generate_key()
        log.warning("WATCHWORD_STATE_KEY is not set: verification state is encrypted with a key made for this run, "
                    "so verifications in progress will not survive a restart.")
    connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": app[SDK_AUTH_KEY]})
    clients = PooledClientsFactory(connections)  # per-turn clients, one pool of connections, timeouts
    adapter = CloudAdapter(connection_manager=connections, channel_service_client_factory=clients)
    agent = WatchwordAgent(
        store=store, storage=store.conversation_state, directory=app[DIRECTORY], sealer=FernetSealer(key),
        clock=utc_now, connection_manager=connections, app_id=settings.client_id,
        anonymous=settings.bot_anonymous, connected_at_start=settings.tenant_id,
        fallback_helpdesk_group=settings.helpdesk_group_id, metrics=app[METRICS],
        start_limits=StartLimits(settings.starts_at_once, timedelta(seconds=settings.start_wait_s)),
        plan_memory_bytes=settings.plan_memory_mb * 1024 * 1024)
    adapter.on_turn_error = agent.on_error.handle
    app[BOT] = Bot(agent, adapter)
    await store.turns.beat()  # alive before the first turn: see _beat
    beating = asyncio.create_task(_beat(app))
    sweeper = asyncio.create_task(_expire_sessions(app))
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the event loop's share of the GIL beside starts (session_keeper.py)
    yield
    sys.setswitchinterval(switch_interval)
    sweeper.cancel()
    beating.cancel()
    await agent.stop()  # sends to people's Teams in flight end (or are cancelled) while the store is still open
    try:  # the chats of turns cut short by the stop are free at once, not when their leases run out
        await store.turns.retire()
    except Exception:
        log.warning("could not record that this process stops", exc_info=True)
    await clients.close()


async def _beat(app: web.Application) -> None:
    """This process's heartbeat (store/turns.py): while it beats, its turns keep their chats; once it is killed, the
    other instances take those chats over within seconds, not when the turns' leases run out."""
    while True:
        await asyncio.sleep(BEAT_EVERY.total_seconds())
        try:
            await app[STORE].turns.beat()
        except Exception:  # the next beat tries again; three missed and the others take this process's chats
            log.warning("could not write this process's heartbeat", exc_info=True)


async def _expire_sessions(app: web.Application) -> None:
    """Sessions nobody came back to end as timed_out in the store (the dialog says so if they come back)."""

    while True:
        await asyncio.sleep(EXPIRY_SWEEP_S)
        await sweep(app)


async def sweep(app: web.Application) -> None:
    """One pass of the sweep: overdue sessions end as timed_out (counted so, and the code shown in the person's
    Teams is taken off their card), old activity ids go, and the people whose reset was left unsettled by a dead
    turn are told it may have gone through (once). Each pass has a correlation id of its own, like a turn: on its
    log lines, its audit rows and any Graph request."""
    with correlated():
        await _sweep(app)


async def _sweep(app: web.Application) -> None:
    bot, expired = app[BOT], []
    try:
        expired = await app[STORE].sessions.expire_overdue()
        app[METRICS].verification_ended("timed_out", len(expired))
        if expired:
            log.info("sweep: %d verification(s) nobody came back to timed out", len(expired))
        await app[STORE].turns.prune()  # activity ids kept to process each turn once (store/turns.py)
    except Exception:
        log.warning("could not expire overdue verification sessions", exc_info=True)
    await bot.agent.messenger.close_code_cards(bot.adapter, expired)
    try:
        await bot.agent.messenger.tell_of_abandoned_resets(bot.adapter)
    except Exception:
        log.warning("could not settle the resets left unsettled", exc_info=True)


async def messages(request: web.Request) -> web.StreamResponse:
    """One turn (under the request's correlation id, app.py's middleware: on its log lines, its Graph requests
    and its audit rows)."""
    problem = await activity_problem(request)
    if problem is not None:
        return web.json_response({"error": problem}, status=400)
    bot = request.app[BOT]
    try:
        response = await start_agent_process(request, bot.agent, bot.adapter)  # WatchwordAgent.on_turn: the SDK Agent
    except Exception:  # the turn-error handler covers the turn; this covers the SDK around it
        reference = correlation_id()
        log.exception("%s failed, reference %s", MESSAGES_PATH, reference)
        return web.json_response({"error": "internal error", "reference": reference}, status=500)
    return response if response is not None else web.Response(status=202)


async def activity_problem(request: web.Request) -> str | None:
    """Why this body is not an Activity we can serve (None when it is). Reads at most 1 MB (aiohttp's cap)."""
    too_big = f"the body is larger than {MAX_ACTIVITY_BYTES // 1024} KB"
    if request.content_length is not None and request.content_length > MAX_ACTIVITY_BYTES:
        return too_big
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_big
    if len(body) > MAX_ACTIVITY_BYTES:
        return too_big
    try:
        data = json.loads(body)
    except ValueError:  # UnicodeDecodeError is one
        return "the body is not JSON"
    except RecursionError:
        return f"the body is nested more than {MAX_ACTIVITY_DEPTH} levels deep"
    if not isinstance(data, dict):
        return "the body is not an Activity (a JSON object)"
    if json_depth(data) > MAX_ACTIVITY_DEPTH:
        return f"the body is nested more than {MAX_ACTIVITY_DEPTH} levels deep"
    for path in ("type", "channelId", "serviceUrl", "conversation.id", "from.id"):
        value: object = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.strip():
            return f"the Activity has no {path}"
    if not channel_url_ok(data["serviceUrl"]):
        return "the Activity's serviceUrl is not an absolute https URL"
    try:
        Activity.model_validate(data)
    except ValidationError as err:
        return f"the Activity is malformed ({err.error_count()} problems)"
    return None


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in parsed JSON, counted without recursion (0 for a scalar)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_ACTIVITY_DEPTH:
            return depth
        pending.extend((child, depth + 1) for child in children)
    return deepest


def channel_url_ok(url: str) -> bool:
    """Replies go to the activity's serviceUrl with the bot's token: https to a named host, no credentials in
    the URL; plain http only to this machine (devtenant, the Playground and tests' fake channels listen there)."""
    try:
        parts = urlsplit(url.strip())
        host, _ = parts.hostname, parts.port
    except ValueError:  # a malformed IPv6 literal or port
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _loopback(host)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
