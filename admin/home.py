"""The console's home: the last 30 days at a glance, as small server-rendered charts with their numbers as text.

    GET /admin, /admin/    verifications by outcome and per day, resets, lockouts, the median time to verify, and
                           the Graph sources verifications had to do without (a sign of a missing permission)
"""

from __future__ import annotations

from aiohttp import web

from admin.charts import bars, columns, duration_words
from admin.context import STORE, connected_tenant, render, require_admin
from verification.context import Source
from verification.session import Outcome

routes = web.RouteTableDef()

DAYS = 30
OUTCOME_LABELS = {
    Outcome.VERIFIED.value: "Verified", Outcome.NOT_VERIFIED.value: "Not verified",
    Outcome.NOT_ENOUGH_QUESTIONS.value: "Not enough to ask", Outcome.TIMED_OUT.value: "Timed out",
    Outcome.LOCKED_OUT.value: "Locked out", Outcome.BLOCKED_BY_RISK.value: "Blocked: risky sign-ins",
    Outcome.PRIVILEGED.value: "Refused: administrator", Outcome.CANCELLED.value: "Cancelled",
    Outcome.IN_PROGRESS.value: "Still open",
}
SOURCE_NAMES = {
    Source.MEETINGS.value: "Meetings", Source.GROUPS.value: "Groups", Source.HIERARCHY.value: "Organisation chart",
    Source.CHATS.value: "Teams chats", Source.CONTACTS.value: "Outlook contacts", Source.MAIL.value: "Mail",
    Source.ROLES.value: "Directory roles", Source.SIGN_INS.value: "Sign-in logs",
}


@routes.get("/admin")
@routes.get("/admin/")
@require_admin
async def home(request: web.Request) -> web.Response:
    tenant = await connected_tenant(request)
    if tenant is None:
        raise web.HTTPFound("/admin/settings/integrations")
    glance = await request.app[STORE].stats.glance(tenant.tenant_id, DAYS)
    return render(
        request, "home.html", active="home", tenant=tenant, glance=glance, days=DAYS,
        outcome_chart=bars(glance.outcomes, OUTCOME_LABELS),
        daily=columns(glance.days, glance.verifications_per_day),
        resets=columns(glance.days, glance.resets_per_day),
        lockouts=columns(glance.days, glance.lockouts_per_day),
        sources_chart=bars(glance.unavailable_sources, SOURCE_NAMES),
        median=duration_words(glance.median_seconds_to_verify))
