"""The console's session: a small JSON document in an encrypted, authenticated cookie (Fernet).

Nothing about a live session is kept server-side, so any instance holding the same WATCHWORD_SESSION_KEY reads
the cookie. Signing out records the session id in the store (store.console_sessions: shared by every instance,
kept across restarts) and the console's guard refuses it from then on (admin.security). Fernet stamps each
cookie with the time it was written and the cookie is re-written on every console request, so `IDLE_TIMEOUT_S`
is an idle timeout; `created_at` inside bounds the whole session (`ABSOLUTE_LIFETIME_S`) however busy it is.

The cookie is HttpOnly, Secure when the console is served over https, and SameSite=Lax rather than Strict:
the identity platform sends the browser back to /admin/signin/callback and /admin/entra/callback with a
cross-site top-level GET, and a Strict cookie would not come along on it, losing the pending sign-in or
consent. Lax still keeps the cookie off cross-site POSTs, images and frames, and every POST also needs the
session's CSRF token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

IDLE_TIMEOUT_S = 30 * 60
ABSOLUTE_LIFETIME_S = 8 * 3600
COOKIE_NAME = "watchword_console"
SECURE_COOKIE_NAME = "__Host-watchword_console"  # the __Host- prefix: Secure, path=/, no Domain
# Instances' clocks differ a little: a signed-out id is remembered this much longer than its cookie could live.
CLOCK_SKEW_S = 5 * 60


@dataclass(frozen=True)
class Admin:
    """Who is signed in to the console. `via` is how they qualified: "group" or "role"."""

    oid: str
    tenant_id: str
    name: str
    username: str
    via: str
    signed_in_at: float


@dataclass
class ConsoleSession:
    sid: str
    csrf: str
    created_at: float
    admin: Admin | None = None
    # Short-lived things between two requests: "signin" (msal's flow), "consent" (state, tenant, expiry),
    # "next" (where to go after signing in), "flash" (messages for the next page).
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    ended: bool = False  # signed out: the cookie is deleted on the way out

    @staticmethod
    def new(now: float) -> ConsoleSession:
        return ConsoleSession(sid=secrets.token_urlsafe(18), csrf=secrets.token_urlsafe(32), created_at=now,
                              changed=True)

    def renew(self, now: float, admin: Admin | None) -> ConsoleSession:
        """A new session id and CSRF token (on sign-in: no fixation), keeping only harmless data."""
        fresh = ConsoleSession.new(now)
        fresh.admin = admin
        fresh.data = {k: v for k, v in self.data.items() if k in ("flash",)}
        return fresh

    def forget_after(self) -> datetime:
        """When a signed-out id may be forgotten: no cookie of this session is accepted after it anyway."""
        return datetime.fromtimestamp(self.created_at + ABSOLUTE_LIFETIME_S + CLOCK_SKEW_S, UTC)


class SessionCodec:
    """Encrypts sessions into cookie values and back. Whether a session was signed out is the store's to say."""

    def __init__(self, key: str | bytes, clock: Callable[[], float] = time.time):
        self._fernet = Fernet(key)
        self.clock = clock

    def dumps(self, session: ConsoleSession) -> str:
        body = {"sid": session.sid, "csrf": session.csrf, "created_at": session.created_at,
                "admin": asdict(session.admin) if session.admin else None, "data": session.data}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(raw, int(self.clock())).decode("ascii")

    def loads(self, value: str | None) -> tuple[ConsoleSession | None, str]:
        """(the session, "") or (None, why): "none", "invalid", "idle", "expired" (the guard adds "ended")."""
        if not value:
            return None, "none"
        now = self.clock()
        try:
            raw = self._fernet.decrypt_at_time(value.encode("ascii"), IDLE_TIMEOUT_S, int(now))
        except (InvalidToken, UnicodeEncodeError):
            return None, self._why_refused(value, now)
        try:
            body = json.loads(raw)
            admin = Admin(**body["admin"]) if body.get("admin") else None
            session = ConsoleSession(sid=str(body["sid"]), csrf=str(body["csrf"]),
                                     created_at=float(body["created_at"]), admin=admin,
                                     data=dict(body.get("data") or {}))
        except (ValueError, KeyError, TypeError):
            return None, "invalid"
        if now - session.created_at > ABSOLUTE_LIFETIME_S:
            return None, "expired"
        return session, ""

    def _why_refused(self, value: str, now: float) -> str:
        try:  # authentic but too old: that is an idle timeout, worth telling the person
            self._fernet.decrypt_at_time(value.encode("ascii"), 10 * ABSOLUTE_LIFETIME_S, int(now))
        except (InvalidToken, UnicodeEncodeError):
            return "invalid"
        return "idle"
