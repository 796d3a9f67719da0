"""Teams chats through devtenant's Graph: the product's chats query and Teams' rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devtenant.model import Chat, ChatMessage, User
from tests.devtenant.graph_support import call, make_state, sdk_client, serve_graph
from tests.devtenant.tiny_org import ALAN, GRACE, KATHERINE, NOW

# msgraph's generated request builders (and kiota under them) warn about their own deprecated classes.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

PRODUCT_QUERY = {"$expand": "members,lastMessagePreview", "$orderby": "lastMessagePreview/createdDateTime desc",
                 "$top": "50"}


async def test_product_query_lists_chats_newest_message_first_with_members_and_preview():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/chats", PRODUCT_QUERY, roles=["Chat.Read.All"])
    assert resp.status == 200
    group, one_on_one = resp.body["value"]
    assert (group["chatType"], group["topic"]) == ("group", "Compilers")
    assert (one_on_one["chatType"], one_on_one["topic"]) == ("oneOnOne", None)
    assert group["lastUpdatedDateTime"] == "2026-11-26T07:00:00Z"
    assert group["tenantId"] == "11111111-1111-4111-8111-111111111111"
    assert group["webUrl"].startswith("https://teams.microsoft.com/l/chat/19%3Acompilers%40thread.v2/0?tenantId=")
    assert [m["userId"] for m in group["members"]] == [GRACE, ALAN, KATHERINE]
    member = group["members"][0]
    assert member["@odata.type"] == "#microsoft.graph.aadUserConversationMember"
    assert member["displayName"] == "Grace Hopper" and member["email"] == "grace.hopper@tiny.example"
    assert member["roles"] == ["owner"] and member["id"]
    preview = group["lastMessagePreview"]
    assert preview["body"] == {"contentType": "text", "content": "release is out"}
    assert preview["isDeleted"] is False and preview["messageType"] == "message"
    assert preview["from"]["user"] == {"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": GRACE,
                                       "displayName": "Grace Hopper", "userIdentityType": "aadUser"}


async def test_select_keeps_the_expanded_members_and_preview_as_graph_does():
    query = {**PRODUCT_QUERY, "$select": "id,chatType"}
    resp = await call(make_state(), "GET", f"/users/{ALAN}/chats", query, roles=["Chat.Read.All"])
    group = resp.body["value"][0]
    assert set(group) >= {"id", "chatType", "members", "lastMessagePreview"}
    assert "topic" not in group


async def test_expanded_members_stop_at_25_but_the_members_endpoint_lists_all():
    state = make_state()
    crowd = [
        User(id=f"aaaaaaaa-1111-4000-8000-{i:012d}", display_name=f"Person {i}", given_name="Person",
             surname=str(i), user_principal_name=f"person{i}@tiny.example", mail=f"person{i}@tiny.example",
             job_title=None, department=None, office_location=None, city=None, country=None, usage_location=None,
             manager_id=None, employee_id=None, business_phones=[], mobile_phone=None,
             created_date_time=NOW, last_password_change_date_time=NOW)
        for i in range(30)
    ]
    state.org.add_users(crowd)
    state.org.chats.append(Chat("19:crowd@thread.v2", "group", "Everyone", (ALAN, *(u.id for u in crowd)),
                                NOW - timedelta(days=2), [ChatMessage("1732000000099", ALAN, NOW, "hello all")]))
    state.org.index()
    resp = await call(state, "GET", f"/users/{ALAN}/chats", PRODUCT_QUERY, roles=["Chat.Read.All"])
    crowd_chat = resp.body["value"][0]
    assert crowd_chat["topic"] == "Everyone" and len(crowd_chat["members"]) == 25
    members = await call(state, "GET", "/chats/19:crowd@thread.v2/members", roles=["Chat.Read.All"])
    assert members.status == 200 and len(members.body["value"]) == 31


async def test_chat_readbasic_lists_chats_but_cannot_expand_the_last_message():
    state = make_state()
    basic = await call(state, "GET", f"/users/{ALAN}/chats", {"$expand": "members"}, roles=["Chat.ReadBasic.All"])
    assert basic.status == 200 and len(basic.body["value"]) == 2
    denied = await call(state, "GET", f"/users/{ALAN}/chats", PRODUCT_QUERY, roles=["Chat.ReadBasic.All"])
    assert denied.status == 403 and denied.body["error"]["code"] == "Forbidden"
    assert "Chat.Read.All" in denied.body["error"]["message"]


async def test_chats_without_a_chat_permission_is_403():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/chats", roles=["User.Read.All"])
    assert resp.status == 403


async def test_chats_page_size_above_50_is_400():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/chats", {"$top": "51"}, roles=["Chat.Read.All"])
    assert resp.status == 400


async def test_chats_order_only_by_last_message_time_descending():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/chats", {"$orderby": "createdDateTime desc"},
                      roles=["Chat.Read.All"])
    assert resp.status == 400


async def test_chats_page_by_top_with_a_next_link():
    state = make_state()
    first = await call(state, "GET", f"/users/{ALAN}/chats", {**PRODUCT_QUERY, "$top": "1"}, roles=["Chat.Read.All"])
    assert [c["topic"] for c in first.body["value"]] == ["Compilers"]
    assert "$skiptoken=" in first.body["@odata.nextLink"]


async def test_chats_of_an_unknown_user_is_404():
    resp = await call(make_state(), "GET", "/users/nobody@tiny.example/chats", roles=["Chat.Read.All"])
    assert resp.status == 404


# --- contract: the product's SDK parses these answers ---------------------------------------------------
async def test_sdk_reads_chats_with_members_and_last_message_preview(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
    from msgraph.generated.models.chat_type import ChatType
    from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=["Chat.Read.All"])
    query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(
        expand=["members", "lastMessagePreview"], orderby=["lastMessagePreview/createdDateTime desc"], top=50)
    page = await client.users.by_user_id(ALAN).chats.get(RequestConfiguration(query_parameters=query))
    group, one_on_one = page.value
    assert group.chat_type is ChatType.Group and one_on_one.chat_type is ChatType.OneOnOne
    assert group.topic == "Compilers"
    assert all(isinstance(m, AadUserConversationMember) for m in group.members)
    assert [m.user_id for m in group.members] == [GRACE, ALAN, KATHERINE]
    assert group.members[0].email == "grace.hopper@tiny.example"
    preview = group.last_message_preview
    assert preview.body.content == "release is out"
    assert preview.from_.user.display_name == "Grace Hopper" and preview.from_.user.id == GRACE
    assert preview.created_date_time.isoformat() == "2026-11-26T07:00:00+00:00"
    members = await client.chats.by_chat_id("19:compilers@thread.v2").members.get()
    assert len(members.value) == 3
