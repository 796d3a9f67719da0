"""The console's guard: the session cookie, who may open what, CSRF on every POST, and security headers.

One middleware handles every path under /admin, in this order:
1. read the session cookie (a missing, forged, idle, expired or signed-out one gives a fresh anonymous session);
2. unsafe methods (POST, PUT, PATCH, DELETE) must carry the session's CSRF token and, when the browser
   sends an Origin, come from our own origin: otherwise 403;
3. paths other than the public ones need a signed-in admin: GETs are sent to the sign-in page, the rest 401;
4. on the way out, the cookie is written again (sliding the idle timeout) or deleted (signed out).

Security headers go on every response of the application (an `on_response_prepare` hook), errors included.

Refused POSTs are audited. Anyone can send them, so those of anonymous callers are aggregated: the first of a
kind (reason and method) in a minute is written as it happens, the others are counted and written as one entry
(with the count and a few of the paths) when the minute is over. Thousands of refused requests cost a few rows.
They are rate-limited too (refusals.py): an address refused too often this minute gets 429 with Retry-After for
its anonymous POSTs, before their body is read, counted as refusals of reason "rate_limited".
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from time import monotonic
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from admin.context import SESSION, SESSIONS, SETTINGS, STORE, audit, render
from admin.session import COOKIE_NAME, IDLE_TIMEOUT_S, SECURE_COOKIE_NAME, ConsoleSession
from observability.correlation import correlated
from refusals import REFUSAL_LIMIT, client_address

log = logging.getLogger(__name__)

PREFIX = "/admin"
PUBLIC_PATHS = frozenset({
    "/admin/signin", "/admin/signin/start", "/admin/signin/callback", "/admin/signout", "/admin/signed-out",
})
STATIC_PREFIX = "/admin/static/"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Why a person landed on the sign-in page, keyed by what read_session reported.
_EXPIRY_NOTES = {
    "idle": "You were signed out after 30 minutes without activity. Sign in again to continue.",
    "expired": "Your session reached its 8-hour limit. Sign in again to continue.",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REFUSAL_WINDOW_S = 60.0
SAMPLE_PATHS = 5
REFUSED = "console.request_refused"


@dataclass
class _Window:
    opened: float
    more: int = 0  # refusals after the first, not written yet
    paths: list[str] = field(default_factory=list)


class RefusalTally:
    """Anonymous refusals by (reason, method), a minute at a time (see the module doc). Per process."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], _Window] = {}
        self._over: list[tuple[str, str, _Window]] = []  # ended by a newer refusal, not written yet

    def note(self, reason: str, method: str, path: str, now: float) -> bool:
        """Count a refusal; True when it is the first of its minute and should be written now."""
        window = self._windows.get((reason, method))
        if window is None or now - window.opened >= REFUSAL_WINDOW_S:
            if window is not None and window.more:
                self._over.append((reason, method, window))
            self._windows[(reason, method)] = _Window(now)
            return True
        window.more += 1
        if len(window.paths) < SAMPLE_PATHS and path not in window.paths:
            window.paths.append(path)
        return False

    def closed(self, now: float, *, everything: bool = False) -> list[tuple[str, str, _Window]]:
        """The windows that are over (or all, at shutdown) with refusals beyond the first: to write, once."""
        done, self._over = self._over, []
        for key, window in list(self._windows.items()):
            if everything or now - window.opened >= REFUSAL_WINDOW_S:
                del self._windows[key]
                if window.more:
                    done.append((*key, window))
        return done


REFUSALS = web.AppKey("console_refusals", RefusalTally)


def setup_refusals(app: web.Application) -> None:
    app[REFUSALS] = RefusalTally()
    app.cleanup_ctx.append(_refusals_ctx)


async def _refusals_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_write_closed_windows(app))
    yield
    task.cancel()
    await _write_tallies(app, everything=True)


async def _write_closed_windows(app: web.Application) -> None:
    while True:
        await asyncio.sleep(REFUSAL_WINDOW_S)
        with correlated():  # the round's log line and audit rows, like a request's
            try:
                await _write_tallies(app)
            except Exception:
                log.warning("could not write the count of refused console requests", exc_info=True)


async def _write_tallies(app: web.Application, *, everything: bool = False) -> None:
    for reason, method, window in app[REFUSALS].closed(monotonic(), everything=everything):
        await app[STORE].audit.append(action=REFUSED, outcome="refused", actor="anonymous", details={
            "reason": reason, "method": method, "count": window.more, "window_s": int(REFUSAL_WINDOW_S),
            "sample_paths": window.paths})


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies when people reach the console over https (the public URL says, or the request)."""
    public = request.app[SETTINGS].public_url
    return urlsplit(public).scheme == "https" if public else request.secure


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE_NAME if secure_cookies(request) else COOKIE_NAME


def public_origin(request: web.Request) -> str:
    """Where browsers and Microsoft reach us: WATCHWORD_PUBLIC_URL, else this request's own origin."""
    public = request.app[SETTINGS].public_url
    if public:
        parts = urlsplit(public)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.scheme}://{request.host}"


