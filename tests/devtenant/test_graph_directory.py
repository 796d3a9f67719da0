"""devtenant's Graph front door and directory endpoints obey Graph's rules (aiohttp test client)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest

from devtenant.graph_api import ROUTER, graph_app
from devtenant.graph_api.odata import FilterRules, iso, iso_local, parse_filter
from devtenant.graph_api.router import GraphError
from devtenant.model import Group, GroupKind
from devtenant.tokens import TokenIssuer
from tests.devtenant.graph_helpers import CONSISTENT, add_staff, bearer, make_state, mounted, relative
from tests.devtenant.tiny_org import (
    ADA,
    ADMINS_GROUP,
    ALAN,
    ALL_COMPANY,
    COMPILERS_TEAM,
    GLOBAL_ADMIN_ROLE,
    GRACE,
    HELPDESK_GROUP,
    JOSE,
    KATHERINE,
    MARGARET,
    NOW,
)


@pytest.fixture
def state():
    return make_state()


@pytest.fixture
async def client(aiohttp_client, state):
    return await aiohttp_client(mounted(state))


async def get(client, state, url: str, *, roles: tuple[str, ...] = (), headers: dict | None = None):
    resp = await client.get(f"/v1.0{url}", headers={**bearer(state, *roles), **(headers or {})})
    ctype = resp.headers.get("Content-Type", "")
    body = await resp.json() if ctype.startswith("application/json") else await resp.text()
    return resp, body


def error_code(body: dict[str, Any]) -> str:
    return body["error"]["code"]


# --- authentication ------------------------------------------------------------------------------
async def test_request_without_token_is_401_access_token_is_empty(client):
    resp = await client.get("/v1.0/users")
    body = await resp.json()
    assert resp.status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"
    assert body["error"]["message"] == "Access token is empty."
    assert "Bearer" in resp.headers["WWW-Authenticate"]


async def test_malformed_authorization_header_is_401_access_token_is_empty(client):
    resp = await client.get("/v1.0/users", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "Access token is empty."


async def test_token_signed_by_another_key_is_401(client, state):
    stranger = TokenIssuer()
    forged, _ = stranger.issue_app_token(tenant_id=state.tenant_id, client_id=state.app.client_id,
                                         sp_object_id=state.sp_object_id, roles=["User.Read.All"], app_name="x")
    resp = await client.get("/v1.0/users", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status == 401
    assert error_code(await resp.json()) == "InvalidAuthenticationToken"


async def test_expired_token_is_401_lifetime_validation_failed(client, state):
    now = int(time.time())
    expired = state.issuer.sign({"aud": "https://graph.microsoft.com", "tid": state.tenant_id, "iat": now - 7200,
                                 "nbf": now - 7200, "exp": now - 3600, "roles": ["User.Read.All"]})
    resp = await client.get("/v1.0/users", headers={"Authorization": f"Bearer {expired}"})
    body = await resp.json()
    assert resp.status == 401
    assert "expired" in body["error"]["message"]


async def test_token_for_another_audience_is_401(client, state):
    now = int(time.time())
    other = state.issuer.sign({"aud": "api://someone-else", "tid": state.tenant_id, "iat": now, "nbf": now,
                               "exp": now + 600, "roles": ["User.Read.All"]})
    resp = await client.get("/v1.0/users", headers={"Authorization": f"Bearer {other}"})
    assert resp.status == 401
    assert "audience" in (await resp.json())["error"]["message"]


async def test_token_for_another_tenant_is_401(client, state):
    foreign, _ = state.issuer.issue_app_token(tenant_id="22222222-2222-4222-8222-222222222222",
                                              client_id=state.app.client_id, sp_object_id=state.sp_object_id,
                                              roles=["User.Read.All"], app_name="x")
    resp = await client.get("/v1.0/users", headers={"Authorization": f"Bearer {foreign}"})
    assert resp.status == 401


async def test_token_without_any_role_is_401_like_an_unconsented_app(client, state):
    bare, _ = state.issuer.issue_app_token(tenant_id=state.tenant_id, client_id=state.app.client_id,
                                           sp_object_id=state.sp_object_id, roles=[], app_name="x")
    resp = await client.get("/v1.0/users", headers={"Authorization": f"Bearer {bare}"})
    assert resp.status == 401
    assert "roles claim" in (await resp.json())["error"]["message"]


async def test_missing_permission_is_403_authorization_request_denied(client, state):
    resp, body = await get(client, state, "/users", roles=("Calendars.Read",))
    assert resp.status == 403
    assert body["error"] == {"code": "Authorization_RequestDenied",
                             "message": "Insufficient privileges to complete the operation.",
                             "innerError": body["error"]["innerError"]}


async def test_error_envelope_carries_the_answers_request_ids(client, state):
    resp = await client.get("/v1.0/users/nobody", headers={**bearer(state), "client-request-id": "my-corr-id"})
    body = await resp.json()
    inner = body["error"]["innerError"]
    assert resp.headers["client-request-id"] == "my-corr-id" == inner["client-request-id"]
    assert resp.headers["request-id"] == inner["request-id"]
    assert set(inner) == {"date", "request-id", "client-request-id"}


async def test_json_answers_carry_graphs_odata_content_type(client, state):
    resp, _ = await get(client, state, "/users")
    assert resp.headers["Content-Type"] == ("application/json;odata.metadata=minimal;odata.streaming=true;"
                                            "IEEE754Compatible=false;charset=utf-8")
    assert resp.headers["request-id"]


async def test_malformed_json_body_is_400(client, state):
    resp = await client.post(f"/v1.0/users/{ALAN}/checkMemberGroups", data=b"{not json",
                             headers={**bearer(state), "Content-Type": "application/json"})
    assert resp.status == 400
    assert error_code(await resp.json()) == "BadRequest"


async def test_query_option_given_twice_is_400(client, state):
    resp, body = await get(client, state, "/users?$top=1&$top=2")
    assert resp.status == 400


async def test_unknown_segment_is_400_resource_not_found_for_the_segment(client, state):
    resp, body = await get(client, state, "/nothingHere")
    assert resp.status == 400
    assert body["error"]["message"] == "Resource not found for the segment 'nothingHere'."


async def test_me_with_an_app_only_token_is_400(client, state):
    resp, body = await get(client, state, "/me/memberOf")
    assert resp.status == 400
    assert "delegated" in body["error"]["message"]


# --- latency and faults --------------------------------------------------------------------------
async def test_injected_latency_is_paid_per_request(aiohttp_client):
    state = make_state(latency_ms=60)
    client = await aiohttp_client(mounted(state))
    start = time.perf_counter()
    resp, _ = await get(client, state, f"/users/{ALAN}")
    assert resp.status == 200
    assert time.perf_counter() - start >= 0.06


async def fault_statuses(aiohttp_client, seed: int, n: int) -> list[int]:
    state = make_state(fault_rate=0.5, seed=seed)
    client = await aiohttp_client(mounted(state, fault_hang_s=0.01))
    return [(await get(client, state, f"/users/{ALAN}"))[0].status for _ in range(n)]


async def test_injected_faults_are_seeded_and_reproducible(aiohttp_client):
    first = await fault_statuses(aiohttp_client, seed=7, n=30)
    again = await fault_statuses(aiohttp_client, seed=7, n=30)
    assert first == again
    assert set(first) <= {200, 429, 503, 504}
    assert {429, 503, 504} <= set(first) and 200 in first


async def test_throttling_fault_is_429_with_retry_after_and_timeout_fault_hangs_then_504(aiohttp_client):
    state = make_state(fault_rate=1.0, seed=3)
    client = await aiohttp_client(mounted(state, fault_hang_s=0.02))
    seen: dict[int, Any] = {}
    for _ in range(20):
        start = time.perf_counter()
        resp, body = await get(client, state, "/users")
        seen.setdefault(resp.status, (resp, body, time.perf_counter() - start))
    throttled, body, _ = seen[429]
    assert throttled.headers["Retry-After"] == "1" and body["error"]["code"] == "TooManyRequests"
    assert seen[504][2] >= 0.02
    assert 503 in seen


# --- users ---------------------------------------------------------------------------------------
USER_DEFAULT_KEYS = {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                     "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}


async def test_users_without_select_have_graphs_default_property_set(client, state):
    resp, body = await get(client, state, "/users")
    assert resp.status == 200
    assert body["@odata.context"].endswith("/v1.0/$metadata#users")
    assert len(body["value"]) == 6
    assert all(set(u) == USER_DEFAULT_KEYS for u in body["value"])


async def test_select_returns_exactly_the_named_properties_and_names_them_in_the_context(client, state):
    resp, body = await get(client, state, "/users?$select=id,department,accountEnabled,passwordProfile,"
                                          "onPremisesSyncEnabled,usageLocation,lastPasswordChangeDateTime")
    jose = next(u for u in body["value"] if u["id"] == JOSE)
    assert jose == {"id": JOSE, "department": "Engineering", "accountEnabled": True, "passwordProfile": None,
                    "onPremisesSyncEnabled": True, "usageLocation": "GB",
                    "lastPasswordChangeDateTime": iso(NOW - timedelta(days=90))}
    assert body["@odata.context"].endswith("#users(id,department,accountEnabled,passwordProfile,"
                                           "onPremisesSyncEnabled,usageLocation,lastPasswordChangeDateTime)")


async def test_select_of_an_unknown_property_is_400(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}?$select=displayName,favouriteColour")
    assert resp.status == 400
    assert "favouriteColour" in body["error"]["message"]


async def test_service_account_flag_is_never_served(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}?$select=*")
    assert not any("service" in key.lower() for key in body)
    resp, _ = await get(client, state, f"/users/{ALAN}?$select=isServiceAccount")
    assert resp.status == 400


async def test_user_read_basic_all_alone_sees_basic_properties_and_nulls_for_the_rest(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}?$select=id,displayName,mail,department,jobTitle",
                           roles=("User.ReadBasic.All",))
    assert resp.status == 200
    assert body["displayName"] == "Alan Turing" and body["mail"] == "alan.turing@tiny.example"
    assert body["department"] is None and body["jobTitle"] is None


async def test_user_by_id_and_by_upn_in_any_case(client, state):
    _, by_id = await get(client, state, f"/users/{ALAN}")
    _, by_upn = await get(client, state, "/users/Alan.Turing@Tiny.Example")
    assert by_id["id"] == by_upn["id"] == ALAN
    assert by_id["@odata.context"].endswith("#users/$entity")


async def test_unknown_user_is_404_request_resource_not_found(client, state):
    resp, body = await get(client, state, "/users/nobody@tiny.example")
    assert resp.status == 404
    assert body["error"]["code"] == "Request_ResourceNotFound"
    assert body["error"]["message"] == ("Resource 'nobody@tiny.example' does not exist or one of its queried "
                                        "reference-property objects are not present.")


async def test_paging_follows_next_link_to_the_end_without_duplicates(client, state):
    add_staff(state.org, 7)
    url = "/v1.0/users?$top=4&$select=id,displayName&$filter=startswith(displayName,'Staff')"
    seen: list[str] = []
    pages = 0
    while url:
        resp = await client.get(url, headers=bearer(state))
        body = await resp.json()
        assert resp.status == 200
        seen += [u["id"] for u in body["value"]]
        assert all(set(u) == {"id", "displayName"} for u in body["value"])
        pages += 1
        url = relative(body.get("@odata.nextLink", ""))
        assert "$select=id,displayName" in url or not url
    assert pages == 2 and len(seen) == 7 == len(set(seen))


async def test_top_above_999_is_400(client, state):
    resp, body = await get(client, state, "/users?$top=1000")
    assert resp.status == 400
    assert "between 1 and 999" in body["error"]["message"]


async def test_a_garbage_skiptoken_is_400(client, state):
    resp, body = await get(client, state, "/users?$skiptoken=not-a-token")
    assert resp.status == 400


async def test_skip_is_not_supported_on_directory_objects(client, state):
    resp, body = await get(client, state, "/users?$skip=2")
    assert resp.status == 400
    assert "'$skip' is not supported" in body["error"]["message"]


async def test_count_true_without_consistency_level_is_silently_ignored_like_graph(client, state):
    resp, body = await get(client, state, "/users?$count=true")
    assert resp.status == 200 and "@odata.count" not in body


async def test_count_true_with_consistency_level_adds_odata_count(client, state):
    resp, body = await get(client, state, "/users?$count=true&$top=2", headers=CONSISTENT)
    assert body["@odata.count"] == 6 and len(body["value"]) == 2


async def test_count_segment_without_consistency_level_is_400(client, state):
    resp, body = await get(client, state, "/users/$count")
    assert resp.status == 400
    assert body["error"] == {**body["error"], "code": "Request_BadRequest",
                             "message": "$count is not currently supported."}


async def test_count_segment_with_consistency_level_is_text_plain(client, state):
    resp, body = await get(client, state, "/users/$count?$filter=department eq 'Engineering'", headers=CONSISTENT)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert body == "4"


async def test_filter_startswith_on_display_name_or_upn(client, state):
    resp, body = await get(client, state, "/users?$filter=startswith(displayName,'gra') or "
                                          "startswith(userPrincipalName,'alan.')&$select=id")
    assert sorted(u["id"] for u in body["value"]) == sorted([GRACE, ALAN])


async def test_filter_eq_in_and_booleans(client, state):
    _, body = await get(client, state, f"/users?$filter=id in ('{ADA}','{JOSE}') and accountEnabled eq true"
                                       "&$select=id")
    assert sorted(u["id"] for u in body["value"]) == sorted([ADA, JOSE])
    _, body = await get(client, state, "/users?$filter=onPremisesSyncEnabled eq true&$select=id")
    assert [u["id"] for u in body["value"]] == [JOSE]


@pytest.mark.parametrize("clause", ["endswith(mail,'@corp.tiny.example')", "department ne 'Engineering'",
                                    "not startswith(displayName,'A')"])
async def test_advanced_operators_need_consistency_level_and_count(client, state, clause):
    resp, body = await get(client, state, f"/users?$filter={clause}")
    assert resp.status == 400 and error_code(body) == "Request_UnsupportedQuery"
    resp, body = await get(client, state, f"/users?$filter={clause}&$count=true", headers=CONSISTENT)
    assert resp.status == 200 and body["value"]


async def test_filter_on_an_unsupported_property_is_400_unsupported_query(client, state):
    resp, body = await get(client, state, "/users?$filter=favouriteColour eq 'red'")
    assert resp.status == 400 and error_code(body) == "Request_UnsupportedQuery"


async def test_filter_with_a_syntax_error_is_400(client, state):
    resp, body = await get(client, state, "/users?$filter=displayName eq")
    assert resp.status == 400 and error_code(body) == "BadRequest"


async def test_orderby_display_name_desc(client, state):
    _, body = await get(client, state, "/users?$orderby=displayName desc&$select=displayName")
    names = [u["displayName"] for u in body["value"]]
    assert names == sorted(names, key=str.casefold, reverse=True)


async def test_filter_and_orderby_together_need_advanced_query(client, state):
    url = "/users?$filter=department eq 'Engineering'&$orderby=displayName"
    resp, body = await get(client, state, url)
    assert resp.status == 400 and error_code(body) == "Request_UnsupportedQuery"
    resp, body = await get(client, state, url + "&$count=true", headers=CONSISTENT)
    assert [u["displayName"] for u in body["value"]] == ["Alan Turing", "Grace Hopper", "José Müller",
                                                         "Katherine Johnson"]


async def test_search_needs_consistency_level(client, state):
    resp, body = await get(client, state, '/users?$search="displayName:tur"')
    assert resp.status == 400 and error_code(body) == "Request_UnsupportedQuery"
    assert "ConsistencyLevel" in body["error"]["message"]


async def test_search_matches_the_start_of_words(client, state):
    _, body = await get(client, state, '/users?$search="displayName:tur" OR "mail:grace"&$select=id',
                        headers=CONSISTENT)
    assert sorted(u["id"] for u in body["value"]) == sorted([ALAN, GRACE])
    _, body = await get(client, state, '/users?$search="displayName:mül"&$select=id', headers=CONSISTENT)
    assert [u["id"] for u in body["value"]] == [JOSE]


# --- the org chart -------------------------------------------------------------------------------
async def test_manager_is_a_typed_directory_object(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}/manager?$select=id,displayName")
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert (body["id"], body["displayName"]) == (GRACE, "Grace Hopper")


async def test_manager_of_someone_without_one_is_404(client, state):
    resp, body = await get(client, state, f"/users/{ADA}/manager")
    assert resp.status == 404 and error_code(body) == "Request_ResourceNotFound"
    assert body["error"]["message"].startswith("Resource 'manager' does not exist")


async def test_manager_needs_more_than_user_read_basic_all(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}/manager", roles=("User.ReadBasic.All",))
    assert resp.status == 403


async def test_direct_reports(client, state):
    _, body = await get(client, state, f"/users/{GRACE}/directReports?$select=id")
    assert sorted(r["id"] for r in body["value"]) == sorted([ALAN, KATHERINE, JOSE])
    assert all(r["@odata.type"] == "#microsoft.graph.user" for r in body["value"])


async def test_expand_manager_and_direct_reports_capped_at_20(client, state):
    add_staff(state.org, 25, manager=GRACE)
    _, body = await get(client, state, f"/users/{GRACE}?$select=id&$expand=manager($select=id,displayName),"
                                       "directReports")
    assert body["manager"] == {"@odata.type": "#microsoft.graph.user", "id": ADA, "displayName": "Ada Lovelace"}
    assert len(body["directReports"]) == 20
    _, ada = await get(client, state, f"/users/{ADA}?$expand=manager")
    assert "manager" not in ada


async def test_a_page_of_users_with_expand_holds_at_most_100_whatever_top_says(client, state):
    add_staff(state.org, 150, manager=GRACE)
    _, expanded = await get(client, state, "/users?$select=id&$expand=manager($select=id)&$top=999")
    assert len(expanded["value"]) == 100 and "@odata.nextLink" in expanded
    _, plain = await get(client, state, "/users?$select=id&$top=999")
    assert len(plain["value"]) == len(state.org.users) and "@odata.nextLink" not in plain


async def test_expand_of_an_unknown_navigation_is_400(client, state):
    resp, _ = await get(client, state, f"/users/{ALAN}?$expand=bestFriend")
    assert resp.status == 400


# --- memberships ---------------------------------------------------------------------------------
def nest_groups(state) -> tuple[str, str]:
    """Engineering (security) contains Platform (security), which contains Alan."""
    now = state.org.now
    platform = Group("bbbbbbbb-0000-4000-8000-0000000000aa", "Platform", None, GroupKind.SECURITY, "platform",
                     None, None, False, now, [ALAN])
    engineering = Group("bbbbbbbb-0000-4000-8000-0000000000bb", "Engineering", None, GroupKind.SECURITY,
                        "engineering", None, None, False, now, [platform.id, GRACE])
    state.org.groups[platform.id] = platform
    state.org.groups[engineering.id] = engineering
    state.org.index()
    return platform.id, engineering.id


async def test_member_of_lists_groups_and_directory_roles_typed(client, state):
    _, body = await get(client, state, f"/users/{ADA}/memberOf")
    types = {item["@odata.type"] for item in body["value"]}
    assert types == {"#microsoft.graph.group", "#microsoft.graph.directoryRole"}
    role = next(i for i in body["value"] if i["@odata.type"] == "#microsoft.graph.directoryRole")
    assert role["roleTemplateId"] == GLOBAL_ADMIN_ROLE and role["displayName"] == "Global Administrator"
    assert body["@odata.context"].endswith("#directoryObjects")


async def test_transitive_member_of_includes_nested_groups(client, state):
    platform, engineering = nest_groups(state)
    _, direct = await get(client, state, f"/users/{ALAN}/memberOf?$select=id")
    _, transitive = await get(client, state, f"/users/{ALAN}/transitiveMemberOf?$select=id")
    assert engineering not in {g["id"] for g in direct["value"]}
    assert {platform, engineering, COMPILERS_TEAM, ALL_COMPANY} == {g["id"] for g in transitive["value"]}


async def test_group_cast_needs_consistency_level_and_count(client, state):
    resp, body = await get(client, state, f"/users/{ALAN}/transitiveMemberOf/microsoft.graph.group")
    assert resp.status == 400 and error_code(body) == "Request_UnsupportedQuery"


@pytest.mark.parametrize("cast", ["microsoft.graph.group", "graph.group"])
async def test_group_cast_with_filter_count_and_select(client, state, cast):
    url = (f"/users/{MARGARET}/transitiveMemberOf/{cast}?$count=true&$select=id,displayName,groupTypes"
           "&$filter=groupTypes/any(c:c eq 'Unified')")
    resp, body = await get(client, state, url, headers=CONSISTENT)
    assert resp.status == 200
    assert body["@odata.count"] == 1
    assert body["value"] == [{"@odata.type": "#microsoft.graph.group", "id": ALL_COMPANY,
                              "displayName": "All Company", "groupTypes": ["Unified"]}]
    assert body["@odata.context"].endswith("#groups(id,displayName,groupTypes)")


async def test_member_of_with_user_read_all_only_returns_limited_group_information(client, state):
    _, body = await get(client, state, f"/users/{MARGARET}/memberOf?$select=id,displayName",
                        roles=("User.Read.All",))
    groups = [g for g in body["value"] if g["@odata.type"] == "#microsoft.graph.group"]
    assert {g["id"] for g in groups} == {HELPDESK_GROUP, ADMINS_GROUP, ALL_COMPANY}
    assert all(g["displayName"] is None for g in groups)


async def test_member_of_count_segment(client, state):
    resp, body = await get(client, state, f"/users/{MARGARET}/memberOf/microsoft.graph.group/$count",
                           headers=CONSISTENT)
    assert body == "3"


async def test_check_member_groups_is_transitive_and_limited_to_20_ids(client, state):
    platform, engineering = nest_groups(state)
    url = f"/v1.0/users/{ALAN}/checkMemberGroups"
    resp = await client.post(url, json={"groupIds": [engineering, HELPDESK_GROUP, COMPILERS_TEAM]},
                             headers=bearer(state))
    assert (await resp.json())["value"] == [engineering, COMPILERS_TEAM]
    resp = await client.post(url, json={"groupIds": [engineering] * 21}, headers=bearer(state))
    assert resp.status == 400


# --- groups --------------------------------------------------------------------------------------
async def test_groups_filter_unified_and_security_groups(client, state):
    _, unified = await get(client, state, "/groups?$filter=groupTypes/any(c:c eq 'Unified')&$select=id")
    _, security = await get(client, state, "/groups?$filter=securityEnabled eq true and mailEnabled eq false"
                                           "&$select=id")
    assert {g["id"] for g in unified["value"]} == {ALL_COMPANY, COMPILERS_TEAM}
    assert {g["id"] for g in security["value"]} == {HELPDESK_GROUP, ADMINS_GROUP}


async def test_group_json_has_graphs_group_properties(client, state):
    _, body = await get(client, state, f"/groups/{COMPILERS_TEAM}")
    assert {k: body[k] for k in ("displayName", "groupTypes", "mailEnabled", "securityEnabled", "mail",
                                 "mailNickname", "visibility", "isAssignableToRole")} == {
        "displayName": "Compilers Team", "groupTypes": ["Unified"], "mailEnabled": True, "securityEnabled": False,
        "mail": "compilers@tiny.example", "mailNickname": "compilers", "visibility": "Private",
        "isAssignableToRole": False}
    assert body["createdDateTime"].endswith("Z")


async def test_unknown_group_is_404(client, state):
    resp, body = await get(client, state, "/groups/bbbbbbbb-0000-4000-8000-00000000ffff")
    assert resp.status == 404 and error_code(body) == "Request_ResourceNotFound"


async def test_group_members_and_transitive_members(client, state):
    platform, engineering = nest_groups(state)
    _, members = await get(client, state, f"/groups/{engineering}/members?$select=id")
    _, transitive = await get(client, state, f"/groups/{engineering}/transitiveMembers?$select=id")
    assert {m["id"] for m in members["value"]} == {platform, GRACE}
    assert {m["id"] for m in transitive["value"]} == {platform, GRACE, ALAN}
    resp, count = await get(client, state, f"/groups/{engineering}/transitiveMembers/$count", headers=CONSISTENT)
    assert count == "3"
    _, users = await get(client, state, f"/groups/{engineering}/transitiveMembers/microsoft.graph.user/$count",
                         headers=CONSISTENT)
    assert users == "2"


async def test_transitive_members_count_needs_consistency_level(client, state):
    resp, body = await get(client, state, f"/groups/{ALL_COMPANY}/transitiveMembers/$count")
    assert resp.status == 400


async def test_group_members_with_group_member_read_all_only_show_users_as_limited(client, state):
    _, body = await get(client, state, f"/groups/{HELPDESK_GROUP}/members", roles=("GroupMember.Read.All",))
    assert body["value"][0]["id"] == MARGARET and body["value"][0]["displayName"] is None


# --- delta ---------------------------------------------------------------------------------------
async def follow(client, state, url: str) -> tuple[list[dict], str]:
    items: list[dict] = []
    while True:
        resp = await client.get(url, headers=bearer(state))
        body = await resp.json()
        assert resp.status == 200, body
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, relative(body["@odata.deltaLink"])
        url = relative(body["@odata.nextLink"])


async def test_delta_pages_to_a_delta_link_then_returns_only_changes_and_removals(client, state):
    items, delta_link = await follow(client, state, "/v1.0/users/delta?$select=displayName,jobTitle&$top=4")
    assert len(items) == 6 and all(set(i) == {"id", "displayName", "jobTitle"} for i in items)
    assert "$deltatoken=" in delta_link

    state.org.users[ALAN].job_title = "Principal Engineer"
    state.org.touch(state.org.users[ALAN])
    state.org.remove_user(KATHERINE)
    changes, next_delta = await follow(client, state, delta_link)
    assert changes == [{"displayName": "Alan Turing", "jobTitle": "Principal Engineer", "id": ALAN},
                       {"id": KATHERINE, "@removed": {"reason": "changed"}}]
    quiet, _ = await follow(client, state, next_delta)
    assert quiet == []


async def test_delta_with_a_garbage_token_is_400(client, state):
    resp, body = await get(client, state, "/users/delta?$deltatoken=garbage")
    assert resp.status == 400


async def test_delta_token_from_another_run_of_devtenant_is_410_gone(aiohttp_client, client, state):
    _, delta_link = await follow(client, state, "/v1.0/users/delta")
    restarted = await aiohttp_client(mounted(state))
    resp = await restarted.get(delta_link, headers=bearer(state))
    assert resp.status == 410
    assert (await resp.json())["error"]["code"] == "SyncStateNotFound"


async def test_delta_needs_user_read_all(client, state):
    resp, _ = await get(client, state, "/users/delta", roles=("User.ReadBasic.All",))
    assert resp.status == 403


async def test_delta_with_manager_selected_tracks_the_manager_as_manager_delta(client, state):
    items, delta_link = await follow(client, state, "/v1.0/users/delta?$select=displayName,manager")
    by_id = {i["id"]: i for i in items}
    boss = state.org.users[ALAN].manager_id
    assert boss and by_id[ALAN]["manager@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": boss}]
    state.org.users[ALAN].manager_id = None
    state.org.touch(state.org.users[ALAN])
    changes, _ = await follow(client, state, delta_link)
    assert changes == [{"displayName": "Alan Turing", "id": ALAN, "manager@delta": []}]


async def test_group_delta_pages_groups_with_their_members_then_returns_only_membership_changes(client, state):
    state.config = dataclasses.replace(state.config, group_delta_members_per_page=4)  # All Company (6) spans 2 pages
    items, delta_link = await follow(client, state, "/v1.0/groups/delta?$select=displayName,members")
    assert "$deltatoken=" in delta_link
    members: dict[str, list[str]] = {}
    for item in items:
        assert set(item) == {"id", "displayName", "members@delta"}
        members.setdefault(item["id"], []).extend(m["id"] for m in item["members@delta"])
    assert [i["id"] for i in items].count(ALL_COMPANY) > 1  # the same group again, with the rest of its members
    assert {g: sorted(m) for g, m in members.items()} == {
        g.id: sorted(g.member_ids) for g in state.org.groups.values()}
    assert all(m["@odata.type"] == "#microsoft.graph.user" for i in items for m in i["members@delta"])

    state.org.add_member(HELPDESK_GROUP, ADA)
    state.org.remove_member(COMPILERS_TEAM, KATHERINE)
    state.org.add_member(ADMINS_GROUP, COMPILERS_TEAM)  # nesting: a group as a member
    state.org.remove_group(HELPDESK_GROUP)
    changes, next_delta = await follow(client, state, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[COMPILERS_TEAM]["members@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": KATHERINE, "@removed": {"reason": "deleted"}}]
    assert by_id[ADMINS_GROUP]["members@delta"] == [{"@odata.type": "#microsoft.graph.group", "id": COMPILERS_TEAM}]
    assert by_id[HELPDESK_GROUP] == {"id": HELPDESK_GROUP, "@removed": {"reason": "deleted"}}
    assert ALL_COMPANY not in by_id
    quiet, _ = await follow(client, state, next_delta)
    assert quiet == []


async def test_group_delta_filters_by_id_and_refuses_what_graph_refuses(client, state):
    items, _ = await follow(client, state, f"/v1.0/groups/delta?$select=id,members&$filter=id eq '{COMPILERS_TEAM}'")
    assert [i["id"] for i in items] == [COMPILERS_TEAM]
    for query in ("$search=\"displayName:x\"", "$orderby=displayName", "$expand=members", "$select=nonsense"):
        resp, _ = await get(client, state, f"/groups/delta?{query}", headers=CONSISTENT)
        assert resp.status == 400, query


async def test_group_delta_needs_a_group_permission_and_answers_a_stale_token_410(aiohttp_client, client, state):
    resp, _ = await get(client, state, "/groups/delta", roles=("User.Read.All",))
    assert resp.status == 403
    resp, _ = await get(client, state, "/groups/delta", roles=("GroupMember.Read.All",))
    assert resp.status == 200
    _, delta_link = await follow(client, state, "/v1.0/groups/delta")
    restarted = await aiohttp_client(mounted(state))
    resp = await restarted.get(delta_link, headers=bearer(state))
    assert resp.status == 410
    assert "/groups/delta" in resp.headers["Location"]


# --- the tenant ----------------------------------------------------------------------------------
async def test_organization_and_domains(client, state):
    _, org = await get(client, state, "/organization?$select=id,displayName,verifiedDomains")
    assert org["value"][0]["id"] == state.tenant_id
    assert {d["name"] for d in org["value"][0]["verifiedDomains"]} == {"tiny.example", "corp.tiny.example"}
    _, domains = await get(client, state, "/domains")
    by_id = {d["id"]: d for d in domains["value"]}
    assert by_id["corp.tiny.example"]["authenticationType"] == "Federated"
    assert by_id["tiny.example"]["isDefault"] is True


async def test_service_principal_by_app_id_filter_and_key(client, state):
    app_id = state.app.client_id
    _, listed = await get(client, state, f"/servicePrincipals?$filter=appId eq '{app_id}'&$select=id,appId")
    assert listed["value"] == [{"id": state.sp_object_id, "appId": app_id}]
    _, single = await get(client, state, f"/servicePrincipals(appId='{app_id}')")
    assert single["id"] == state.sp_object_id and single["displayName"] == "Watchword"
    resp, _ = await get(client, state, "/servicePrincipals(appId='00000000-0000-0000-0000-000000000001')")
    assert resp.status == 404


async def test_every_module_registers_on_one_router_reachable_from_the_app(state):
    router = graph_app(state)[ROUTER]
    assert router._match("POST", "/$batch")
    assert router._match("PATCH", f"/users/{ALAN}")  # passwords.py, on the same router


# --- the $filter toolkit -------------------------------------------------------------------------
EVENT = {"subject": "Standup", "start": {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"},
         "createdDateTime": "2026-11-20T08:00:00Z", "isCancelled": False,
         "attendees": [{"emailAddress": {"address": "alan.turing@tiny.example"}}]}


@pytest.mark.parametrize(("expression", "expected"), [
    ("subject eq 'standup'", True),
    ("createdDateTime ge 2026-11-20T00:00:00Z and createdDateTime lt 2026-11-21", True),
    ("createdDateTime gt 2026-11-20T08:00:00Z", False),
    ("start/dateTime ge 2026-11-24T09:00:00Z", True),
    ("isCancelled eq false or subject eq 'x'", True),
    ("attendees/any(a:a/emailAddress/address eq 'Alan.Turing@tiny.example')", True),
    ("attendees/any(a:startswith(a/emailAddress/address,'grace'))", False),
    ("subject in ('Retro', 'Standup')", True),
    ("not (subject eq 'Standup')", False),
    ("contains(subject,'and')", True),
])
def test_filter_expressions(expression, expected):
    predicate = parse_filter(expression, FilterRules(functions=("startswith", "endswith", "contains")))
    assert predicate(EVENT) is expected


def test_filter_rejects_unsupported_functions_as_unsupported_query():
    with pytest.raises(GraphError) as err:
        parse_filter("contains(subject,'x')")
    assert err.value.code == "Request_UnsupportedQuery"


def test_datetime_formats():
    moment = NOW.replace(microsecond=123456)
    assert iso(moment) == "2026-11-26T12:00:00Z"
    assert iso_local(moment) == "2026-11-26T12:00:00.1234560"


async def test_concurrent_requests_do_not_interfere(client, state):
    results = await asyncio.gather(*(get(client, state, f"/users/{uid}") for uid in (ADA, GRACE, ALAN) * 5))
    assert [body["id"] for _, body in results] == [ADA, GRACE, ALAN] * 5
