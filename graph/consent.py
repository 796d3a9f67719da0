"""Connecting a customer tenant: the tenant an admin types, Microsoft's admin consent link, and checking
what comes back.

    parsed = parse_tenant("contoso.onmicrosoft.com")          # TenantInput, or raises TenantInputError
    url = admin_consent_url(login_url, client_id, parsed.value, redirect_uri, state)
    ...Microsoft sends the browser back with admin_consent=True&tenant=...&state=... (or error=...)...
    verified = await verify_consent(tokens, returned_tenant, asked=parsed)   # raises ConsentRefused

The `tenant` Microsoft returns can be forged by whoever crafts the redirect, so it is never trusted alone:
`verify_consent` gets a client-credentials token for it and checks the token's `tid` (and, when the admin
typed a domain, that the domain belongs to the same tenant) and that its `roles` hold our permissions.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx

from graph.permissions import PERMISSION_NAMES
from graph.tokens import GRAPH_SCOPE, AppToken, TokenError, TokenSource

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
RESERVED_TENANTS = frozenset({"common", "organizations", "consumers"})


class TenantInputError(ValueError):
    """What the admin typed is not a tenant ID nor a domain; the message says what to enter instead."""


@dataclass(frozen=True)
class TenantInput:
    value: str  # a lower-case GUID or domain name
    is_guid: bool


def parse_tenant(text: str) -> TenantInput:
    """A Directory (tenant) ID or one of the tenant's verified domains, as typed into the Connect form."""
    value = (text or "").strip()
    if not value:
        raise TenantInputError("Enter your Tenant ID. You find it in the Microsoft Entra admin center under "
                               "Entra ID > Overview > Tenant ID.")
    try:
        return TenantInput(str(uuid.UUID(value)), True) if _guid_shaped(value) else _domain(value)
    except ValueError as err:
        if isinstance(err, TenantInputError):
            raise
        raise TenantInputError(f"“{_short(value)}” is not a valid Tenant ID. A Tenant ID looks like "
                               "00000000-0000-0000-0000-000000000000 (32 hexadecimal digits in five groups); you "
                               "can also enter a verified domain such as contoso.onmicrosoft.com.") from None


def _guid_shaped(value: str) -> bool:
    return bool(re.fullmatch(r"[{(]?[0-9A-Za-z-]{30,40}[})]?", value)) and value.count("-") >= 3


def _domain(value: str) -> TenantInput:
    lowered = value.lower()
    if "://" in lowered or lowered.startswith("www."):
        raise TenantInputError("That looks like a web address. Enter only the Tenant ID, or a verified domain "
                               "such as contoso.onmicrosoft.com (without https:// or a path).")
    if "@" in lowered:
        raise TenantInputError(f"That looks like an email address. Enter the part after the @ "
                               f"(“{_short(lowered.rsplit('@', 1)[-1])}”) or the Tenant ID.")
    if lowered in RESERVED_TENANTS:
        raise TenantInputError(f"“{lowered}” is not a tenant of its own. Enter your organisation's Tenant ID or "
                               "one of its verified domains.")
    name = lowered.rstrip(".")
    labels = name.split(".")
    if (len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels)
            or not _TLD.match(labels[-1])):
        raise TenantInputError(f"“{_short(value)}” is neither a Tenant ID nor a domain name. Enter the Tenant ID "
                               "(like 00000000-0000-0000-0000-000000000000) or a verified domain such as "
                               "contoso.onmicrosoft.com or contoso.com.")
    return TenantInput(name, False)


def _short(value: str, limit: int = 60) -> str:
    printable = "".join(c for c in value if c.isprintable())
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def admin_consent_url(login_url: str, client_id: str, tenant: str, redirect_uri: str, state: str) -> str:
    """Microsoft's admin consent page for our app in `tenant` (a GUID or a verified domain)."""
    query = urlencode({"client_id": client_id, "scope": GRAPH_SCOPE, "redirect_uri": redirect_uri,
                       "state": state})
    return f"{login_url.rstrip('/')}/{quote(tenant, safe='')}/v2.0/adminconsent?{query}"


# --- what came back -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentProblem:
    """Microsoft's error in plain words: what happened, and what to do about it."""

    code: str  # the OAuth error, and the AADSTS number when there is one
    title: str
    explanation: str
    what_to_do: str


_AADSTS = re.compile(r"AADSTS(\d+)")


def describe_consent_error(error: str, description: str) -> ConsentProblem:
    """Turn `error`/`error_description` from the consent redirect into sentences an admin can act on."""
    match = _AADSTS.search(description or "")
    aadsts = match.group(1) if match else ""
    code = f"{error} (AADSTS{aadsts})" if aadsts else error
    if aadsts == "65004" or (error == "access_denied" and "declined" in (description or "").lower()):
        return ConsentProblem(code, "The permissions were declined",
                              "An administrator declined the permissions Watchword asked for, so Microsoft "
                              "Entra did not connect your tenant. Nothing was granted.",
                              "Choose Connect again and, on Microsoft's page, review the permissions and "
                              "choose Accept.")
    if error == "consent_required" or aadsts in ("65001", "90094", "90099"):
        return ConsentProblem(code, "An administrator must approve Watchword",
                              "The account that signed in at Microsoft may not grant these permissions for the "
                              "whole organisation.",
                              "Sign in at Microsoft with a Global Administrator (or Privileged Role "
                              "Administrator) account and accept the permissions.")
    if error == "invalid_tenant" or aadsts in ("90002", "900023"):
        return ConsentProblem(code, "Microsoft does not know that tenant",
                              "The Tenant ID or domain you entered does not name a Microsoft Entra tenant.",
                              "Copy the Tenant ID from the Microsoft Entra admin center (Entra ID > Overview) "
                              "and connect again.")
    if error == "access_denied":
        return ConsentProblem(code, "Microsoft refused the request",
                              "Microsoft Entra did not grant the permissions.",
                              "Connect again with a Global Administrator account; if it keeps failing, check the "
                              "tenant's consent settings (Enterprise applications > Consent and permissions).")
    if error in ("invalid_request", "invalid_client", "unauthorized_client") or aadsts in ("50011", "700016"):
        return ConsentProblem(code, "Watchword's app registration was refused",
                              "Microsoft rejected the request itself (the app or its redirect address), before "
                              "anyone could approve it.",
                              "Ask whoever runs Watchword to check its app registration and WATCHWORD_PUBLIC_URL; "
                              "the details below help them.")
    return ConsentProblem(code or "unknown_error", "The connection did not complete",
                          "Microsoft returned an error instead of the consent.",
                          "Try Connect again. If it fails again, the details below say what Microsoft reported.")


