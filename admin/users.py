"""Protected users: who Watchword protects, who it may never reset and why, and the sync from Entra.

    GET  /admin/users                  the list: search (name or UPN prefix), filter, paging; the sync's state
    POST /admin/users/sync             "Sync now" (runs in the background; progress below)
    POST /admin/users/exclude          exclude a person from protection, or include them again (audited)
    POST /admin/users/unlock           lift a person's lockout after failed verifications (audited)
    GET  /admin/users/sync/progress    the sync's progress as JSON (polled by /admin/static/sync-progress.js)

Without JavaScript, the page refreshes itself every few seconds while a sync runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from aiohttp import web

from admin import sync_wiring
from admin.context import STORE, audit, connected_tenant, current_admin, flash, render, require_admin
from admin.sync import SyncProgress, SyncStatus
from admin.sync_wiring import SYNC
from graph.directory import ResetRefusal
from store import AuditEvent, SyncState, UserFilter

routes = web.RouteTableDef()

PAGE_SIZE = 50
MAX_QUERY = 100
REASONS = {
    ResetRefusal.PRIVILEGED.value: ("Administrator", "Holds a privileged directory role: never reset through "
                                                     "the helpdesk."),
    ResetRefusal.ROLE_ASSIGNABLE_GROUP.value: ("Role-assignable group", "Member of a group that can hold directory "
                                                                        "roles: only privileged admins may reset."),
    ResetRefusal.FEDERATED.value: ("On-premises account", "Synced from on-premises Active Directory: reset the "
                                                          "password there."),
    ResetRefusal.GUEST.value: ("Guest", "A guest from another organisation: their own helpdesk resets it."),
    ResetRefusal.DISABLED.value: ("Disabled", "The account is disabled in Microsoft Entra: nobody to verify."),
}
FILTERS = {UserFilter.ALL: "Everyone", UserFilter.NOT_RESETTABLE: "Not resettable",
           UserFilter.OUT_OF_SCOPE: "Not protected (out of scope)"}


def setup(app: web.Application) -> None:
    """The section's resources: the sync service (and the directory reads the policy page shares)."""
    sync_wiring.setup(app)


# --- pages -----------------------------------------------------------------------------------------------
@routes.get("/admin/users")
@require_admin
async def users_page(request: web.Request) -> web.Response:
    tenant = await connected_tenant(request)
    if tenant is None:
        return render(request, "users.html", active="users", tenant=None)
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    show = _filter(request.query.get("show", ""))
    after, before = _cursor(request.query.get("after")), _cursor(request.query.get("before"))
    repo = request.app[STORE].protected_users
    # One more than a page tells whether another page follows.
    rows = await repo.search(tenant.tenant_id, query, show=show, limit=PAGE_SIZE + 1, after=after,
                             before=None if after else before)
    if before and not after:
        has_more_before, users = len(rows) > PAGE_SIZE, rows[-PAGE_SIZE:]
        has_more_after = True
    else:
        has_more_after, users = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        has_more_before = after is not None
    base = {"q": query, "show": show.value}
    view = await _sync_view(request, tenant.tenant_id)
    locked = await _locked_out(request, tenant.tenant_id)
    here = request.path_qs if len(request.path_qs) <= 2000 else "/admin/users"
    return render(
        request, "users.html", active="users", tenant=tenant, users=users, query=query, show=show.value,
        filters=[(f.value, label) for f, label in FILTERS.items()], reasons=REASONS,
        matching=await repo.count_matching(tenant.tenant_id, query, show=show),
        total=await repo.count(tenant.tenant_id),
        next_url=_page_url(base, after=_encode(users[-1])) if users and has_more_after else None,
        prev_url=_page_url(base, before=_encode(users[0])) if users and has_more_before else None,
        here=here, locked=locked, never_synced=view["state"] is None or view["state"].completed_at is None, **view)


@routes.post("/admin/users/sync")
@require_admin
async def sync_now(request: web.Request) -> web.StreamResponse:
    tenant = await connected_tenant(request)
    if tenant is None:
        flash(request, "Connect Microsoft Entra first (Settings › Integrations).")
        raise web.HTTPSeeOther("/admin/users")
    service = request.app[SYNC]
    if service.running(tenant.tenant_id):
        flash(request, "A sync is already running; its progress is below.")
    else:
        service.start(tenant.tenant_id, started_by=current_admin(request).username)
        await audit(request, "directory.sync_requested", "ok", tenant_id=tenant.tenant_id)
        flash(request, "Sync started.")
    raise web.HTTPSeeOther("/admin/users#sync")


@routes.post("/admin/users/exclude")
@require_admin
async def exclude_or_include(request: web.Request) -> web.StreamResponse:
    """An admin's decision that a person is not protected (Watchword refuses to verify callers claiming to be
    them), or is again. The sync never changes it. Audited with who decided."""
    tenant = await connected_tenant(request)
    form = await request.post()
    back = _back(str(form.get("back", "")))
    if tenant is None:
        raise web.HTTPSeeOther("/admin/users")
    user_id, exclude = str(form.get("user_id", ""))[:64], form.get("exclude") == "true"
    repo = request.app[STORE].protected_users
    try:
        user = await repo.get(tenant.tenant_id, user_id)
    except ValueError:  # not a GUID: nobody to change
        user = None
    if user is None or not await repo.set_excluded(tenant.tenant_id, user_id, exclude):
        flash(request, "That person is not in the list any more: sync again and retry.")
        raise web.HTTPSeeOther(back)
    await audit(request, "protected_user.excluded" if exclude else "protected_user.included", "ok",
                subject=user.user_id, tenant_id=tenant.tenant_id, details={"name": user.display_name[:128]})
    flash(request, f"{user.display_name} is excluded: Watchword will not verify callers who say they are them."
          if exclude else f"{user.display_name} is included again.")
    raise web.HTTPSeeOther(back)


