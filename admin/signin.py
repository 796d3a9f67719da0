"""Signing in to and out of the console: OpenID Connect with the tenant's identity platform (graph.signin).

    GET  /admin/signin            the sign-in page ("Sign in with Microsoft")
    GET  /admin/signin/start      keeps msal's flow in the session, sends the browser to Microsoft
    GET  /admin/signin/callback   redeems the code, checks the id token, lets admins in (403 for others)
    POST /admin/signout           ends the session; the next page offers Microsoft's sign-out too
    GET  /admin/signed-out        that page
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from admin.access import decide, role_name
from admin.context import DIRECTORY, SESSION, SESSIONS, SETTINGS, SIGN_IN, STORE, audit, current_session, render
from admin.security import end_session, public_url
from admin.session import Admin
from graph.directory import DirectoryError
from graph.signin import SignInError

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CALLBACK_PATH = "/admin/signin/callback"
DEFAULT_NEXT = "/admin/settings/integrations"

_SIGN_IN_ERRORS = {
    "access_denied": "You cancelled the sign-in at Microsoft, or Microsoft refused it.",
    "state_mismatch": "This sign-in was not started in this browser, or it was already used.",
    "invalid_grant": "The sign-in took too long or was already used.",
    "invalid_id_token": "Microsoft's answer could not be verified.",
    "unreachable": "The Microsoft identity platform could not be reached.",
    "no_pending_sign_in": "This sign-in was not started in this browser, or your session expired meanwhile.",
}


def safe_next(value: str | None) -> str:
    """Only our own console paths: never an absolute or scheme-relative URL (open redirect)."""
    if not value or not value.startswith("/admin") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/admin/signin", "/admin/signout")):
        return DEFAULT_NEXT
    return value


async def sign_in_tenant(app: web.Application) -> str:
    """Where people sign in: the connected tenant, else the configured one, else `organizations`."""
    tenants = await app[STORE].tenants.list_tenants()
    if tenants:
        return tenants[0].tenant_id
    return app[SETTINGS].tenant_id or "organizations"


async def known_tenants(app: web.Application) -> frozenset[str]:
    tenants = {t.tenant_id.lower() for t in await app[STORE].tenants.list_tenants()}
    configured = app[SETTINGS].tenant_id
    return frozenset(tenants | ({configured.lower()} if configured else set()))


async def who_may_sign_in(app: web.Application) -> list[str]:
    """Who may use the console, in words for the refusal page: the admin group (by name when the directory
    says it) and the directory roles, in the tenant Watchword serves."""
    settings, who = app[SETTINGS], []
    if settings.admin_group_id:
        name = None
        directory, tenant = app.get(DIRECTORY), await sign_in_tenant(app)
        if directory is not None and tenant != "organizations":
            try:
                name = (await directory.group_names(tenant, [settings.admin_group_id])).get(settings.admin_group_id)
            except DirectoryError:  # the page still says who may enter, by id
                log.info("refusal page: the admin group's name could not be read")
        who.append(f"Members of the group “{name}” ({settings.admin_group_id})" if name
                   else f"Members of the Entra group {settings.admin_group_id}")
    who += [f"{role_name(r)}s of the organisation Watchword serves" for r in settings.admin_role_ids]
    return who


@routes.get("/admin/signin")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    nxt = safe_next(request.query.get("next"))
    if session.admin is not None:
        raise web.HTTPFound(nxt)
    return render(request, "signin.html", next=nxt)


@routes.get("/admin/signin/start")
async def start(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    tenant = await sign_in_tenant(request.app)
    try:
        begun = await request.app[SIGN_IN].begin(tenant, public_url(request, CALLBACK_PATH))
    except SignInError as err:
        log.warning("console sign-in could not start: %s", err)
        return render(request, "error.html", status=502, title="Microsoft could not be reached",
                      message=f"{_SIGN_IN_ERRORS['unreachable']} Try again in a minute.")
    session.data["signin"] = {"flow": begun.flow, "next": safe_next(request.query.get("next"))}
    session.changed = True
    raise web.HTTPFound(begun.auth_uri)


@routes.get(CALLBACK_PATH)
async def callback(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    pending = session.data.pop("signin", None)
    session.changed = True
    try:
        if not pending:
            raise SignInError("no_pending_sign_in", "no sign-in was started in this session")
        person = await request.app[SIGN_IN].finish(pending["flow"], dict(request.query))
    except SignInError as err:
        log.info("console sign-in failed: %s", err.code)
        await audit(request, "console.sign_in", "failed", actor="anonymous",
                    details={"error": err.code[:64], "where": "identity platform"})
        return render(request, "signin.html", status=400, next=DEFAULT_NEXT,
                      error=_SIGN_IN_ERRORS.get(err.code, "Microsoft did not complete the sign-in."),
                      error_code=err.code, error_detail=err.description)
    decision = await decide(person, admin_group_id=request.app[SETTINGS].admin_group_id,
                            admin_role_ids=request.app[SETTINGS].admin_role_ids,
                            known_tenants=await known_tenants(request.app), directory=request.app.get(DIRECTORY))
    details = {"name": person.name[:128], "via": decision.via} if decision.allowed else {
        "name": person.name[:128], "reason": str(decision.refusal)}
    await audit(request, "console.sign_in", "allowed" if decision.allowed else "refused",
                actor=person.username[:256], subject=person.oid, tenant_id=person.tenant_id, details=details)
    if not decision.allowed:
        log.info("console sign-in refused for %s: %s", person.oid, decision.refusal)
        return render(request, "forbidden.html", status=403, person=person, message=decision.message,
                      who=await who_may_sign_in(request.app))
    codec = request.app[SESSIONS]
    now = codec.clock()
    # A new session id and CSRF token for the signed-in session (no fixation); only pending messages carry over.
    request[SESSION] = session.renew(now, Admin(oid=person.oid, tenant_id=person.tenant_id, name=person.name,
                                                username=person.username, via=decision.via or "", signed_in_at=now))
    raise web.HTTPFound(safe_next(pending.get("next")))


@routes.post("/admin/signout")
async def sign_out(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    admin = session.admin
    if admin is not None:
        await audit(request, "console.sign_out", "ok", subject=admin.oid, tenant_id=admin.tenant_id)
    await end_session(request, session)
    raise web.HTTPSeeOther("/admin/signed-out")


@routes.get("/admin/signed-out")
async def signed_out(request: web.Request) -> web.StreamResponse:
    tenant = await sign_in_tenant(request.app)
    microsoft = request.app[SIGN_IN].logout_url(tenant, public_url(request, "/admin/signed-out?microsoft=1"))
    return render(request, "signed_out.html", microsoft_logout=microsoft,
                  from_microsoft=request.query.get("microsoft") == "1")
