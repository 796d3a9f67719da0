"""Watchword's settings: read from the environment (and an optional `.env`) once, validated at start.

Every variable is documented in `env.example`. Our own variables start with `WATCHWORD_`; the
Agents SDK's `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__*` names are kept where the SDK reads them.
Secrets have no defaults and never appear in `repr()` or logs (pydantic's `SecretStr`).

`Settings(...)` is built from its arguments only (tests, benches, `replace`); `load_settings` is the one place
that reads the environment and `.env` (pydantic-settings' dotenv source), and turns pydantic's validation
errors into one line per variable saying how to fix it.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, AliasGenerator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/watchword.db"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Directory roles (template ids, the same in every tenant) whose holders in a connected tenant may use the console
# unless WATCHWORD_ADMIN_ROLES says otherwise: the two roles that can grant Watchword's consent and its reset role.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
DEFAULT_ADMIN_ROLES = (GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR)
SDK_CONNECTION = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
MAKE_A_FERNET_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
ROLE = "the template ID of a directory role, e.g. 62e90394-69f5-4237-9190-012177145e10 for Global Administrator"


class SettingsError(ValueError):
    """A missing or malformed setting; the message says which variable and how to fix it."""


# --- The checks. Each says "must be ..."; load_settings puts the variable's name in front. ---
def _must(be: str, ok: Callable[[Any], object], then: Callable[[Any], Any] = lambda v: v,
          echo: bool = True) -> BeforeValidator:
    """Passes an empty value (unset) or one that is `ok`, converted by `then`; else `must be {be}, got {value!r}`
    (`echo=False` for secrets and credentials: the value is never repeated)."""
    def check(value: Any) -> Any:
        try:
            good = value in ("", None) or ok(value)
        except (ValueError, TypeError):
            good = False
        if not good:
            raise ValueError(f"must be {be}" + (f", got {value!r}." if echo else ""))
        return then(value) if value not in ("", None) else value
    return BeforeValidator(check)


def _whole(low: int, high: int) -> BeforeValidator:
    return _must(f"a whole number from {low} to {high}", lambda v: low <= int(v) <= high, int)


def _guid(what: str, then: Callable[[str], str] = str) -> BeforeValidator:
    return _must(f"a GUID ({what})", uuid.UUID, then)


def _url(https: bool = False, then: Callable[[str], str] = lambda v: v.rstrip("/")) -> BeforeValidator:
    schemes = ("https",) if https else ("http", "https")
    return _must(f"an {'https' if https else 'http(s)'}:// URL",
                 lambda v: urlsplit(v).scheme in schemes and urlsplit(v).netloc, then)


def _is_fernet_key(value: SecretStr | str) -> bool:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return not raw or len(base64.urlsafe_b64decode(raw.encode("ascii"))) == 32


def _ca_file(value: Any) -> Path | None:
    if value and not Path(value).is_file():
        raise ValueError(f"points to {str(value)!r}, which is not a readable file.")
    return Path(value) if value else None


def _roles(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated role template ids, or "none"."""
    if not isinstance(value, str):
        return tuple(value)
    return () if value.lower() == "none" else tuple(r.strip() for r in value.split(",") if r.strip())


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
Flag = Annotated[bool, _must("true or false", lambda v: str(v).lower() in TRUE + FALSE,
                             lambda v: str(v).lower() in TRUE)]
FernetKey = Annotated[SecretStr, _must(f"a Fernet key (32 bytes, url-safe base64). Make one with: {MAKE_A_FERNET_KEY}",
                                       _is_fernet_key, echo=False)]