def public_url(request: web.Request, path: str) -> str:
    """An absolute URL for a path of ours (redirect URIs, links given to Microsoft)."""
    public = request.app[SETTINGS].public_url
    return (public.rstrip("/") if public else public_origin(request)) + path


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_console_path(request.path) or request.path.startswith(STATIC_PREFIX):
        return await handler(request)
    codec = request.app[SESSIONS]
    session, why = await read_session(request)
    if session is None:
        session = ConsoleSession.new(codec.clock())
        note = _EXPIRY_NOTES.get(why)
        if note:
            session.data["flash"] = [note]
    request[SESSION] = session
    try:
        response = await _guarded(request, handler, session)
    except web.HTTPException as exc:  # redirects and errors raised by handlers get the cookie too
        _write_cookie(request, exc, request[SESSION])  # a handler may have replaced it (sign-in)
        raise
    _write_cookie(request, response, request[SESSION])
    return response


async def read_session(request: web.Request) -> tuple[ConsoleSession | None, str]:
    """The request's console session, as SessionCodec.loads reports it, or (None, "ended") once signed out.

    The store is asked on every signed-in request, so a sign-out holds on every instance sharing the database
    and across restarts. There is no in-process cache of ended ids: it could only spare the query for a
    replayed, signed-out cookie (rare), never for a live session (the common case), and it would be a second
    answer that could disagree with the store. An anonymous session is not looked up: only signed-in sessions
    are recorded (see end_session), and signing in always starts a new session id.
    """
    session, why = request.app[SESSIONS].loads(request.cookies.get(cookie_name(request)))
    if session is not None and session.admin is not None:
        if await request.app[STORE].console_sessions.is_ended(session.sid):
            return None, "ended"
    return session, why


async def end_session(request: web.Request, session: ConsoleSession) -> None:
    """Sign-out: refuse this session id from now on, on every instance, even if someone kept a copy of the cookie.

    Only a signed-in session is recorded: an anonymous one grants nothing, and recording it would let anyone
    without an account add rows to the database.
    """
    if session.admin is not None:
        await request.app[STORE].console_sessions.end(session.sid, session.forget_after())
    session.ended = True


async def _guarded(request: web.Request, handler: Handler, session: ConsoleSession) -> web.StreamResponse:
    anonymous = session.admin is None
    if request.method in UNSAFE_METHODS:
        limit, address = request.app[REFUSAL_LIMIT], client_address(request)
        if anonymous and (wait_s := limit.wait_s(address)) is not None:
            # Refused too often this minute: told to wait before its body is even read, and counted.
            await _audit_refusal(request, session, "rate_limited")
            response = render(request, "error.html", status=429, title="Too many refused requests",
                              message=f"Too many requests from your address were refused. Try again in {wait_s} "
                                      "seconds.")
            response.headers["Retry-After"] = str(wait_s)
            return response
        refusal = await _csrf_refusal(request, session)
        if refusal:
            if anonymous:
                limit.refused(address)
            await _audit_refusal(request, session, refusal)
            return render(request, "error.html", status=403, title="This form has expired",
                          message="The page you sent this from is no longer valid (or did not come from the "
                                  "console). Go back, reload the page and try again.")
    if request.path not in PUBLIC_PATHS and anonymous:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPFound("/admin/signin?" + urlencode({"next": request.path_qs}))
        request.app[REFUSAL_LIMIT].refused(client_address(request))
        return render(request, "error.html", status=401, title="Sign in first",
                      message="Your session has ended. Sign in again, then repeat what you were doing.")
    return await handler(request)


async def _audit_refusal(request: web.Request, session: ConsoleSession, refusal: str) -> None:
    """Each signed-in admin's refusal is written; an anonymous caller's are counted a minute at a time."""
    path = _shortened(request.path)
    if session.admin is not None:
        log.warning("console: refused %s %s: %s", request.method, path, refusal)
        await audit(request, REFUSED, "refused", subject=path, details={"reason": refusal, "method": request.method})
        return
    if request.app[REFUSALS].note(refusal, request.method, path, monotonic()):
        log.warning("console: refused %s %s: %s (more like it this minute are counted)", request.method, path,
                    refusal)
        await _write_tallies(request.app)
        await audit(request, REFUSED, "refused", subject=path, details={"reason": refusal, "method": request.method})


def _shortened(path: str, limit: int = 200) -> str:
    """A path as an audit subject (at most 256 characters): anyone may POST to any path, however long."""
    return path if len(path) <= limit else path[:limit] + "…"


async def _csrf_refusal(request: web.Request, session: ConsoleSession) -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != public_origin(request):
        return "cross_origin"
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent:
        return "csrf_missing"
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        return "csrf_mismatch"
    return None


def _write_cookie(request: web.Request, response: web.StreamResponse, session: ConsoleSession) -> None:
    name = cookie_name(request)
    secure = secure_cookies(request)
    if session.ended:
        response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
        return
    if response.prepared:
        return
    # Written on every console response: Fernet's timestamp is the idle timer.
    response.set_cookie(name, request.app[SESSIONS].dumps(session), path="/", secure=secure, httponly=True,
                        samesite="Lax", max_age=IDLE_TIMEOUT_S)


def content_security_policy(login_url: str) -> str:
    login = urlsplit(login_url)
    login_origin = f"{login.scheme}://{login.netloc}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        # Sign-out posts to us and we redirect to Microsoft's logout: form-action covers that redirect.
        f"form-action 'self' {login_origin}",
    ])


def security_headers(csp: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if is_console_path(request.path) and not request.path.startswith(STATIC_PREFIX):
            headers.setdefault("Cache-Control", "no-store")
        if secure_cookies(request):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return add
