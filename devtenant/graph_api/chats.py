"""Teams chats: `GET /users/{id}/chats` (with `$expand=members,lastMessagePreview`), a chat, its members.

As Teams' Graph surface behaves for an app:
* pages of at most 50 chats (default 20 here); `$orderby` only `lastMessagePreview/createdDateTime desc`;
* `$expand=members` returns at most 25 members per chat; `/chats/{id}/members` returns them all;
* Chat.ReadBasic.All reads chats and members but not `lastMessagePreview` (403 when expanded);
* errors in Teams' style: 403 "Forbidden" naming the roles the API needs, 404 "NotFound".
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from devtenant.graph_api import odata
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router
from devtenant.model import Chat, User

CHAT_FULL = ("Chat.Read.All", "Chat.ReadWrite.All")
CHAT_BASIC = ("Chat.ReadBasic.All", *CHAT_FULL)
MEMBER_READERS = ("ChatMember.Read.All", "ChatMember.ReadWrite.All", *CHAT_BASIC)
EXPANDED_MEMBERS_CAP = 25
_ZERO_TIME = "0001-01-01T00:00:00Z"


def register(router: Router) -> None:
    # Permissions are checked in the handlers, to answer in Teams' words (see module docstring).
    router.route("GET", "/users/{id}/chats", permissions=())(list_chats)
    router.route("GET", "/chats/{chat_id}", permissions=())(get_chat)
    router.route("GET", "/chats/{chat_id}/members", permissions=())(list_members)


def _require(req: GraphRequest, needed: Sequence[str]) -> None:
    if not req.roles & set(needed):
        have = ", ".join(sorted(req.roles))
        raise GraphError(403, "Forbidden", f"Missing role permissions on the request. API requires one of "
                         f"'{', '.join(needed)}'. Roles on the request '{have}'.")
    if not req.state.config.protected_api_approved:
        raise GraphError(403, "Forbidden", "Invoked API requires Protected API access in application-only context "
                         "when not also using delegated permissions. Please visit "
                         "https://aka.ms/teams-api-protected-apis to request access.")


def _expands(req: GraphRequest) -> set[str]:
    names = set(odata.expand_options(req))
    unknown = {n for n in names if n not in {"members", "lastMessagePreview"}}
    if unknown:
        raise GraphError(400, "BadRequest", f"Could not find a property named '{sorted(unknown)[0]}' on type "
                         "'microsoft.graph.chat'.")
    return names


def member_json(req: GraphRequest, chat: Chat, user: User) -> dict[str, Any]:
    tenant = req.state.tenant_id
    raw = f"0##{tenant}##{chat.id}##{user.id}".encode()
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": base64.b64encode(raw).decode(),
        "roles": ["owner"],
        "displayName": user.display_name,
        "visibleHistoryStartDateTime": _ZERO_TIME,
        "userId": user.id,
        "email": user.mail or user.user_principal_name,
        "tenantId": tenant,
    }


def chat_json(req: GraphRequest, chat: Chat, expand: set[str]) -> dict[str, Any]:
    tenant = req.state.tenant_id
    org = req.state.org
    out: dict[str, Any] = {
        "id": chat.id,
        "topic": chat.topic,
        "createdDateTime": odata.iso(chat.created_date_time),
        "lastUpdatedDateTime": odata.iso(chat.last_updated_date_time),
        "chatType": chat.chat_type,
        "webUrl": f"https://teams.microsoft.com/l/chat/{quote(chat.id, safe='')}/0?tenantId={tenant}",
        "tenantId": tenant,
        "isHiddenForAllMembers": False,
        "onlineMeetingInfo": None,
        "viewpoint": None,
    }
    if "members" in expand:
        members = [org.users[uid] for uid in chat.member_ids if uid in org.users]
        out["members"] = [member_json(req, chat, u) for u in members[:EXPANDED_MEMBERS_CAP]]
    if "lastMessagePreview" in expand:
        out["lastMessagePreview@odata.context"] = f"{req.base_url}/$metadata#users('{req.params.get('id', '')}')" \
                                                  f"/chats('{chat.id}')/lastMessagePreview/$entity"
        out["lastMessagePreview"] = _preview(req, chat)
    return out


def _preview(req: GraphRequest, chat: Chat) -> dict[str, Any] | None:
    if not chat.messages:
        return None
    msg = chat.messages[-1]
    sender = req.state.org.users.get(msg.sender_id)
    return {
        "id": msg.id,
        "createdDateTime": odata.iso(msg.created_date_time),
        "isDeleted": False,
        "messageType": "message",
        "eventDetail": None,
        "body": {"contentType": "text", "content": msg.content},
        "from": {
            "application": None,
            "device": None,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": msg.sender_id,
                "displayName": sender.display_name if sender else None,
                "userIdentityType": "aadUser",
            },
        },
    }


def _last_message_time(chat: Chat) -> str:
    return odata.iso(chat.messages[-1].created_date_time) if chat.messages else ""


async def list_chats(req: GraphRequest) -> GraphResponse:
    _require(req, CHAT_BASIC)
    expand = _expands(req)
    if "lastMessagePreview" in expand:
        _require(req, CHAT_FULL)
    user = req.state.org.user(req.params["id"])
    if user is None:
        raise GraphError(404, "NotFound", f"User '{req.params['id']}' not found.")
    items = [chat_json(req, c, expand) for c in req.state.org.chats_for(user.id)]
    orderby = " ".join(req.query.get("$orderby", "").split())
    if orderby and orderby.lower() != "lastmessagepreview/createddatetime desc":
        raise GraphError(400, "BadRequest", "OrderBy is supported only on "
                         "'lastMessagePreview/createdDateTime desc'.")
    # Sorting reads the preview even when it is not expanded.
    last = {c.id: _last_message_time(c) for c in req.state.org.chats_for(user.id)}
    if orderby:
        items.sort(key=lambda item: last[item["id"]], reverse=True)
    items = odata.apply_filter(items, req, properties=("topic", "chatType", "createdDateTime",
                                                       "lastUpdatedDateTime", "members", "tenantId"),
                               resource="chat", directory=False)
    return odata.page(req, items, default_size=20, max_size=50, context=f"users('{user.id}')/chats",
                      directory=False, render=lambda item: odata.select(item, req, type_name="microsoft.graph.chat"))


def _chat(req: GraphRequest) -> Chat:
    chat_id = req.params["chat_id"]
    for chat in req.state.org.chats:
        if chat.id == chat_id:
            return chat
    raise GraphError(404, "NotFound", f"Chat '{chat_id}' not found.")


async def get_chat(req: GraphRequest) -> GraphResponse:
    _require(req, CHAT_BASIC)
    expand = _expands(req)
    if "lastMessagePreview" in expand:
        _require(req, CHAT_FULL)
    chat = _chat(req)
    body = {"@odata.context": f"{req.base_url}/$metadata#chats/$entity", **chat_json(req, chat, expand)}
    return GraphResponse(body=odata.select(body, req, type_name="microsoft.graph.chat"))


async def list_members(req: GraphRequest) -> GraphResponse:
    _require(req, MEMBER_READERS)
    chat = _chat(req)
    org = req.state.org
    members = [member_json(req, chat, org.users[uid]) for uid in chat.member_ids if uid in org.users]
    return GraphResponse(body={"@odata.context": f"{req.base_url}/$metadata#chats('{chat.id}')/members",
                               "@odata.count": len(members), "value": members})