class Settings(BaseSettings):
    """The one frozen settings object. Field `x` is read from `WATCHWORD_X` unless its alias says otherwise."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=True, env_ignore_empty=True,
        hide_input_in_errors=True, validate_by_name=True, validate_by_alias=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: "WATCHWORD_" + name.upper()),
    )

    host: str = "127.0.0.1"
    port: Annotated[int, _whole(0, 65535)] = 3978
    # The URL people and Microsoft reach Watchword at (redirect URIs, links in cards).
    public_url: Annotated[str, _url()] = ""
    database_url: Annotated[str, _must("a sqlite+aiosqlite:// URL (the default, a file under ./var) or a "
                                       "postgresql+asyncpg:// URL (to scale out).",
                                       lambda v: v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
                                       echo=False)] = DEFAULT_DATABASE_URL
    # WATCHWORD_DEMO=true: demo mode was asked for (checked by load_settings; `demo` says whether it is on).
    demo_requested: Flag = Field(False, validation_alias="WATCHWORD_DEMO")
    # Watchword's Entra app registration (multi-tenant). Empty client id = demo mode on devtenant.
    client_id: Annotated[str, _guid("the Application (client) ID of the app registration")] = Field(
        "", validation_alias=AliasChoices("WATCHWORD_CLIENT_ID", SDK_CONNECTION + "CLIENTID"))
    client_secret: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("WATCHWORD_CLIENT_SECRET", SDK_CONNECTION + "CLIENTSECRET"))
    login_url: Annotated[str, _url(https=True)] = DEFAULT_LOGIN_URL
    graph_url: Annotated[str, _url(https=True)] = DEFAULT_GRAPH_URL
    # An extra CA to trust for login and Graph (devtenant's); None = the system's trust store.
    ca_file: Annotated[Path | None, BeforeValidator(_ca_file)] = None
    # A tenant treated as connected at start (demo mode sets devtenant's); others connect in the console.
    tenant_id: Annotated[str, _guid("the Directory (tenant) ID from Entra > Overview")] = ""
    log_level: Annotated[str, _must(f"one of {', '.join(LOG_LEVELS)}", lambda v: v.upper() in LOG_LEVELS,
                                    str.upper)] = "INFO"
    # Demo mode: devtenant runs in-process with this many users and seed.
    demo_users: Annotated[int, _whole(20, 50_000)] = 200
    demo_seed: Annotated[int, _whole(0, 2**31 - 1)] = 1
    # Demo mode: latency devtenant adds to every Graph request, as Microsoft's cloud is ~100 ms away (0 = instant).
    demo_latency_ms: Annotated[int, _whole(0, 10_000)] = 0
    # Demo mode: devtenant starts without admin consent, so the console's Connect flow can be tried.
    demo_unconsented: Flag = False
    # The admin console: the Fernet key that encrypts its session cookie (empty = a new key per run),
    # and who may sign in: members of this Entra group and/or holders of these directory roles (template ids;
    # WATCHWORD_ADMIN_ROLES, plus the older single WATCHWORD_ADMIN_ROLE): see `admin_role_ids`.
    session_key: FernetKey = SecretStr("")
    admin_group_id: Annotated[str, _guid("the Object ID of the Entra group of console admins", str.lower)] = ""
    admin_roles: Annotated[tuple[str, ...], _must(f"a GUID ({ROLE}; several are separated by commas)",
                                                  lambda v: all(uuid.UUID(r) for r in _roles(v)),
                                                  _roles)] = DEFAULT_ADMIN_ROLES
    admin_role: Annotated[str, _guid(ROLE)] = ""
    # The Teams bot. Anonymous requests to /api/messages are accepted only in demo mode (load_settings sets
    # this when no app registration is configured, whatever the environment says); with it off every request
    # needs a Bot Framework token.
    bot_anonymous: bool = False
    # The Fernet key that encrypts a verification's accepted answers in the bot's conversation state
    # (empty = a new key per run: verifications in progress do not survive a restart).
    state_key: FernetKey = SecretStr("")
    # The Entra group whose members are helpdesk agents (a tenant's saved access settings take precedence).
    helpdesk_group_id: Annotated[str, _guid("the Object ID of the Entra group whose members are helpdesk agents",
                                            str.lower)] = ""
    # Where the audit chain's head is sent daily (https, optional) and the key signing it (admin/audit_head.py).
    audit_head_url: Annotated[str, _url(https=True, then=str)] = ""
    audit_head_secret: SecretStr = SecretStr("")
    # Prometheus metrics (observability/): served on a listener of their own when a port is set (None = off), never
    # on the bot's; bound to loopback unless told otherwise, and then only with the bearer token.
    metrics_port: Annotated[int | None, _whole(0, 65535)] = None
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr = SecretStr("")
    # Log lines: "json" (one object a line, with the turn's correlation id) or "text"; load_settings makes "text"
    # demo mode's default.
    log_format: Annotated[str, _must("json or text", lambda v: v.lower() in ("json", "text"), str.lower)] = "json"
    # Load limits: verifications starting at once (reading Graph, choosing questions), how long a start may wait for
    # its turn before the agent hears "Watchword is busy, try again in a few seconds", and the memory that open
    # verifications' question plans may hold (beyond it, the least recently used are read back from the database).
    # Anonymous refusals (console POSTs without a signed-in session, /api/messages without a valid token) one
    # client address may get in a minute; past them it is answered 429 with Retry-After until its minute is over.
    anonymous_refusals_per_minute: Annotated[int, _whole(1, 100_000)] = 30
    starts_at_once: Annotated[int, _whole(1, 1000)] = 16
    start_wait_s: Annotated[int, _whole(1, 120)] = 5
    plan_memory_mb: Annotated[int, _whole(1, 65_536)] = 64

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource, **_: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The arguments, then `.env` when one is named (`_env_file`): load_settings passes the environment as
        arguments, so the environment wins and `.env` fills only what it lacks."""
        return init_settings, dotenv_settings

    @model_validator(mode="after")
    def _secrets_where_needed(self) -> Settings:
        if self.client_id and not self.client_secret:
            raise ValueError(
                "WATCHWORD_CLIENT_SECRET is missing: create a client secret under the app registration's "
                "'Certificates & secrets' in Microsoft Entra and set it (or unset WATCHWORD_CLIENT_ID for demo mode).")
        if self.metrics_port is not None and self.metrics_host not in LOOPBACK_HOSTS and not self.metrics_token:
            raise ValueError(f"WATCHWORD_METRICS_HOST={self.metrics_host!r} serves metrics beyond this machine: set "
                             "WATCHWORD_METRICS_TOKEN to a long random string for the scraper to send as a bearer "
                             "token, or keep the host 127.0.0.1.")
        return self

    @property
    def demo(self) -> bool:
        return not self.client_id

    @property
    def admin_role_ids(self) -> tuple[str, ...]:
        """Whose directory roles let them use the console: WATCHWORD_ADMIN_ROLES plus WATCHWORD_ADMIN_ROLE."""
        return tuple(dict.fromkeys(r.lower() for r in (*self.admin_roles, self.admin_role) if r))

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated like the original."""
        return type(self)(**{**dict(self), **changes})

    def with_devtenant(self, ready: Mapping[str, object]) -> Settings:
        """Point the product at a running devtenant (demo mode and tests): only URLs, CA and the app differ."""
        return self.replace(
            client_id=str(ready["client_id"]),
            client_secret=str(ready["client_secret"]),
            login_url=str(ready["login"]),
            graph_url=str(ready["graph"]),
            ca_file=Path(str(ready["ca_file"])),
            tenant_id=str(ready["tenant_id"]),
            admin_group_id=self.admin_group_id or str(ready.get("admins_group_id") or ""),
            helpdesk_group_id=self.helpdesk_group_id or str(ready.get("helpdesk_group_id") or ""),
        )

    def check_mode(self) -> None:
        """Demo mode only when asked for (WATCHWORD_DEMO=true) and on loopback; production with an https public
        URL."""
        if self.demo_requested and self.client_id:
            raise SettingsError("WATCHWORD_DEMO=true and WATCHWORD_CLIENT_ID are both set: demo mode serves the "
                                "built-in dev tenant and ignores the app registration. Unset one of them.")
        if self.demo_requested:
            check_loopback(self.host)
        elif not self.client_id:
            raise SettingsError("No app registration is configured: set WATCHWORD_CLIENT_ID and "
                                "WATCHWORD_CLIENT_SECRET (README, 'A real tenant'), or WATCHWORD_DEMO=true to try "
                                "Watchword on its built-in dev tenant (loopback only; `make run` sets it when nothing "
                                "is configured).")
        elif urlsplit(self.public_url).scheme != "https":
            raise SettingsError("WATCHWORD_PUBLIC_URL must be the https:// URL people and Microsoft reach Watchword "
                                "at (e.g. https://watchword.example.com): cookies, redirect URIs and links in cards "
                                f"are built from it, never from a request's Host header. Got "
                                f"{self.public_url or 'nothing'!r}.")


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env"),
                  serving: bool = True) -> Settings:
    """Build Settings from the environment; `.env` fills only variables the environment lacks; an empty variable
    counts as unset. `serving`: the settings will serve people, so demo mode must be asked for and production
    needs its https public URL (the Teams package builder, which serves nobody, passes False)."""
    env = os.environ if environ is None else environ
    ours = {k: v.strip() for k, v in env.items() if k.startswith(("WATCHWORD_", SDK_CONNECTION)) and v.strip()}
    try:
        settings = Settings(_env_file=dotenv, **ours)
    except ValidationError as error:
        raise SettingsError("\n".join(_explain(problem) for problem in error.errors(include_input=False))) from None
    by_mode = {} if "log_format" in settings.model_fields_set else {"log_format": "text" if settings.demo else "json"}
    settings = settings.replace(bot_anonymous=settings.demo, **by_mode)
    if serving:
        settings.check_mode()
    return settings


def _explain(problem: Mapping[str, Any]) -> str:
    """One of pydantic's errors (located by variable name) as `VARIABLE must be ...`: our checks' own words,
    pydantic's otherwise."""
    error = problem.get("ctx", {}).get("error")
    message = str(error) if isinstance(error, ValueError) else f"is not valid: {problem['msg']}."
    return f"{problem['loc'][0]} {message}" if problem["loc"] else message  # a check of several names them itself


def check_loopback(host: str) -> None:
    """Demo mode must never face real people: it listens on loopback only."""
    if host not in LOOPBACK_HOSTS:
        raise SettingsError(f"Demo mode (WATCHWORD_DEMO=true) listens on loopback only, not {host!r}: set "
                            "WATCHWORD_HOST=127.0.0.1, or configure a real app registration to serve others.")

