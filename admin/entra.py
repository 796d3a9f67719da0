"""Settings > Integrations > Microsoft Entra: connecting the tenant (admin consent), its health, disconnecting.

    GET  /admin/settings/integrations   the integrations, with Microsoft Entra's state
    GET  /admin/entra                   the connection: permissions granted or missing, the reset role, last check
    GET  /admin/entra/connect           "Enter your Tenant ID"
    POST /admin/entra/connect           check what was typed, keep a fresh `state`, then the "Open link" page
    GET  /admin/entra/consent           that page (the link to Microsoft's admin consent)
    GET  /admin/entra/callback          Microsoft's answer: checked (state, then a token in that tenant), recorded
    POST /admin/entra/check             "Check again"
    GET  /admin/entra/disconnect        "Are you sure?"
    POST /admin/entra/disconnect        disconnect

The tenant Microsoft names in the callback is never trusted alone (graph.consent.verify_consent).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from admin.context import (
    DIRECTORY,
    GRAPH_HTTP,
    SETTINGS,
    STORE,
    TOKENS,
    audit,
    connected_tenant,
    current_admin,
    current_session,
    flash,
    render,
    require_admin,
)
from admin.security import public_url
from graph.consent import (
    ConsentRefused,
    DomainLookupFailed,
    DomainNotFound,
    TenantInput,
    TenantInputError,
    admin_consent_url,
    describe_consent_error,
    organization_name,
    parse_tenant,
    resolve_domain,
    verify_consent,
)
from graph.directory import ConnectionCheck
from graph.permissions import PERMISSIONS, RESET_ROLES
from observability.correlation import correlated
from store.tenants import Tenant, TenantStatus

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CALLBACK_PATH = "/admin/entra/callback"
CONSENT_LIFETIME_S = 15 * 60
WAIT_PATH = "/admin/entra/consent/wait"
# Right after admin consent, tokens often lack the new roles for seconds to minutes (Microsoft's replication):
# the return page waits and asks again, each time twice as long after the last (at most CONSENT_RETRY_MAX_S).
CONSENT_PROPAGATION_S = 120.0
CONSENT_RETRY_MAX_S = 20
RESET_ROLE_HELP = ("In the Microsoft Entra admin center go to Entra ID › Roles & admins, open Helpdesk "
                   "Administrator (or User Administrator), choose Add assignments and select the Watchword "
                   "enterprise application. Then choose Check again.")


# --- pages -----------------------------------------------------------------------------------------------
@routes.get("/admin/settings/integrations")
@require_admin
async def integrations(request: web.Request) -> web.Response:
    return render(request, "integrations.html", active="integrations", tenant=await connected_tenant(request))


@routes.get("/admin/entra")
@require_admin
async def connection(request: web.Request) -> web.StreamResponse:
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPFound("/admin/settings/integrations")
    return render(request, "entra.html", active="integrations", **_connection_view(tenant))


@routes.get("/admin/entra/connect")
@require_admin
async def connect_form(request: web.Request) -> web.Response:
    return render(request, "entra_connect.html", active="integrations", value="", error=None,
                  tenant=await connected_tenant(request))


@routes.post("/admin/entra/connect")
@require_admin
async def connect_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    typed = str(form.get("tenant", ""))[:300]
    try:
        parsed = parse_tenant(typed)
    except TenantInputError as err:
        return render(request, "entra_connect.html", status=400, active="integrations", value=typed,
                      error=str(err), tenant=await connected_tenant(request))
    if not parsed.is_guid:
        problem = await _unknown_domain(request, parsed.value)
        if problem is not None:
            return render(request, "entra_connect.html", status=400, active="integrations", value=typed,
                          error=problem, tenant=await connected_tenant(request))
    session = current_session(request)
    session.data["consent"] = {"state": secrets.token_urlsafe(24), "tenant": parsed.value,
                               "is_guid": parsed.is_guid, "expires_at": time.time() + CONSENT_LIFETIME_S}
    session.changed = True
    await audit(request, "entra.consent_started", "ok", subject=parsed.value,
                tenant_id=parsed.value if parsed.is_guid else None)
    raise web.HTTPSeeOther("/admin/entra/consent")


async def _unknown_domain(request: web.Request, domain: str) -> str | None:
    """Why this domain cannot be connected (said on our page, not Microsoft's), or None when a tenant has it."""
    settings = request.app[SETTINGS]
    try:
        tenant_id = await resolve_domain(request.app[GRAPH_HTTP], settings.login_url, domain)
    except DomainNotFound:
        await audit(request, "entra.consent_started", "refused", subject=domain, details={"reason": "unknown_domain"})
        return (f"No Microsoft Entra tenant has the domain “{domain}”. Check the spelling, or enter your Tenant ID "
                "(Entra ID › Overview › Tenant ID); the domain must be one of your tenant's verified domains.")
    except DomainLookupFailed as err:
        log.warning("could not look up the domain %s at the identity platform: %s", domain, err)
        return ("Microsoft's sign-in service could not be reached to look this domain up. Try again in a minute, "
                "or enter your Tenant ID instead (Entra ID › Overview › Tenant ID).")
    log.info("domain %s belongs to tenant %s", domain, tenant_id)
    return None


@routes.get("/admin/entra/consent")
@require_admin
async def consent_link(request: web.Request) -> web.StreamResponse:
    pending = current_session(request).data.get("consent")
    if not pending or pending["expires_at"] < time.time():
        raise web.HTTPFound("/admin/entra/connect")
    settings = request.app[SETTINGS]
    url = admin_consent_url(settings.login_url, settings.client_id, pending["tenant"],
                            public_url(request, CALLBACK_PATH), pending["state"])
    return render(request, "entra_consent.html", active="integrations", tenant_input=pending["tenant"],
                  consent_url=url, minutes=CONSENT_LIFETIME_S // 60)


@routes.get(CALLBACK_PATH)
@require_admin
async def callback(request: web.Request) -> web.StreamResponse:
    query = request.query
    session = current_session(request)
    pending: dict[str, Any] | None = session.data.get("consent")
    state = query.get("state", "")
    if not pending or not state or not hmac.compare_digest(state.encode(), str(pending["state"]).encode()):
        # Kept as it was: a forged link must not cancel a genuine connection in progress.
        why = "state_missing" if not state else ("no_pending_connection" if not pending else "state_mismatch")
        await audit(request, "entra.connect", "refused", subject=query.get("tenant", "")[:64] or None,
                    details={"reason": why})
        return _failed(request, 400, "This answer does not belong to a connection started here",
                       "Microsoft's answer did not come with the code this browser was given when you chose "
                       "Connect, so Watchword ignored it. Nothing was connected.",
                       "Start again from Settings › Integrations › Microsoft Entra › Connect.", code=why)
    del session.data["consent"]  # single use, whatever happens next
    session.changed = True
    # ... and recorded as used: a copy of the cookie saved before this answer must not bring it back (issue 10).
    used_until = datetime.fromtimestamp(float(pending["expires_at"]), UTC) + timedelta(hours=1)
    if not await request.app[STORE].console_sessions.use_once("consent:" + state, used_until):
        await audit(request, "entra.connect", "refused", subject=pending["tenant"], details={"reason": "state_used"})
        return _failed(request, 400, "This answer was already used",
                       "Microsoft's answer to this connection was already received once, so Watchword ignored it "
                       "this time. Nothing changed.",
                       "Start again from Settings › Integrations › Microsoft Entra › Connect.", code="state_used")
    if pending["expires_at"] < time.time():
        await audit(request, "entra.connect", "refused", subject=pending["tenant"], details={"reason": "expired"})
        return _failed(request, 400, "The connection link expired",
                       f"More than {CONSENT_LIFETIME_S // 60} minutes passed between Connect and Microsoft's answer.",
                       "Start again: choose Connect and open the new link.", code="expired")
    if query.get("error"):
        problem = describe_consent_error(query["error"], query.get("error_description", ""))
        declined = "65004" in problem.code
        await audit(request, "entra.connect", "declined" if declined else "failed", subject=pending["tenant"],
                    details={"error": problem.code[:120]})
        return _failed(request, 400, problem.title, problem.explanation, problem.what_to_do, code=problem.code,
                       detail=query.get("error_description", "")[:500])
    if query.get("admin_consent", "").lower() != "true":
        await audit(request, "entra.connect", "failed", subject=pending["tenant"],
                    details={"reason": "no_admin_consent"})
        return _failed(request, 400, "Microsoft did not confirm the consent",
                       "The answer from Microsoft did not say that an administrator consented.",
                       "Start again: choose Connect and accept the permissions on Microsoft's page.",
                       code="no_admin_consent")
    asked = TenantInput(pending["tenant"], bool(pending["is_guid"]))
    return await _confirm(request, query.get("tenant", ""), asked, since=time.time())


@routes.get(WAIT_PATH)
@require_admin
async def consent_wait(request: web.Request) -> web.StreamResponse:
    """Ask Microsoft again whether the consent reached Watchword's tokens (the waiting page refreshes here)."""
    session = current_session(request)
    waiting: dict[str, Any] | None = session.data.get("consent_wait")
    if not waiting:
        raise web.HTTPSeeOther("/admin/entra")
    asked = TenantInput(waiting["asked"], bool(waiting["is_guid"]))
    return await _confirm(request, waiting["tenant"], asked, since=float(waiting["since"]),
                          attempt=int(waiting["attempt"]) + 1)


async def _confirm(request: web.Request, returned: str, asked: TenantInput, *, since: float,
                   attempt: int = 1) -> web.StreamResponse:
    """Check the consent with a fresh token and connect the tenant. Right after consent Microsoft often issues
    tokens without the new permissions for seconds to minutes: then a page that waits and asks again, with
    backoff, for up to CONSENT_PROPAGATION_S, before saying consent did not arrive."""
    admin = current_admin(request)
    session = current_session(request)
    try:
        verified = await verify_consent(request.app[TOKENS], returned, asked)
        if verified.tenant_id != admin.tenant_id.lower():
            raise ConsentRefused("other_tenant", f"You are signed in to the console from tenant {admin.tenant_id}, "
                                 f"but the consent came from tenant {verified.tenant_id}. Sign in with an account "
                                 "of the tenant you are connecting.")
    except ConsentRefused as err:
        waited = time.time() - since
        if err.code == "no_permissions" and waited < CONSENT_PROPAGATION_S:
            session.data["consent_wait"] = {"tenant": returned, "asked": asked.value, "is_guid": asked.is_guid,
                                            "since": since, "attempt": attempt}
            session.changed = True
            if attempt == 1:
                await audit(request, "entra.connect", "waiting", subject=returned[:64] or asked.value,
                            details={"reason": "permissions_not_in_token_yet"})
            retry_in = int(min(CONSENT_RETRY_MAX_S, 2 ** attempt, max(1, CONSENT_PROPAGATION_S - waited)))
            return render(request, "entra_waiting.html", active="integrations", tenant_id=returned[:64],
                          retry_in=retry_in, waited=int(waited), limit=int(CONSENT_PROPAGATION_S))
        session.data.pop("consent_wait", None)
        session.changed = True
        log.warning("admin consent refused: %s", err.code)
        await audit(request, "entra.connect", "refused", subject=returned[:64] or asked.value,
                    details={"reason": err.code[:64], "asked": asked.value, "waited_s": int(waited)})
        if err.code == "no_permissions":
            return _failed(request, 400, "Microsoft has not applied the consent", f"For {int(waited)} seconds after "
                           "the consent, the tokens Microsoft issues to Watchword for your tenant still carried none "
                           "of the permissions an administrator accepted.",
                           "Wait a few minutes and choose Connect again. If it still fails, check under Enterprise "
                           "applications › Watchword › Permissions that admin consent was granted.", code=err.code)
        return _failed(request, 400, "Watchword could not confirm the connection", err.reason,
                       "Start again from Settings › Integrations › Microsoft Entra › Connect. If it happens again, "
                       "tell whoever runs Watchword: the audit log has the details.", code=err.code)
    if session.data.pop("consent_wait", None) is not None:
        session.changed = True
    check = await request.app[DIRECTORY].check_connection(verified.tenant_id)
    name = await _tenant_name(request, verified.tenant_id, fallback=asked.value)
    tenant = await request.app[STORE].tenants.connect(
        verified.tenant_id, display_name=name, granted_permissions=_granted(check, verified.granted),
        sp_object_id=check.sp_object_id, sp_directory_roles=check.sp_roles, status=_status(check))
    await audit(request, "entra.connect", "ok", subject=verified.tenant_id, tenant_id=verified.tenant_id,
                details={"granted": len(tenant.granted_permissions), "missing": list(verified.missing),
                         "can_reset": check.can_reset, "status": str(tenant.status)})
    return render(request, "entra_installed.html", active="integrations", **_connection_view(tenant, check))


@routes.post("/admin/entra/check")
@require_admin
async def check_again(request: web.Request) -> web.StreamResponse:
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPSeeOther("/admin/settings/integrations")
    check = await request.app[DIRECTORY].check_connection(tenant.tenant_id)
    status = _status(check)
    updated = await request.app[STORE].tenants.record_check(
        tenant.tenant_id, status=status, granted_permissions=_granted(check, frozenset()),
        sp_directory_roles=check.sp_roles)
    await audit(request, "entra.check", "ok" if check.ok else "problems", subject=tenant.tenant_id,
                tenant_id=tenant.tenant_id,
                details={"status": str(updated.status), "missing": list(check.missing_permissions),
                         "can_reset": check.can_reset, "problems": list(check.problems)[:5]})
    flash(request, "Connection checked: everything works." if check.ok else
          "Connection checked: " + (" ".join(check.problems) or "something needs attention."))
    raise web.HTTPSeeOther("/admin/entra")


@routes.get("/admin/entra/disconnect")
@require_admin
async def disconnect_confirm(request: web.Request) -> web.StreamResponse:
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPFound("/admin/settings/integrations")
    return render(request, "entra_disconnect.html", active="integrations", tenant=tenant)


@routes.post("/admin/entra/disconnect")
@require_admin
async def disconnect(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPSeeOther("/admin/settings/integrations")
    if form.get("confirm") != tenant.tenant_id:
        flash(request, "Nothing was disconnected: confirm on this page first.")
        raise web.HTTPSeeOther("/admin/entra/disconnect")
    await request.app[STORE].tenants.disconnect(tenant.tenant_id)
    await audit(request, "entra.disconnect", "ok", subject=tenant.tenant_id, tenant_id=tenant.tenant_id,
                details={"display_name": tenant.display_name[:128]})
    flash(request, f"Disconnected {tenant.display_name}. Watchword deleted its copy of the directory. To remove "
                   "the permissions too, delete the Watchword enterprise application in Microsoft Entra.")
    raise web.HTTPSeeOther("/admin/settings/integrations")


# --- the configured tenant (WATCHWORD_TENANT_ID, demo mode) -------------------------------------------
async def connect_configured_tenant(app: web.Application) -> None:
    """Record the configured tenant as connected at start, once: only when the store has never seen it and a
    token can be had for it (an unconsented tenant is left for an admin to connect in the console)."""
    with correlated():  # at start, outside any request: its Graph requests, log lines and audit row share one id
        await _connect_configured_tenant(app, app[SETTINGS].tenant_id)


async def _connect_configured_tenant(app: web.Application, tenant_id: str) -> None:
    try:
        if await app[STORE].tenants.get(tenant_id) is not None:
            return
        check = await app[DIRECTORY].check_connection(tenant_id)
        if not check.token_ok or not check.tenant_matches:
            log.info("configured tenant %s is not consented yet (%s): connect it in the console", tenant_id,
                     check.token_error)
            return
        name = await organization_name(app[GRAPH_HTTP], app[TOKENS], app[SETTINGS].graph_url, tenant_id)
        await app[STORE].tenants.connect(tenant_id, display_name=name or tenant_id,
                                         granted_permissions=_granted(check, frozenset()),
                                         sp_object_id=check.sp_object_id, sp_directory_roles=check.sp_roles,
                                         status=_status(check))
        await app[STORE].audit.append(action="entra.connect", outcome="ok", actor="watchword (configuration)",
                                      subject=tenant_id, tenant_id=tenant_id,
                                      details={"source": "WATCHWORD_TENANT_ID", "status": str(_status(check))})
    except Exception:  # a background start-up task: report, never crash the app
        log.exception("could not record the configured tenant %s as connected", tenant_id)


# --- helpers ---------------------------------------------------------------------------------------------
def _status(check: ConnectionCheck) -> TenantStatus:
    if not check.token_ok:
        return TenantStatus.CONSENT_REVOKED
    return TenantStatus.CONNECTED if check.ok else TenantStatus.NEEDS_ATTENTION


def _granted(check: ConnectionCheck, from_token: frozenset[str]) -> list[str]:
    granted = {p.name for p in check.permissions if p.granted}
    return sorted(granted or from_token)


async def _tenant_name(request: web.Request, tenant_id: str, *, fallback: str) -> str:
    name = await organization_name(request.app[GRAPH_HTTP], request.app[TOKENS], request.app[SETTINGS].graph_url,
                                   tenant_id)
    return name or fallback


def _connection_view(tenant: Tenant, check: ConnectionCheck | None = None) -> dict[str, Any]:
    granted = set(tenant.granted_permissions)
    rows = [{"name": p.name, "purpose": p.purpose, "granted": p.name in granted, "optional": p.optional}
            for p in PERMISSIONS]
    reset_roles = sorted(set(tenant.sp_directory_roles) & RESET_ROLES)
    return {
        "tenant": tenant, "permissions": rows, "missing": [r["name"] for r in rows
                                                        if not r["granted"] and not r["optional"]],
        "sp_roles": list(tenant.sp_directory_roles), "reset_roles": reset_roles, "can_reset": bool(reset_roles),
        "reset_role_help": RESET_ROLE_HELP, "problems": list(check.problems) if check else [],
    }


def _failed(request: web.Request, status: int, title: str, explanation: str, what_to_do: str, *, code: str,
            detail: str = "") -> web.Response:
    return render(request, "entra_failed.html", status=status, active="integrations", title=title,
                  explanation=explanation, what_to_do=what_to_do, code=code, detail=detail)
