"""Messages and sign-ins are served through lazy views (only what a request filters, sorts and selects is worked
out): the answers are exactly those of the whole JSON of every item built first, as before, over many queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtenant.generate import generate_org
from devtenant.graph_api import audit_logs, mailbox
from tests.devtenant.graph_support import ALL_READ_ROLES, call, make_state

ANCHOR = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
WEEK_AGO = (ANCHOR - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
QUERIES = [
    # Watchword's own (graph/context_loader.py), then Graph's other options over messages
    {"$select": "from,receivedDateTime", "$filter": f"receivedDateTime ge {WEEK_AGO}",
     "$orderby": "receivedDateTime desc", "$top": "1000"},
    {"$select": "from,receivedDateTime,subject", "$filter": f"receivedDateTime ge {WEEK_AGO}",
     "$orderby": "receivedDateTime desc", "$top": "7"},
    {},
    {"$top": "3", "$skip": "2"},
    {"$select": "subject,isRead,importance"},
    {"$orderby": "subject", "$top": "50"},
    {"$filter": "isRead eq false", "$top": "20"},
    {"$filter": "importance eq 'high' or hasAttachments eq true"},
    {"$filter": "startswith(subject,'Re')", "$select": "subject,sender"},
    {"$filter": "from/emailAddress/address eq 'nobody@example.com'"},
    {"$orderby": "from/emailAddress/name desc", "$top": "30", "$select": "from"},
    {"$filter": "receivedDateTime ge 2026-12-01T00:00:00Z and receivedDateTime lt 2026-12-05T00:00:00Z",
     "$orderby": "receivedDateTime"},
    {"$select": "nonsense"},
    {"$select": "body"},
    {"$count": "true", "$top": "2"},
    {"$filter": "inferenceClassification eq 'focused'", "$select": "id,webLink,conversationId,internetMessageId"},
    {"$filter": "toRecipients/any(r:r/emailAddress/address eq 'x@y.z')"},
]
WITH_BODY = [{"$search": '"meeting"'}, {"$select": "body,bodyPreview", "$top": "5"}, {}]


def _no_ids(body: object) -> object:
    """The answer less the per-answer request ids and date of an error's innerError."""
    if isinstance(body, dict):
        return {k: _no_ids(v) for k, v in body.items() if k != "innerError"}
    return body


@pytest.fixture(scope="module")
def state():  # a generated organisation: mailboxes of hundreds of messages, over weeks
    state = make_state(endpoint_latency_ms=())  # the sign-in logs' 1.5 s is not what these tests are about
    state.org = generate_org(3, 60, ANCHOR)
    return state


async def test_messages_answer_exactly_as_from_each_messages_whole_json(state, monkeypatch) -> None:
    owners = [u for u in state.org.users.values() if u.mail][:12]
    cases = [(u, q, roles) for u in owners
             for roles, queries in ((ALL_READ_ROLES, QUERIES), ([*ALL_READ_ROLES, "Mail.Read"], WITH_BODY))
             for q in queries]

    async def answers() -> list[tuple[int, object]]:
        out = []
        for user, query, roles in cases:
            resp = await call(state, "GET", f"/users/{user.id}/messages", query, roles=roles)
            out.append((resp.status, _no_ids(resp.body)))
        return out

    lazy = await answers()
    with monkeypatch.context() as m:  # as before: each message's whole JSON first, then $filter, $orderby, $select
        view = mailbox.MessageView
        m.setattr(mailbox, "MessageView", lambda msg, with_body: dict(view(msg, with_body)))
        eager = await answers()
    assert lazy == eager
    assert sum(len(body.get("value", [])) for _, body in lazy if isinstance(body, dict)) > 500  # not all empty
    assert {status for status, _ in lazy} == {200, 400, 403}


async def test_sign_ins_answer_exactly_as_from_each_sign_ins_whole_json(state, monkeypatch) -> None:
    monkeypatch.setattr(audit_logs, "check_reports_limit", lambda req: None)  # many reads: not the throttle's test
    month_ago = (ANCHOR - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = ("createdDateTime,ipAddress,location,deviceDetail,status,riskLevelDuringSignIn,riskState,isInteractive,"
              "appDisplayName")
    queries = [{"$top": "50"}, {"$filter": "appDisplayName eq 'Microsoft Teams'", "$top": "20"},
               {"$filter": "status/errorCode eq 50126"}]
    for user in list(state.org.users.values())[:10]:
        queries += [
            # Watchword's own (graph/context_loader.py), then other filters, orders and selections
            {"$filter": f"userId eq '{user.id}' and createdDateTime ge {month_ago}", "$select": fields, "$top": "1000"},
            {"$filter": f"userId eq '{user.id}'"},
            {"$filter": f"userPrincipalName eq '{user.user_principal_name}' and status/errorCode ne 0",
             "$orderby": "createdDateTime asc"},
            {"$filter": f"userId eq '{user.id}' and riskLevelDuringSignIn eq 'high'",
             "$select": "id,riskEventTypes,riskEventTypes_v2"},
            {"$filter": f"userId eq '{user.id}' and location/city eq 'London'",
             "$select": "location,correlationId,appId"},
            {"$filter": f"userId eq '{user.id}' and deviceDetail/isManaged eq true", "$top": "5"},
            {"$filter": f"userId eq '{user.id}'", "$select": "nonsense"},
        ]

    async def answers() -> list[tuple[int, object]]:
        out = []
        for query in queries:
            resp = await call(state, "GET", "/auditLogs/signIns", query)
            out.append((resp.status, _no_ids(resp.body)))
        return out

    lazy = await answers()
    with monkeypatch.context() as m:  # as before: each sign-in's whole JSON first, then $filter and $select
        view = audit_logs.SignInView
        m.setattr(audit_logs, "SignInView", lambda sign_in, user: dict(view(sign_in, user)))
        eager = await answers()
    assert lazy == eager
    assert sum(len(body.get("value", [])) for _, body in lazy if isinstance(body, dict)) > 300  # not all empty
    assert {status for status, _ in lazy} == {200, 400}
