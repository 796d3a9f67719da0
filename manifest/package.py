"""Build the Teams app package: manifest.json, color.png and outline.png at the root of a zip.

Manifest version 1.22: the version Microsoft's app manifest reference documents as current, so the one to expect
the Teams admin center upload (Manage apps > Upload) and the Developer Portal to accept. 1.30's schema is published
too, but Teams has refused freshly published versions for a while before (`UnsupportedManifestVersion`), and 1.30
adds only Copilot/agent and slash-command features Watchword does not use. Everything Watchword needs is in 1.22:
one bot with personal/team/groupChat scopes and command lists, `permissions` (identity, messageTeamMembers),
`validDomains` and `webApplicationInfo`.

The admin console serves the same bytes as `make package` writes: both come from `package_bytes`.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import jinja2

from manifest import icons

MANIFEST_VERSION = "1.22"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
DEFAULT_VERSION = "1.0.0"
DEFAULT_OUT = Path("build/watchword-teams.zip")
APP_NAME = "Watchword"
DEVELOPER_NAME = "Watchword"
# Demo mode (no WATCHWORD_CLIENT_ID): a placeholder bot id, all zeros ending in "de" for demo. The package
# validates, but no Azure Bot has this id, so the bot would never answer: build with a real client id.
DEMO_BOT_ID = "00000000-0000-0000-0000-0000000000de"
# Demo mode with no public URL: "localhost", not 127.0.0.1. The schema has no pattern for validDomains, but
# Teams wants host names there (and api://<host>/... in webApplicationInfo), so loopback IPs become "localhost".
DEMO_PUBLIC_URL = "https://localhost"
# The Teams app id is derived from the bot id under this namespace, so every build for one deployment has the
# same app id (Teams treats a new id as a different app). Never change it: installed apps would be orphaned.
APP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:watchword:teams-app-id")
PACKAGE_FILES = ("manifest.json", "color.png", "outline.png")

SHORT_NAME_MAX = 30
FULL_NAME_MAX = 100
URL_MAX = 2048

SHORT_DESCRIPTION = "Verify a helpdesk caller in Teams before anyone resets their password."
FULL_DESCRIPTION = (
    "Watchword guides your IT helpdesk through checking that a caller really is the employee they claim to be "
    "before anyone resets a password. Type \"verify\" and the caller's name or email in a chat with Watchword: "
    "it asks questions that the real person can answer easily and an impostor cannot, drawn from their own "
    "recent work in Microsoft 365 (whom they met this week, whom they work with, which groups they belong to), "
    "weighs the risk in their recent sign-ins, and resets the password (temporary, to be changed at the next "
    "sign-in) only when the caller passes. Employees can confirm that a call really is them, ask for their own "
    "reset with \"reset my password\" when their organisation allows it, and are always told when their "
    "password was reset. Type \"help\" to see what Watchword can do. Admins connect their Microsoft Entra "
    "tenant, choose whom to protect and set the verification policy in Watchword's admin console, where every "
    "decision is kept in a tamper-evident audit log."
)
DEMO_NOTE = "DEMO BUILD: the bot id is a placeholder and this package will not reach a running Watchword. "


@dataclass(frozen=True)
class Command:
    title: str  # Teams shows at most 32 characters
    description: str  # and at most 128 here


@dataclass(frozen=True)
class CommandList:
    scopes: tuple[str, ...]
    commands: tuple[Command, ...]


VERIFY = Command("verify", "Verify a caller: verify <name or email>")
RESET_MY_PASSWORD = Command("reset my password", "Reset your own password, when your organisation allows it")
CANCEL = Command("cancel", "Stop the verification in progress; nothing more happens to the account")
HELP = Command("help", "What Watchword can do and how to ask")
BOT_SCOPES = ("personal", "team", "groupChat")
# "reset my password" is offered in one-to-one chats only: a self-service reset is a private matter, and a
# channel or group chat is the wrong place to invite people to talk about their credentials.
COMMAND_LISTS = (
    CommandList(("personal",), (VERIFY, CANCEL, RESET_MY_PASSWORD, HELP)),
    CommandList(("team", "groupChat"), (VERIFY, CANCEL, HELP)),
)
PERMISSIONS = ("identity", "messageTeamMembers")

_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class PackageError(ValueError):
    """An input the package cannot be built from; the message says which and what is expected."""


@dataclass(frozen=True)
class _Resolved:
    bot_id: str
    app_id: str
    base_url: str  # the public URL without credentials, query or fragment, and without a trailing slash
    host: str | None  # host[:port] for validDomains and the api:// resource; None for a non-loopback IP
    version: str
    name: str
    demo: bool


def derive_app_id(bot_id: str) -> str:
    """The Teams app id for a bot id: the same every time, different for every bot."""
    return str(uuid.uuid5(APP_ID_NAMESPACE, str(uuid.UUID(bot_id))))


def render_manifest(
    *,
    bot_id: str = "",
    public_url: str = "",
    app_id: str = "",
    domain: str = "",
    version: str = DEFAULT_VERSION,
    name: str = APP_NAME,
) -> dict[str, object]:
    """The manifest as a dict. `bot_id` is the Entra app's client id (empty = demo placeholder); `public_url`
    the URL Watchword is reached at; `app_id` defaults to one derived from the bot id; `domain` (host[:port])
    stands in for the public URL's host when there is no public URL; `name` is shortened to fit Teams."""
    spec = _resolve(bot_id=bot_id, public_url=public_url, app_id=app_id, domain=domain, version=version, name=name)
    short_name = _fit(spec.name, SHORT_NAME_MAX)
    full_name = _fit(f"{spec.name}: helpdesk caller verification", FULL_NAME_MAX)
    text = _template().render(
        schema_url=SCHEMA_URL,
        manifest_version=MANIFEST_VERSION,
        version=spec.version,
        app_id=spec.app_id,
        developer_name=DEVELOPER_NAME,
        website_url=f"{spec.base_url}/",
        privacy_url=f"{spec.base_url}/privacy",
        terms_url=f"{spec.base_url}/terms",
        short_name=short_name,
        full_name=full_name,
        short_description=SHORT_DESCRIPTION,
        full_description=(DEMO_NOTE if spec.demo else "") + FULL_DESCRIPTION,
        color_icon=PACKAGE_FILES[1],
        outline_icon=PACKAGE_FILES[2],
        accent_color=icons.ACCENT_COLOR,
        bot_id=spec.bot_id,
        bot_scopes=list(BOT_SCOPES),
        command_lists=COMMAND_LISTS,
        permissions=list(PERMISSIONS),
        domain=spec.host,
        resource=f"api://{spec.host}/{spec.bot_id}" if spec.host else None,
    )
    return json.loads(text)


