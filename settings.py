"""Watchword's settings: read from the environment (and an optional `.env`) once, validated at start.

Every variable is documented in `env.example`. Our own variables start with `WATCHWORD_`; the
Agents SDK's `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__*` names are kept where the SDK reads them.
Secrets have no defaults and never appear in `repr()` or logs.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/watchword.db"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Directory roles (template ids, the same in every tenant) whose holders in a connected tenant may use the console
# unless WATCHWORD_ADMIN_ROLES says otherwise: the two roles that can grant Watchword's consent and its reset role.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
DEFAULT_ADMIN_ROLES = (GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR)


class SettingsError(ValueError):
    """A missing or malformed setting; the message says which variable and how to fix it."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3978
    # The URL people and Microsoft reach Watchword at (redirect URIs, links in cards).
    public_url: str = ""
    database_url: str = DEFAULT_DATABASE_URL
    # Watchword's Entra app registration (multi-tenant). Empty client id = demo mode on devtenant.
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    login_url: str = DEFAULT_LOGIN_URL
    graph_url: str = DEFAULT_GRAPH_URL
    # An extra CA to trust for login and Graph (devtenant's); None = the system's trust store.
    ca_file: Path | None = None
    # A tenant treated as connected at start (demo mode sets devtenant's); others connect in the console.
    tenant_id: str = ""
    log_level: str = "INFO"
    # Demo mode: devtenant runs in-process with this many users and seed.
    demo_users: int = 200
    demo_seed: int = 1
    # Demo mode: latency devtenant adds to every Graph request, as Microsoft's cloud is ~100 ms away (0 = instant).
    demo_latency_ms: int = 0
    # Demo mode: devtenant starts without admin consent, so the console's Connect flow can be tried.
    demo_unconsented: bool = False
    # The admin console: the Fernet key that encrypts its session cookie (empty = a new key per run),
    # and who may sign in: members of this Entra group and/or holders of these directory roles (template ids).
    session_key: str = field(default="", repr=False)
    admin_group_id: str = ""
    admin_role_ids: tuple[str, ...] = DEFAULT_ADMIN_ROLES
    # The Teams bot. Anonymous requests to /api/messages are accepted only in demo mode (load_settings sets
    # this when no app registration is configured); with it off every request needs a Bot Framework token.
    bot_anonymous: bool = False
    # The Fernet key that encrypts a verification's accepted answers in the bot's conversation state
    # (empty = a new key per run: verifications in progress do not survive a restart).
    state_key: str = field(default="", repr=False)
    # The Entra group whose members are helpdesk agents (a tenant's saved access settings take precedence).
    helpdesk_group_id: str = ""
    # Where the audit chain's head is sent daily (https, optional) and the key signing it (admin/audit_head.py).
    audit_head_url: str = ""
    audit_head_secret: str = field(default="", repr=False)
    # Prometheus metrics (observability/): served on a listener of their own when a port is set (None = off), never
    # on the bot's; bound to loopback unless told otherwise, and then only with the bearer token.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_token: str = field(default="", repr=False)
    # Log lines: "json" (one object a line, with the turn's correlation id) or "text" (demo mode's default).
    log_format: str = "json"

    @property
    def demo(self) -> bool:
        return not self.client_id

    def with_devtenant(self, ready: Mapping[str, object]) -> Settings:
        """Point the product at a running devtenant (demo mode and tests): only URLs, CA and the app differ."""
        login = str(ready["login"])
        return replace(
            self,
            client_id=str(ready["client_id"]),
            client_secret=str(ready["client_secret"]),
            login_url=login,
            graph_url=str(ready["graph"]),
            ca_file=Path(str(ready["ca_file"])),
            tenant_id=str(ready["tenant_id"]),
            admin_group_id=self.admin_group_id or str(ready.get("admins_group_id") or ""),
            helpdesk_group_id=self.helpdesk_group_id or str(ready.get("helpdesk_group_id") or ""),
        )


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env"),
                  serving: bool = True) -> Settings:
    """Build Settings from the environment; `.env` fills only variables the environment lacks. `serving`: the
    settings will serve people, so demo mode must be asked for and production needs its https public URL (the
    Teams package builder, which serves nobody, passes False)."""
    env = dict(os.environ if environ is None else environ)
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        for key, value in dotenv_values(dotenv).items():
            if value is not None:
                env.setdefault(key, value)
    return _parse(env, serving)


