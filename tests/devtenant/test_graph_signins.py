"""Sign-in logs through devtenant's Graph: fields, filters, permissions and the reports throttle."""

from __future__ import annotations

import pytest

from devtenant.graph_api.throttling import throttles
from tests.devtenant.graph_support import app_token, call, sdk_client, serve_graph
from tests.devtenant.graph_support import make_state as make_slow_state
from tests.devtenant.tiny_org import ADA, ALAN, KATHERINE

# msgraph's generated request builders (and kiota under them) warn about their own deprecated classes.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

READ = ["AuditLog.Read.All", "Directory.Read.All"]


def make_state():
    """devtenant without the reports API's injected latency (1.5 s a request, test_slow_endpoints.py's business):
    here it only made each of these tests wait seconds for nothing."""
    return make_slow_state(endpoint_latency_ms=())


async def test_sign_ins_filtered_by_user_and_date_come_newest_first_with_graphs_fields():
    resp = await call(make_state(), "GET", "/auditLogs/signIns",
                      {"$filter": f"userId eq '{KATHERINE}' and createdDateTime ge 2026-11-20T00:00:00Z"}, roles=READ)
    assert resp.status == 200
    items = resp.body["value"]
    assert len(items) == 8 + 5
    times = [s["createdDateTime"] for s in items]
    assert times == sorted(times, reverse=True)
    failed = items[0]
    assert failed["userId"] == KATHERINE and failed["userPrincipalName"] == "katherine.johnson@tiny.example"
    assert failed["status"]["errorCode"] == 50126
    assert failed["status"]["failureReason"] == "Invalid username or password."
    assert failed["location"]["city"] == "Lagos" and failed["location"]["countryOrRegion"] == "NG"
    assert failed["location"]["geoCoordinates"]["latitude"] == pytest.approx(6.5244)
    assert failed["deviceDetail"]["operatingSystem"] == "Linux" and failed["deviceDetail"]["isManaged"] is False
    assert failed["riskLevelDuringSignIn"] == "medium" and failed["riskState"] == "atRisk"
    assert failed["ipAddress"] == "203.0.113.9" and failed["clientAppUsed"] == "Browser"
    assert failed["isInteractive"] is True and failed["conditionalAccessStatus"] == "notApplied"
    assert "anomaly" not in str(failed)  # the generator's ground truth is never served
    ok = items[-1]
    assert ok["status"] == {"errorCode": 0, "failureReason": "Other.", "additionalDetails": None}


async def test_sign_ins_filtered_by_user_principal_name():
    resp = await call(make_state(), "GET", "/auditLogs/signIns",
                      {"$filter": "userPrincipalName eq 'Alan.Turing@tiny.example'"}, roles=READ)
    assert {s["userId"] for s in resp.body["value"]} == {ALAN} and len(resp.body["value"]) == 5


async def test_sign_ins_without_a_user_filter_merge_every_user_newest_first():
    resp = await call(make_state(), "GET", "/auditLogs/signIns", {"$top": "20"}, roles=READ)
    items = resp.body["value"]
    assert len(items) == 20 and "@odata.nextLink" in resp.body
    assert [s["userId"] for s in items[:8]] == [KATHERINE] * 8
    times = [s["createdDateTime"] for s in items]
    assert times == sorted(times, reverse=True)


async def test_sign_ins_select_narrows_the_fields():
    resp = await call(make_state(), "GET", "/auditLogs/signIns",
                      {"$filter": f"userId eq '{ADA}'", "$select": "createdDateTime,ipAddress,status"}, roles=READ)
    assert set(resp.body["value"][0]) == {"createdDateTime", "ipAddress", "status"}


@pytest.mark.parametrize("roles", [["AuditLog.Read.All"], ["Directory.Read.All"], ["User.Read.All"]])
async def test_sign_ins_need_both_audit_log_and_directory_read(roles):
    resp = await call(make_state(), "GET", "/auditLogs/signIns", {"$filter": f"userId eq '{ALAN}'"}, roles=roles)
    assert resp.status == 403
    assert resp.body["error"]["code"] == "Authentication_MSGraphPermissionMissing"


async def test_sixth_sign_in_query_in_ten_seconds_is_429_with_retry_after():
    state = make_state()
    clock = [1000.0]
    throttles(state).reports.clock = lambda: clock[0]
    query = {"$filter": f"userId eq '{ALAN}'"}
    for _ in range(5):
        assert (await call(state, "GET", "/auditLogs/signIns", query, roles=READ)).status == 200
        clock[0] += 1.0
    refused = await call(state, "GET", "/auditLogs/signIns", query, roles=READ)
    assert refused.status == 429
    assert refused.body["error"]["code"] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "5"  # the first request leaves the window at t=1010
    clock[0] = 1010.0
    assert (await call(state, "GET", "/auditLogs/signIns", query, roles=READ)).status == 200