@routes.post("/admin/users/unlock")
@require_admin
async def lift_lockout(request: web.Request) -> web.StreamResponse:
    """An admin lifts a lockout (the person failed too many verifications, or someone tried to lock them out):
    the next verification of them starts afresh. Audited with who decided, in the same transaction."""
    tenant = await connected_tenant(request)
    form = await request.post()
    back = _back(str(form.get("back", "")))
    if tenant is None:
        raise web.HTTPSeeOther("/admin/users")
    user_id = str(form.get("user_id", ""))[:64]
    name = await _name(request, tenant.tenant_id, user_id)
    event = AuditEvent(action="lockout.lifted", outcome="ok", actor=current_admin(request).username[:256],
                       subject=user_id, tenant_id=tenant.tenant_id, details={"name": name[:128]}) \
        if _is_guid(user_id) else None
    if event is None or not await request.app[STORE].lockouts.unlock(tenant.tenant_id, user_id, audit=event):
        flash(request, "That person is not locked out (any more).")
        raise web.HTTPSeeOther(back)
    flash(request, f"{name}'s lockout is lifted: the next verification of them starts afresh.")
    raise web.HTTPSeeOther(back)


def _back(value: str) -> str:
    """Back to the list page the admin was on (its search and page), never anywhere else."""
    safe = value.startswith("/admin/users") and not value.startswith("//") and "\\" not in value
    return value if safe and len(value) <= 2000 else "/admin/users"


@routes.get("/admin/users/sync/progress")
@require_admin
async def sync_progress(request: web.Request) -> web.Response:
    tenant = await connected_tenant(request)
    if tenant is None:
        return web.json_response({"status": "idle"}, headers={"Cache-Control": "no-store"})
    view = await _sync_view(request, tenant.tenant_id)
    progress: SyncProgress | None = view["progress"]
    body: dict[str, Any] = progress.to_json() if progress is not None else {}
    body["status"] = view["sync_status"]
    body["summary"] = view["summary"]
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# --- helpers ---------------------------------------------------------------------------------------------
async def _locked_out(request: web.Request, tenant_id: str) -> list[dict[str, Any]]:
    """The people locked out now, with their names from the directory sync where it has them."""
    lockouts = await request.app[STORE].lockouts.active_lockouts(tenant_id)
    return [{"user_id": lockout.user_id, "name": await _name(request, tenant_id, lockout.user_id),
             "until": lockout.locked_until, "since": lockout.locked_at, "reason": lockout.reason}
            for lockout in lockouts]


async def _name(request: web.Request, tenant_id: str, user_id: str) -> str:
    user = await request.app[STORE].protected_users.get(tenant_id, user_id) if _is_guid(user_id) else None
    return user.display_name if user is not None else user_id


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _sync_view(request: web.Request, tenant_id: str) -> dict[str, Any]:
    """The sync as the page shows it: this process's run if any, else what the store says (a sync run by
    `python -m admin sync` or another instance shows as running elsewhere)."""
    store = request.app[STORE]
    progress = request.app[SYNC].progress(tenant_id)
    state = await store.protected_users.get_sync_state(tenant_id)
    lease = await store.sync_leases.get(tenant_id)
    if progress is not None and not progress.finished:
        status = "running"
    elif lease is not None:
        status = "running_elsewhere"
    elif progress is not None:
        status = progress.status.value
    else:
        status = "idle"
    return {"progress": progress, "state": state, "sync_status": status,
            "summary": _summary(status, progress, state)}


def _summary(status: str, p: SyncProgress | None, state: SyncState | None) -> str:
    if status == "running" and p is not None:
        if p.cycle == 0:
            return "Reading administrator roles and scope groups…"
        kind = "Reading everyone" if p.full else "Reading changes"
        of = f" of about {p.expected_users:,}" if p.expected_users and p.full else ""
        return f"{kind}: {p.users_seen:,}{of} users, {p.pages:,} pages, {p.elapsed_s:.0f} s."
    if status == "running_elsewhere":
        done = f" ({state.pages:,} pages, {state.users_upserted:,} users so far)" if state and state.in_progress else ""
        return f"A sync started elsewhere (the command line or another instance) is running{done}."
    if status == SyncStatus.FAILED.value and p is not None:
        return f"The last sync failed: {p.error}"
    if state is not None and state.completed_at is not None and not state.in_progress:
        return f"Last synced {state.completed_at:%Y-%m-%d %H:%M} UTC."
    if state is not None and state.in_progress:
        return (f"A sync stopped after {state.pages:,} pages ({state.users_upserted:,} users); "
                "Sync now continues where it stopped.")
    return "Not synced yet."


def _filter(value: str) -> UserFilter:
    try:
        return UserFilter(value)
    except ValueError:
        return UserFilter.ALL


def _encode(user: Any) -> str:
    raw = json.dumps([user.display_name, user.user_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(value: str | None) -> tuple[str, str] | None:
    """A paging cursor from the URL; anything malformed is ignored (first page)."""
    if not value or len(value) > 2000:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        return None
    if isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded):
        return decoded[0], decoded[1]
    return None


def _page_url(base: dict[str, str], **cursor: str) -> str:
    from urllib.parse import urlencode

    params = {k: v for k, v in base.items() if v and not (k == "show" and v == UserFilter.ALL.value)}
    return "/admin/users?" + urlencode({**params, **cursor})
