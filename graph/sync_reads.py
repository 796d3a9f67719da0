"""TEMPORARY: the tenant-wide reads the directory sync needs that the `Directory` protocol lacks yet.

The protected users' sync must know, for 50,000 users, who holds a privileged role, who sits in a
role-assignable group and who is in the admin's scope groups, without a call per user. That takes a
few tenant-wide reads per sync: the role assignments, the transitive members of the handful of groups
involved, and the user count for the progress bar. Until `graph.directory.Directory` (and
`GraphDirectory`) offer these, this module reads them over the same HTTP client and token source,
following the same rules: `$select` on every query, Graph's errors turned into `GraphUnavailable` /
`DirectoryError` with plain, safe messages.

Wanted on `Directory` (then this module goes; admin/sync.py's `SyncReads` protocol names them):
    async def group_member_ids(tenant_id, group_id) -> frozenset[str]     # transitive user members
    async def not_resettable_ids(tenant_id) -> Mapping[str, tuple[str, ...]]  # user id -> ResetRefusal values
    async def count_users(tenant_id) -> int | None                         # /users/$count, for progress
    async def group_names(tenant_id, group_ids) -> Mapping[str, str | None]  # None: no such group
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from graph import mapping
from graph.context_loader import EVENTUAL, relative_url
from graph.directory import DirectoryError, GraphUnavailable, ResetRefusal
from graph.roles import is_privileged_role
from graph.tokens import TokenError, TokenSource

CALL_TIMEOUT_S = 60.0
MAX_PAGES = 10_000  # a runaway paging loop (a link that never ends) stops here


class GroupNotFound(DirectoryError):
    def __init__(self, group_id: str):
        super().__init__(f"No group {group_id} in the directory.")
        self.group_id = group_id


class GraphSyncReads:
    def __init__(self, tokens: TokenSource, http: httpx.AsyncClient, graph_url: str) -> None:
        self._tokens = tokens
        self._http = http
        self._graph_url = graph_url.rstrip("/")

    async def _get(self, tenant_id: str, url: str, what: str, *, permission: str,
                   headers: Mapping[str, str] | None = None, not_found: DirectoryError | None = None) -> Any:
        target = url if url.startswith(("https://", "http://")) else self._graph_url + url
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                token = await self._tokens.for_tenant(tenant_id, self._graph_url).get_authorization_token(target)
                response = await self._http.get(target, headers={"Authorization": f"Bearer {token}",
                                                                 "Accept": "application/json", **(headers or {})})
        except TokenError as err:
            raise GraphUnavailable(f"no token: {err.code}") from None
        except TimeoutError:
            raise GraphUnavailable(f"{what}: timed out") from None
        except httpx.HTTPError as err:
            raise GraphUnavailable(f"{what}: connection failed ({type(err).__name__})") from None
        if response.status_code == 404 and not_found is not None:
            raise not_found
        if response.status_code >= 400:
            raise GraphUnavailable(f"{what}: {_reason(response, permission)}")
        if response.headers.get("content-type", "").startswith("text/plain"):
            return response.text
        try:
            return response.json()
        except ValueError:
            raise GraphUnavailable(f"{what}: an answer that is not JSON") from None

    async def _all(self, tenant_id: str, url: str, what: str, *, permission: str,
                   headers: Mapping[str, str] | None = None,
                   not_found: DirectoryError | None = None) -> list[mapping.Json]:
        items: list[mapping.Json] = []
        link: str | None = url
        for _ in range(MAX_PAGES):
            if link is None:
                return items
            body = await self._get(tenant_id, link, what, permission=permission, headers=headers,
                                   not_found=not_found)
            items += mapping.values(body)
            next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
            link = str(next_link) if next_link else None
        raise GraphUnavailable(f"{what}: more than {MAX_PAGES} pages")

    async def group_member_ids(self, tenant_id: str, group_id: str) -> frozenset[str]:
        """The ids of the users in the group, directly or through nested groups. Raises GroupNotFound."""
        url = relative_url(f"/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user",
                           {"$select": "id", "$top": "999", "$count": "true"})
        members = await self._all(tenant_id, url, "group members", permission="GroupMember.Read.All",
                                  headers=EVENTUAL, not_found=GroupNotFound(group_id))
        return frozenset(str(m["id"]).lower() for m in members if m.get("id"))

    async def not_resettable_ids(self, tenant_id: str) -> dict[str, tuple[str, ...]]:
        """Users the helpdesk must never reset, with why: a privileged role held directly or through a
        role-assignable group ("privileged_admin"), or membership of a role-assignable group
        ("role_assignable_group"). Federated users are told apart by the sync itself (onPremisesSyncEnabled)."""
        url = relative_url("/roleManagement/directory/roleAssignments",
                           {"$select": "id,principalId,roleDefinitionId", "$expand": "roleDefinition",
                            "$top": "999"})
        groups_url = relative_url("/groups", {"$filter": "isAssignableToRole eq true", "$select": "id",
                                              "$top": "999"})
        assignments, groups = await asyncio.gather(
            self._all(tenant_id, url, "role assignments", permission="RoleManagement.Read.Directory"),
            self._all(tenant_id, groups_url, "role-assignable groups", permission="Group.Read.All"))
        privileged_principals = {str(a.get("principalId", "")).lower() for a in assignments
                                 if is_privileged_role(mapping.role_template(a))}
        role_groups = sorted({str(g["id"]).lower() for g in groups if g.get("id")})
        reasons: dict[str, set[str]] = {}
        for principal in privileged_principals - set(role_groups):
            reasons.setdefault(principal, set()).add(ResetRefusal.PRIVILEGED.value)
        memberships = await asyncio.gather(*(self._members_if_any(tenant_id, g) for g in role_groups))
        for group_id, members in zip(role_groups, memberships, strict=True):
            for member in members:
                found = reasons.setdefault(member, set())
                found.add(ResetRefusal.ROLE_ASSIGNABLE_GROUP.value)
                if group_id in privileged_principals:
                    found.add(ResetRefusal.PRIVILEGED.value)
        return {user_id: tuple(sorted(why)) for user_id, why in reasons.items()}

    async def _members_if_any(self, tenant_id: str, group_id: str) -> frozenset[str]:
        try:
            return await self.group_member_ids(tenant_id, group_id)
        except GroupNotFound:
            return frozenset()  # deleted between the two reads

    async def count_users(self, tenant_id: str) -> int | None:
        """How many users the tenant has (None if Graph will not say): the progress bar's total."""
        try:
            body = await self._get(tenant_id, "/users/$count", "user count", permission="User.Read.All",
                                   headers=EVENTUAL)
        except GraphUnavailable:
            return None
        return mapping.count_value(body)

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> dict[str, str | None]:
        """Each group's display name; None for a group that does not exist."""
        names: dict[str, str | None] = {}
        for group_id in dict.fromkeys(group_ids):
            url = relative_url(f"/groups/{quote(group_id, safe='')}", {"$select": "id,displayName"})
            try:
                body = await self._get(tenant_id, url, "group", permission="Group.Read.All",
                                       not_found=GroupNotFound(group_id))
            except GroupNotFound:
                names[group_id] = None
                continue
            names[group_id] = str(body.get("displayName") or group_id) if isinstance(body, dict) else group_id
        return names


def _reason(response: httpx.Response, permission: str) -> str:
    status = response.status_code
    if status == 403:
        return f"403: {permission} not granted"
    if status == 429:
        return "throttled"
    if status in (503, 504):
        return "service unavailable"
    if status == 401:
        return "401: the token was refused"
    code = ""
    try:
        error = response.json().get("error") or {}
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
    except ValueError:
        pass
    return f"{status}: {code or 'error'}"