async def test_reports_throttle_is_per_app():
    state = make_state()
    for _ in range(5):
        await call(state, "GET", "/auditLogs/signIns", roles=READ)
    assert (await call(state, "GET", "/auditLogs/signIns", roles=READ)).status == 429
    state.app.client_id = "another-app"  # another app registration in the same tenant
    assert (await call(state, "GET", "/auditLogs/signIns", roles=READ)).status == 200


async def test_sign_ins_order_oldest_first_on_request():
    resp = await call(make_state(), "GET", "/auditLogs/signIns",
                      {"$filter": f"userId eq '{ALAN}'", "$orderby": "createdDateTime asc"}, roles=READ)
    times = [s["createdDateTime"] for s in resp.body["value"]]
    assert times == sorted(times)


# --- contract: the product's SDK parses these answers ---------------------------------------------------
async def test_sdk_reads_sign_ins_filtered_by_user(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder
    from msgraph.generated.models.risk_level import RiskLevel
    from msgraph.generated.models.risk_state import RiskState

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=READ)
    query = SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(
        filter=f"userId eq '{KATHERINE}' and createdDateTime ge 2026-11-01T00:00:00Z", top=100)
    page = await client.audit_logs.sign_ins.get(RequestConfiguration(query_parameters=query))
    assert len(page.value) == 13
    newest = page.value[0]
    assert newest.user_id == KATHERINE and newest.ip_address == "203.0.113.9"
    assert newest.location.city == "Lagos" and newest.location.country_or_region == "NG"
    assert newest.location.geo_coordinates.latitude == pytest.approx(6.5244)
    assert newest.status.error_code == 50126
    assert newest.device_detail.operating_system == "Linux" and newest.device_detail.is_compliant is False
    assert newest.risk_level_during_sign_in is RiskLevel.Medium and newest.risk_state is RiskState.AtRisk
    assert newest.client_app_used == "Browser" and newest.is_interactive is True
    assert newest.created_date_time.tzinfo is not None


async def test_sdk_sees_the_sixth_sign_in_query_as_429_with_retry_after(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=READ)
    no_retry = RequestConfiguration(
        query_parameters=SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(top=1),
        options=[RetryHandlerOption(max_retries=0)])
    for _ in range(5):
        await client.audit_logs.sign_ins.get(no_retry)
    with pytest.raises(ODataError) as raised:
        await client.audit_logs.sign_ins.get(no_retry)
    assert raised.value.response_status_code == 429
    assert raised.value.error.code == "TooManyRequests"
    assert 1 <= int(raised.value.response_headers["retry-after"]) <= 10


async def test_batch_items_count_against_the_sign_in_throttle(aiohttp_client):
    state = make_state()
    base = await serve_graph(aiohttp_client, state)
    import aiohttp

    requests = [{"id": str(i), "method": "GET", "url": f"/auditLogs/signIns?$filter=userId eq '{ALAN}'"}
                for i in range(1, 7)]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/$batch", json={"requests": requests},
                                headers={"Authorization": f"Bearer {app_token(state, READ)}"}) as resp:
            assert resp.status == 200
            answers = (await resp.json())["responses"]
    statuses = sorted(a["status"] for a in answers)
    assert statuses == [200] * 5 + [429]
    throttled = next(a for a in answers if a["status"] == 429)
    assert {k.lower(): v for k, v in throttled["headers"].items()}["retry-after"]


@pytest.mark.parametrize("flt", [
    f"userId in ('{ALAN}','{ADA}')",  # signIn.userId: "Supports $filter (eq)", nothing else
    f"userId eq '{ALAN}' or userId eq '{ADA}'",  # `or`: documented for no signIn property
    f"not (userId eq '{ALAN}')",
    f"userId ne '{ALAN}'",
    "createdDateTime gt 2026-11-20T00:00:00Z",  # createdDateTime: eq, le, ge
    "startswith(userId,'a')",
    "isInteractive eq true",  # not filterable by the docs
])
async def test_sign_in_filters_microsoft_does_not_document_are_refused(flt: str):
    """One read for several people (`in`, `or`) is what a coalescing client would want; Microsoft documents only `eq`
    on userId, so the stand-in refuses it as unsupported instead of letting a client come to rely on it."""
    resp = await call(make_state(), "GET", "/auditLogs/signIns", {"$filter": flt}, roles=READ)
    assert resp.status == 400, flt
    assert resp.body["error"]["code"] == "Request_UnsupportedQuery"


@pytest.mark.parametrize("flt", [
    f"userId eq '{ALAN}' and createdDateTime ge 2026-11-20T00:00:00Z and createdDateTime le 2026-12-07T00:00:00Z",
    "startswith(userPrincipalName,'alan') and status/errorCode eq 0",
    "location/countryOrRegion eq 'GB' and startswith(appDisplayName,'Microsoft')",
    "riskLevelDuringSignIn eq 'high' and createdDateTime ge 2026-11-20T00:00:00Z",
])
async def test_sign_in_filters_microsoft_documents_are_served(flt: str):
    resp = await call(make_state(), "GET", "/auditLogs/signIns", {"$filter": flt}, roles=READ)
    assert resp.status == 200, resp.body
