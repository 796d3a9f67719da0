"""Policy: how a caller is verified, who the helpdesk is, whether people may reset themselves, whom Watchword
protects. Every change is audited ("policy.change") with the changed fields' values before and after.

    GET  /admin/policy     the form, with the tenant's saved policy (or the defaults)
    POST /admin/policy     save it (or show the form again, as typed, with what to fix)
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from admin.context import (
    DIRECTORY,
    SETTINGS,
    STORE,
    audit,
    connected_tenant,
    current_admin,
    flash,
    render,
    require_admin,
)
from admin.policy_form import (
    CHECKBOXES,
    MANAGER_MODES,
    NIST_BITS,
    NUMBERS,
    SOURCE_LABELS,
    SOURCE_ORDER,
    PolicyForm,
    audit_view,
    changed_fields,
    form_values,
    parse_policy_form,
    warnings_for,
    ways_to_pass,
)
from graph.directory import DirectoryError
from store import TenantAccess
from verification.policy import Policy

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/admin/policy")
@require_admin
async def policy_page(request: web.Request) -> web.Response:
    tenant = await connected_tenant(request)
    if tenant is None:
        return render(request, "policy.html", active="policy", tenant=None)
    stored = await request.app[STORE].policies.get_stored(tenant.tenant_id)
    policy, access = (stored.policy, stored.access) if stored else (Policy(), TenantAccess())
    names, lookup_problem = await _group_names(request, tenant.tenant_id, access)
    return render(request, "policy.html", active="policy",
                  helpdesk_in_force=await _helpdesk_in_force(request, tenant.tenant_id, access),
                  **_page(tenant, form_values(policy, access), {}, warnings_for(policy), names, lookup_problem,
                          stored))


@routes.post("/admin/policy")
@require_admin
async def save_policy(request: web.Request) -> web.StreamResponse:
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPSeeOther("/admin/policy")
    store = request.app[STORE]
    stored = await store.policies.get_stored(tenant.tenant_id)
    current, current_access = (stored.policy, stored.access) if stored else (Policy(), TenantAccess())
    posted = await request.post()
    form = parse_policy_form({k: v for k, v in posted.items() if isinstance(v, str)}, current,
                             [str(v) for v in posted.getall("sources", [])])
    names, lookup_problem = {}, None
    if form.ok:
        names, lookup_problem = await _check_groups(request, tenant.tenant_id, form)
    if not form.ok:
        await audit(request, "policy.change", "refused", tenant_id=tenant.tenant_id,
                    details={"invalid_fields": sorted(form.errors)})
        return render(request, "policy.html", status=400, active="policy",
                      helpdesk_in_force=await _helpdesk_in_force(request, tenant.tenant_id, current_access),
                      **_page(tenant, form.values, form.errors, form.warnings, names, lookup_problem, stored))
    assert form.policy is not None and form.access is not None
    before_view = audit_view(current, current_access)
    after_view = audit_view(form.policy, form.access)
    before, after = changed_fields(before_view, after_view)
    if not after and stored is not None:
        flash(request, "No changes to save.")
        raise web.HTTPSeeOther("/admin/policy")
    await store.policies.save(tenant.tenant_id, form.policy, current_admin(request).username, form.access)
    await audit(request, "policy.change", "ok", tenant_id=tenant.tenant_id,
                details={"before": before, "after": after, **({} if stored else {"first_save": True})})
    flash(request, "Policy saved." + (" Group scope changes apply at the next sync." if
                                      _scope_changed(before) else ""))
    # The form's warnings show on the page itself (they are about the saved policy).
    if lookup_problem:
        flash(request, "Warning: " + lookup_problem)
    raise web.HTTPSeeOther("/admin/policy")


# --- helpers ---------------------------------------------------------------------------------------------
def _page(tenant: Any, values: dict[str, Any], errors: dict[str, str], warnings: list[str],
          names: dict[str, str | None], lookup_problem: str | None, stored: Any) -> dict[str, Any]:
    return {"tenant": tenant, "values": values, "errors": errors, "warnings": warnings, "group_names": names,
            "lookup_problem": lookup_problem, "stored": stored, "numbers": {f.name: f for f in NUMBERS},
            "sources": [(s.value, SOURCE_LABELS[s]) for s in SOURCE_ORDER], "checkboxes": CHECKBOXES,
            "nist_bits": int(NIST_BITS), "manager_modes": [(m.value, label) for m, label in MANAGER_MODES.items()],
            "ways": ways_to_pass(stored.policy if stored else Policy())}


def _scope_changed(before: dict[str, Any]) -> bool:
    return bool({"include_group_ids", "exclude_group_ids"} & set(before))


async def _helpdesk_in_force(request: web.Request, tenant_id: str, access: TenantAccess) -> dict[str, Any] | None:
    """The helpdesk group the bot uses when the policy names none: Watchword's configured one (in demo mode, the
    dev tenant's "Helpdesk Agents"), with its name, so an empty field does not read as "nobody"."""
    configured = request.app[SETTINGS].helpdesk_group_id
    if access.helpdesk_group_id or not configured:
        return None
    try:
        name = (await request.app[DIRECTORY].group_names(tenant_id, [configured])).get(configured)
    except DirectoryError as err:
        log.warning("policy page: the configured helpdesk group's name is unavailable: %s", err)
        name = None
    return {"id": configured, "name": name}


async def _group_names(request: web.Request, tenant_id: str,
                       access: TenantAccess) -> tuple[dict[str, str | None], str | None]:
    """Names of the groups the settings name, for display; (names, a problem to show if Graph could not say)."""
    ids = [g for g in (access.helpdesk_group_id, *access.include_group_ids, *access.exclude_group_ids) if g]
    if not ids:
        return {}, None
    try:
        return dict(await request.app[DIRECTORY].group_names(tenant_id, ids)), None
    except DirectoryError as err:
        log.warning("policy page: group names unavailable: %s", err)
        return {}, f"Group names could not be read ({err})."


async def _check_groups(request: web.Request, tenant_id: str,
                        form: PolicyForm) -> tuple[dict[str, str | None], str | None]:
    """Refuse groups the directory does not have; when Graph cannot say, save anyway and say so."""
    assert form.access is not None
    names, problem = await _group_names(request, tenant_id, form.access)
    if problem:
        return names, f"Could not check that the groups exist: {problem}"
    fields = {"helpdesk_group_id": [form.access.helpdesk_group_id] if form.access.helpdesk_group_id else [],
              "include_group_ids": form.access.include_group_ids, "exclude_group_ids": form.access.exclude_group_ids}
    for name, ids in fields.items():
        missing = [g for g in ids if names.get(g, "") is None]
        if missing:
            form.errors[name] = f"No group with Object ID {', '.join(missing)} in your directory."
    if form.errors:
        form.policy = form.access = None
    return names, None