def package_bytes(
    *,
    bot_id: str = "",
    public_url: str = "",
    app_id: str = "",
    domain: str = "",
    version: str = DEFAULT_VERSION,
    name: str = APP_NAME,
) -> bytes:
    """The package as zip bytes, for the admin console to serve as a download; arguments as `render_manifest`.

    The console calls `package_bytes(bot_id=settings.client_id, public_url=settings.public_url)`. The bytes
    are the same on every call with the same arguments (fixed timestamps, fixed order, deterministic icons).
    """
    manifest = render_manifest(
        bot_id=bot_id, public_url=public_url, app_id=app_id, domain=domain, version=version, name=name
    )
    contents = {
        PACKAGE_FILES[0]: (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        PACKAGE_FILES[1]: icons.color_png(),
        PACKAGE_FILES[2]: icons.outline_png(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for filename, data in contents.items():
            info = zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_package(*, out: Path = DEFAULT_OUT, **inputs: str) -> Path:
    """Write the package (keyword arguments as `package_bytes`) to `out`, creating its folder; returns `out`."""
    data = package_bytes(**inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(data)
    partial.replace(out)
    return out


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,  # every value goes through tojson (already safe); see the template's comment
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("manifest.json.j2")


def _resolve(*, bot_id: str, public_url: str, app_id: str, domain: str, version: str, name: str) -> _Resolved:
    demo = not bot_id.strip()
    bot = _guid("bot id", bot_id) if not demo else DEMO_BOT_ID
    app = _guid("app id", app_id) if app_id.strip() else derive_app_id(bot)
    if not _SEMVER.match(version.strip()):
        # Teams refuses pre-release and build suffixes (1.0.0-beta) although the schema text says "semver".
        raise PackageError(f"The version must be MAJOR.MINOR.PATCH, such as 1.0.0 or 1.4.2, got {version!r}.")
    if public_url.strip():
        base_url, url_host = _base_url(public_url)
    elif domain.strip():
        base_url, url_host = _base_url(f"https://{_domain(domain)}")
    else:
        base_url, url_host = _base_url(DEMO_PUBLIC_URL)
    host = _domain(domain) if domain.strip() else url_host
    return _Resolved(bot, app, base_url, host, version.strip(), _clean(name) or APP_NAME, demo)


def _guid(what: str, value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise PackageError(f"The {what} must be a GUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301, "
                           f"got {value!r}.") from None


def _base_url(public_url: str) -> tuple[str, str | None]:
    """The public URL cleaned for the manifest (no credentials, query or fragment), and its host for the domain."""
    parts = urlsplit(public_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PackageError(f"The public URL must be an http(s):// URL, got {public_url!r}.")
    try:
        port = parts.port
    except ValueError:
        raise PackageError(f"The public URL has an invalid port: {public_url!r}.") from None
    hostname = parts.hostname  # lower-cased, without credentials or brackets
    if _ip_address(hostname) is None:
        hostname = _idna(hostname)
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc += f":{port}"
    base = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    if len(base) + len("/privacy") > URL_MAX:
        raise PackageError(f"The public URL is too long for the Teams manifest (at most {URL_MAX - 8} characters).")
    return base, _host(hostname, port)


def _domain(value: str) -> str | None:
    """A --domain value (host or host:port, no scheme or path) as validDomains wants it."""
    text = value.strip()
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or parts.path or parts.query or parts.fragment or "@" in text:
        raise PackageError(f"The domain must be a host name such as helpdesk.contoso.com (no https:// and no "
                           f"path), got {value!r}.")
    return _host(parts.hostname, port)


def _host(hostname: str, port: int | None) -> str | None:
    """host[:port] for validDomains: IDNA-encoded; a loopback IP becomes localhost, any other IP None."""
    address = _ip_address(hostname)
    if address is not None and not address.is_loopback:
        return None  # Teams takes host names, not IP addresses: leave validDomains out
    if address is not None:
        hostname = "localhost"
    else:
        hostname = _idna(hostname)
    return f"{hostname}:{port}" if port is not None else hostname


def _idna(hostname: str) -> str:
    """A host name in its ASCII (punycode) form, checked label by label."""
    try:
        encoded = hostname.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        encoded = ""
    if not _HOST.match(encoded):
        raise PackageError(f"{hostname!r} is not a valid host name.")
    return encoded


def _ip_address(hostname: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        return None


def _clean(text: str) -> str:
    """One line of printable text: control and format characters dropped, runs of whitespace made one space."""
    kept = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())


def _fit(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, ending in an ellipsis when something was cut."""
    text = _clean(text)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"