def _parse(env: Mapping[str, str], serving: bool = True) -> Settings:
    def get(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    client_id = get("WATCHWORD_CLIENT_ID") or get("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID")
    secret = get("WATCHWORD_CLIENT_SECRET") or get("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET")
    demo = _bool("WATCHWORD_DEMO", get("WATCHWORD_DEMO", "false"))
    host = get("WATCHWORD_HOST", "127.0.0.1")
    public_url = _url("WATCHWORD_PUBLIC_URL", get("WATCHWORD_PUBLIC_URL"), optional=True).rstrip("/")
    if serving:
        _check_mode(client_id, demo, host, public_url)
    if client_id:
        _require_guid("WATCHWORD_CLIENT_ID", client_id, "the Application (client) ID of the app registration")
        if not secret:
            raise SettingsError(
                "WATCHWORD_CLIENT_SECRET is missing: create a client secret under the app registration's "
                "'Certificates & secrets' in Microsoft Entra and set it (or unset WATCHWORD_CLIENT_ID for demo mode)."
            )
    tenant_id = get("WATCHWORD_TENANT_ID")
    if tenant_id:
        _require_guid("WATCHWORD_TENANT_ID", tenant_id, "the Directory (tenant) ID from Entra > Overview")
    port = _int("WATCHWORD_PORT", get("WATCHWORD_PORT", "3978"), 0, 65535)
    admin_group_id = get("WATCHWORD_ADMIN_GROUP_ID")
    if admin_group_id:
        _require_guid("WATCHWORD_ADMIN_GROUP_ID", admin_group_id, "the Object ID of the Entra group of console admins")
    admin_role_ids = _admin_roles(env.get("WATCHWORD_ADMIN_ROLES"), get("WATCHWORD_ADMIN_ROLE"))
    helpdesk_group_id = get("WATCHWORD_HELPDESK_GROUP_ID")
    if helpdesk_group_id:
        _require_guid("WATCHWORD_HELPDESK_GROUP_ID", helpdesk_group_id,
                      "the Object ID of the Entra group whose members are helpdesk agents")
    metrics_port, metrics_host = _metrics(get("WATCHWORD_METRICS_PORT"), get("WATCHWORD_METRICS_HOST", "127.0.0.1"),
                                          bool(get("WATCHWORD_METRICS_TOKEN")))
    return Settings(
        host=host,
        port=port,
        public_url=public_url,
        database_url=_database_url(get("WATCHWORD_DATABASE_URL", DEFAULT_DATABASE_URL)),
        client_id=client_id,
        client_secret=secret,
        login_url=_url("WATCHWORD_LOGIN_URL", get("WATCHWORD_LOGIN_URL", DEFAULT_LOGIN_URL), https=True).rstrip("/"),
        graph_url=_url("WATCHWORD_GRAPH_URL", get("WATCHWORD_GRAPH_URL", DEFAULT_GRAPH_URL), https=True).rstrip("/"),
        ca_file=_ca_file(get("WATCHWORD_CA_FILE")),
        tenant_id=tenant_id,
        log_level=_choice("WATCHWORD_LOG_LEVEL", get("WATCHWORD_LOG_LEVEL", "INFO").upper(),
                          ("DEBUG", "INFO", "WARNING", "ERROR")),
        demo_users=_int("WATCHWORD_DEMO_USERS", get("WATCHWORD_DEMO_USERS", "200"), 20, 50_000),
        demo_seed=_int("WATCHWORD_DEMO_SEED", get("WATCHWORD_DEMO_SEED", "1"), 0, 2**31 - 1),
        demo_latency_ms=_int("WATCHWORD_DEMO_LATENCY_MS", get("WATCHWORD_DEMO_LATENCY_MS", "0"), 0, 10_000),
        demo_unconsented=_bool("WATCHWORD_DEMO_UNCONSENTED", get("WATCHWORD_DEMO_UNCONSENTED", "false")),
        session_key=_session_key(get("WATCHWORD_SESSION_KEY")),
        admin_group_id=admin_group_id.lower(),
        admin_role_ids=admin_role_ids,
        bot_anonymous=not client_id,
        state_key=_fernet_key("WATCHWORD_STATE_KEY", get("WATCHWORD_STATE_KEY")),
        helpdesk_group_id=helpdesk_group_id.lower(),
        audit_head_url=_url("WATCHWORD_AUDIT_HEAD_URL", get("WATCHWORD_AUDIT_HEAD_URL"), https=True, optional=True),
        audit_head_secret=get("WATCHWORD_AUDIT_HEAD_SECRET"),
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        metrics_token=get("WATCHWORD_METRICS_TOKEN"),
        log_format=_choice("WATCHWORD_LOG_FORMAT", get("WATCHWORD_LOG_FORMAT", "json" if client_id else "text").lower(),
                           ("json", "text")),
    )


def _metrics(port: str, host: str, token: bool) -> tuple[int | None, str]:
    """WATCHWORD_METRICS_PORT (unset = no metrics) and _HOST (loopback by default; beyond it, only with a token)."""
    if not port:
        return None, host
    if host not in LOOPBACK_HOSTS and not token:
        raise SettingsError(f"WATCHWORD_METRICS_HOST={host!r} serves metrics beyond this machine: set "
                            "WATCHWORD_METRICS_TOKEN to a long random string for the scraper to send as a bearer "
                            "token, or keep the host 127.0.0.1.")
    return _int("WATCHWORD_METRICS_PORT", port, 0, 65535), host


def _admin_roles(roles: str | None, legacy_role: str) -> tuple[str, ...]:
    """WATCHWORD_ADMIN_ROLES: comma-separated role template ids, or "none"; unset = DEFAULT_ADMIN_ROLES. The older
    single WATCHWORD_ADMIN_ROLE is added to them."""
    what = ("the template ID of a directory role, e.g. 62e90394-69f5-4237-9190-012177145e10 for Global "
            "Administrator")
    if roles is None or not roles.strip():
        chosen = list(DEFAULT_ADMIN_ROLES)
    elif roles.strip().lower() == "none":
        chosen = []
    else:
        chosen = [r.strip() for r in roles.split(",") if r.strip()]
        for role in chosen:
            _require_guid("WATCHWORD_ADMIN_ROLES", role, what + "; several are separated by commas")
    if legacy_role:
        _require_guid("WATCHWORD_ADMIN_ROLE", legacy_role, what)
        chosen.append(legacy_role)
    return tuple(dict.fromkeys(r.lower() for r in chosen))


def _check_mode(client_id: str, demo: bool, host: str, public_url: str) -> None:
    """Demo mode only when asked for (WATCHWORD_DEMO=true) and on loopback; production with an https public URL."""
    if demo and client_id:
        raise SettingsError("WATCHWORD_DEMO=true and WATCHWORD_CLIENT_ID are both set: demo mode serves the built-in "
                            "dev tenant and ignores the app registration. Unset one of them.")
    if demo:
        check_loopback(host)
        return
    if not client_id:
        raise SettingsError("No app registration is configured: set WATCHWORD_CLIENT_ID and WATCHWORD_CLIENT_SECRET "
                            "(README, 'A real tenant'), or WATCHWORD_DEMO=true to try Watchword on its built-in dev "
                            "tenant (loopback only; `make run` sets it when nothing is configured).")
    if urlsplit(public_url).scheme != "https":
        raise SettingsError("WATCHWORD_PUBLIC_URL must be the https:// URL people and Microsoft reach Watchword at "
                            "(e.g. https://watchword.example.com): cookies, redirect URIs and links in cards are built "
                            f"from it, never from a request's Host header. Got {public_url or 'nothing'!r}.")


def check_loopback(host: str) -> None:
    """Demo mode must never face real people: it listens on loopback only."""
    if host not in LOOPBACK_HOSTS:
        raise SettingsError(f"Demo mode (WATCHWORD_DEMO=true) listens on loopback only, not {host!r}: set "
                            "WATCHWORD_HOST=127.0.0.1, or configure a real app registration to serve others.")


def _require_guid(name: str, value: str, what: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise SettingsError(f"{name} must be a GUID ({what}), got {value!r}.") from None


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {value!r}.") from None
    if not low <= number <= high:
        raise SettingsError(f"{name} must be from {low} to {high}, got {number}.")
    return number


def _bool(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}.")


def _session_key(value: str) -> str:
    if not value:
        return ""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        # The message never echoes the value: it is a secret, however malformed.
        raise SettingsError(
            "WATCHWORD_SESSION_KEY must be a Fernet key (32 bytes, url-safe base64). Make one with: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    return value


def _fernet_key(name: str, value: str) -> str:
    if not value:
        return ""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:  # the message never echoes the value: it is a secret, however malformed
        raise SettingsError(
            f"{name} must be a Fernet key (32 bytes, url-safe base64). Make one with: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}.")
    return value


def _url(name: str, value: str, *, https: bool = False, optional: bool = False) -> str:
    if not value and optional:
        return ""
    parts = urlsplit(value)
    schemes = ("https",) if https else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        need = "an https:// URL" if https else "an http(s):// URL"
        raise SettingsError(f"{name} must be {need}, got {value!r}.")
    return value


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "WATCHWORD_DATABASE_URL must start with sqlite+aiosqlite:// (the default, a file under ./var) "
            f"or postgresql+asyncpg:// (to scale out), got {value.split('://')[0]!r}://..."
        )
    return value


def _ca_file(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise SettingsError(f"WATCHWORD_CA_FILE points to {value!r}, which is not a readable file.")
    return path