class ConsentRefused(Exception):
    """The consent that came back does not hold up; `reason` is a plain sentence safe to show and audit."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class VerifiedConsent:
    tenant_id: str
    granted: frozenset[str]  # the application permissions the fresh token carries
    missing: tuple[str, ...]  # ours that it does not


async def verify_consent(tokens: TokenSource, returned_tenant: str, asked: TenantInput | None) -> VerifiedConsent:
    """Check the tenant Microsoft named, by asking Microsoft for a token in it. Raises ConsentRefused."""
    try:
        tenant_id = str(uuid.UUID(returned_tenant or ""))
    except ValueError:
        raise ConsentRefused("bad_tenant", "Microsoft's answer did not name a tenant ID.") from None
    if asked is not None and asked.is_guid and asked.value != tenant_id:
        raise ConsentRefused("tenant_mismatch", f"Consent came back for tenant {tenant_id}, not for the tenant "
                             f"{asked.value} you asked to connect.")
    token = await _token(tokens, tenant_id)
    if token.tenant_id.lower() != tenant_id:
        raise ConsentRefused("tenant_mismatch", f"Microsoft issued the token for tenant {token.tenant_id or '?'}, "
                             f"not for {tenant_id}, so the answer that named {tenant_id} was not genuine.")
    if asked is not None and not asked.is_guid:
        by_domain = await _token(tokens, asked.value)
        if by_domain.tenant_id.lower() != tenant_id:
            raise ConsentRefused("tenant_mismatch", f"The domain {asked.value} belongs to another tenant "
                                 f"({by_domain.tenant_id or '?'}) than the one that consented ({tenant_id}).")
    granted = frozenset(token.roles)
    if not granted & PERMISSION_NAMES:
        raise ConsentRefused("no_permissions", "The tenant's token carries none of Watchword's permissions: "
                             "consent was not granted.")
    missing = tuple(sorted(PERMISSION_NAMES - granted))
    return VerifiedConsent(tenant_id=tenant_id, granted=granted, missing=missing)


async def _token(tokens: TokenSource, tenant: str) -> AppToken:
    try:
        return await tokens.token(tenant, fresh=True)
    except TokenError as err:
        raise ConsentRefused(f"no_token:{err.code}", f"Microsoft would not issue Watchword a token for {tenant} "
                             f"({err.code}), so the consent cannot be confirmed.") from None


class DomainNotFound(Exception):
    """No Microsoft Entra tenant has this domain (Microsoft's AADSTS90002)."""


class DomainLookupFailed(Exception):
    """Microsoft's identity platform could not be asked (network, timeout, an answer we cannot read)."""


DISCOVERY_TIMEOUT_S = 10.0
_ISSUER_TENANT = re.compile(r"/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/", re.IGNORECASE)


async def resolve_domain(http: httpx.AsyncClient, login_url: str, domain: str) -> str:
    """The tenant id behind a verified domain, from the tenant's OpenID discovery document, asked before the admin
    is sent to Microsoft: an unknown domain would otherwise end on Microsoft's "AADSTS90002 Tenant not found" page
    with no way back. Raises DomainNotFound or DomainLookupFailed."""
    url = f"{login_url.rstrip('/')}/{quote(domain, safe='')}/v2.0/.well-known/openid-configuration"
    try:
        response = await http.get(url, headers={"Accept": "application/json"}, timeout=DISCOVERY_TIMEOUT_S)
        body = response.json()
    except (httpx.HTTPError, ValueError) as err:
        raise DomainLookupFailed(type(err).__name__) from None
    if not isinstance(body, dict):
        raise DomainLookupFailed("not a discovery document")
    if response.status_code == 400 and (body.get("error") == "invalid_tenant"
                                        or "AADSTS90002" in str(body.get("error_description", ""))):
        raise DomainNotFound(domain)
    found = _ISSUER_TENANT.search(str(body.get("issuer", ""))) if response.status_code == 200 else None
    if found is None:
        raise DomainLookupFailed(f"HTTP {response.status_code}")
    return found.group(1).lower()


async def organization_name(http: httpx.AsyncClient, tokens: TokenSource, graph_url: str, tenant_id: str
                            ) -> str | None:
    """The tenant's display name (GET /organization), or None when it cannot be read."""
    url = graph_url.rstrip("/") + "/organization?$select=id,displayName"
    try:
        token = await tokens.token(tenant_id)
        response = await http.get(url, headers={"Authorization": f"Bearer {token.access_token}",
                                                "Accept": "application/json"})
        if response.status_code != 200:
            return None
        values = response.json().get("value") or []
    except (TokenError, httpx.HTTPError, ValueError, AttributeError):
        return None
    name = values[0].get("displayName") if values and isinstance(values[0], dict) else None
    return str(name) if name else None
