"""Graph v1.0's directory: users, groups, memberships, the org chart, delta, the tenant itself.

    GET  /users  /users/$count  /users/{id|upn}  (+ $expand=manager / directReports)
    GET  /users/{id}/manager  /users/{id}/directReports
    GET  /users/{id}/memberOf  /users/{id}/transitiveMemberOf  (+ /microsoft.graph.group, + /$count)
    POST /users/{id}/checkMemberGroups
    GET  /users/delta  (nextLink pages -> deltaLink; later rounds: changes and @removed; manager@delta)
    GET  /groups/delta (the same, with members@delta: members added, and removed with @removed)
    GET  /groups  /groups/$count  /groups/{id}  /groups/{id}/members  /groups/{id}/transitiveMembers (+ casts, $count)
    GET  /organization  /domains  /servicePrincipals  /servicePrincipals(appId='...')
    *    /me...  (400: app-only tokens have no signed-in user)

Query rules follow Graph's "advanced queries" for directory objects (see odata.py).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any

from devtenant.graph_api.odata import (
    FilterRules,
    advanced,
    apply_search,
    check_select,
    context_url,
    eventual,
    expand_options,
    link,
    order_by,
    page,
    page_size,
    parse_filter,
    parse_search,
    project,
    require_advanced,
    require_count_segment,
    select,
    unknown_property,
    unsupported,
)
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, bad_request, not_found
from devtenant.graph_api.serialize import (
    DIRECTORY_OBJECT_PROPERTIES,
    DIRECTORY_READ,
    GROUP_PROPERTIES,
    GROUP_READ,
    GROUP_TYPE,
    USER_DEFAULT,
    USER_PROPERTIES,
    USER_READ,
    USER_READ_FULL,
    USER_TYPE,
    UserView,
    directory_role_json,
    domain_json,
    group_json,
    organization_json,
    render_directory_object,
    render_user,
    service_principals,
)
from devtenant.model import Group, Org, RoleDefinition, User

PAGE, MAX_PAGE = 100, 999
EXPANDED_REPORTS_CAP = 20  # Graph returns at most 20 objects for an expanded collection
CHECK_MEMBER_GROUPS_MAX = 20

# Application permissions per route (any one alternative; a tuple needs all of its members).
MEMBER_OF = ("User.Read.All", "GroupMember.Read.All", "Group.Read.All", *DIRECTORY_READ)
CHECK_MEMBER_GROUPS = (("User.Read.All", "GroupMember.Read.All"), ("User.Read.All", "Group.Read.All"),
                       *DIRECTORY_READ)
ORGANIZATION_READ = ("Organization.Read.All", "Organization.ReadWrite.All", *DIRECTORY_READ)
DOMAIN_READ = ("Domain.Read.All", "Domain.ReadWrite.All", *DIRECTORY_READ)
APPLICATION_READ = ("Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy",
                    *DIRECTORY_READ)

USER_FILTERABLE = ("id", "accountEnabled", "displayName", "givenName", "surname", "mail", "userPrincipalName",
                   "mailNickname", "jobTitle", "department", "employeeId", "city", "country", "usageLocation",
                   "userType", "createdDateTime", "onPremisesSyncEnabled", "onPremisesImmutableId",
                   "officeLocation", "companyName", "mobilePhone", "businessPhones", "proxyAddresses",
                   "otherMails", "identities", "state", "preferredLanguage", "employeeType")
USER_SEARCHABLE = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "mailNickname",
                   "jobTitle", "department", "employeeId")
USER_SORTABLE = ("displayName", "userPrincipalName")
USER_SORTABLE_ADVANCED = (*USER_SORTABLE, "createdDateTime")
GROUP_FILTERABLE = ("id", "displayName", "description", "groupTypes", "mail", "mailEnabled", "mailNickname",
                    "securityEnabled", "visibility", "isAssignableToRole", "createdDateTime", "proxyAddresses",
                    "onPremisesSyncEnabled")
GROUP_SEARCHABLE = ("displayName", "description", "mail", "mailNickname")
OBJECT_FILTERABLE = (*USER_FILTERABLE, *GROUP_FILTERABLE, "roleTemplateId")
OBJECT_SEARCHABLE = (*USER_SEARCHABLE, *GROUP_SEARCHABLE)

GROUP_CASTS = ("microsoft.graph.group", "graph.group")
USER_CASTS = ("microsoft.graph.user", "graph.user")
DELTA_PATHS = ("/users/delta", "/users/delta()", "/users/microsoft.graph.delta", "/users/microsoft.graph.delta()")
GROUP_DELTA_PATHS = ("/groups/delta", "/groups/delta()", "/groups/microsoft.graph.delta",
                     "/groups/microsoft.graph.delta()")

DirectoryObject = User | Group | RoleDefinition


def register(router: Router) -> None:
    route = router.route
    for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        for pattern in ("/me", "/me/{a}", "/me/{a}/{b}", "/me/{a}/{b}/{c}", "/me/{a}/{b}/{c}/{d}"):
            route(method, pattern, permissions=())(me_without_user)

    # users (delta and $count before /users/{id}, which would match them too)
    delta = UserDelta()
    for path in DELTA_PATHS:
        route("GET", path, permissions=USER_READ_FULL)(delta.handle)
    groups_delta = GroupDelta()  # Graph's least privilege for it is GroupMember.Read.All
    for path in GROUP_DELTA_PATHS:
        route("GET", path, permissions=GROUP_READ)(groups_delta.handle)
    route("GET", "/users", permissions=USER_READ)(list_users)
    route("GET", "/users/$count", permissions=USER_READ)(count_users)
    route("GET", "/users/{id}", permissions=USER_READ)(get_user)
    route("GET", "/users/{id}/manager", permissions=USER_READ_FULL)(get_manager)
    route("GET", "/users/{id}/directReports", permissions=USER_READ_FULL)(partial(user_relation, "directReports"))
    route("GET", "/users/{id}/directReports/$count", permissions=USER_READ_FULL)(
        partial(user_relation, "directReports", count=True))
    for relation in ("memberOf", "transitiveMemberOf"):
        route("GET", f"/users/{{id}}/{relation}", permissions=MEMBER_OF)(partial(user_relation, relation))
        route("GET", f"/users/{{id}}/{relation}/$count", permissions=MEMBER_OF)(
            partial(user_relation, relation, count=True))
        for cast in GROUP_CASTS:
            route("GET", f"/users/{{id}}/{relation}/{cast}", permissions=MEMBER_OF)(
                partial(user_relation, relation, cast=GROUP_TYPE))
            route("GET", f"/users/{{id}}/{relation}/{cast}/$count", permissions=MEMBER_OF)(
                partial(user_relation, relation, cast=GROUP_TYPE, count=True))
    route("POST", "/users/{id}/checkMemberGroups", permissions=CHECK_MEMBER_GROUPS)(check_member_groups)

    # groups
    route("GET", "/groups", permissions=GROUP_READ)(list_groups)
    route("GET", "/groups/$count", permissions=GROUP_READ)(count_groups)
    route("GET", "/groups/{id}", permissions=GROUP_READ)(get_group)
    for relation in ("members", "transitiveMembers"):
        route("GET", f"/groups/{{id}}/{relation}", permissions=GROUP_READ)(partial(group_relation, relation))
        route("GET", f"/groups/{{id}}/{relation}/$count", permissions=GROUP_READ)(
            partial(group_relation, relation, count=True))
        for casts, type_name in ((GROUP_CASTS, GROUP_TYPE), (USER_CASTS, USER_TYPE)):
            for cast in casts:
                route("GET", f"/groups/{{id}}/{relation}/{cast}", permissions=GROUP_READ)(
                    partial(group_relation, relation, cast=type_name))
                route("GET", f"/groups/{{id}}/{relation}/{cast}/$count", permissions=GROUP_READ)(
                    partial(group_relation, relation, cast=type_name, count=True))

    # the tenant
    route("GET", "/organization", permissions=ORGANIZATION_READ)(list_organization)
    route("GET", "/organization/{id}", permissions=ORGANIZATION_READ)(get_organization)
    route("GET", "/domains", permissions=DOMAIN_READ)(list_domains)
    route("GET", "/domains/{id}", permissions=DOMAIN_READ)(get_domain)
    route("GET", "/servicePrincipals", permissions=APPLICATION_READ)(list_service_principals)
    route("GET", "/servicePrincipals(appId='{app_id}')", permissions=APPLICATION_READ)(get_service_principal)
    route("GET", "/servicePrincipals/{id}", permissions=APPLICATION_READ)(get_service_principal)


async def me_without_user(req: GraphRequest) -> GraphResponse:
    raise bad_request("/me request is only valid with delegated authentication flow.")


# --- helpers -------------------------------------------------------------------------------------
def _missing(key: str) -> GraphError:
    return not_found(f"Resource '{key}'")


def _user(req: GraphRequest) -> User:
    key = req.params["id"]
    user = req.state.org.user(key)
    if user is None:
        raise _missing(key)
    return user


def _group(req: GraphRequest) -> Group:
    key = req.params["id"]
    group = req.state.org.groups.get(key) or next(
        (g for gid, g in req.state.org.groups.items() if gid.lower() == key.lower()), None)
    if group is None:
        raise _missing(key)
    return group


def _entity(req: GraphRequest, fragment: str, obj: Mapping[str, Any]) -> GraphResponse:
    return GraphResponse(body={"@odata.context": context_url(req, fragment, entity=True), **obj})


def _count_response(n: int) -> GraphResponse:
    return GraphResponse(body=str(n))


def _json_view(json_of: Callable[[Any], Mapping[str, Any]]) -> Callable[[Any], Mapping[str, Any]]:
    """Memoised JSON of each object, so $search, $filter and $orderby serialise it once."""
    cache: dict[int, Mapping[str, Any]] = {}

    def view(obj: Any) -> Mapping[str, Any]:
        key = id(obj)
        if key not in cache:
            cache[key] = json_of(obj)
        return cache[key]

    return view


def _object_json(org: Org) -> Callable[[DirectoryObject], Mapping[str, Any]]:
    def json_of(obj: DirectoryObject) -> Mapping[str, Any]:
        if isinstance(obj, User):
            return UserView(obj, typed=True)
        if isinstance(obj, Group):
            return group_json(obj, typed=True)
        return directory_role_json(org, obj)

    return _json_view(json_of)


def _query(req: GraphRequest, items: list[Any], *, view: Callable[[Any], Mapping[str, Any]], resource: str,
           filterable: Collection[str], searchable: Collection[str], sortable: Collection[str],
           relationship: bool, counting: bool = False, filtered: bool = False) -> list[Any]:
    """$search, $filter and $orderby with the directory's advanced-query rules.

    Top-level collections (/users, /groups) filter by default; relationships (memberOf, members,
    directReports) need the advanced query parameters for $filter and $orderby. A /$count segment
    with ConsistencyLevel counts as an advanced query. `filtered`: the items are exactly those the $filter
    keeps (an index answered it), so the filter is only checked, not run again.
    """
    is_advanced = eventual(req) if counting else advanced(req)
    has_filter = "$filter" in req.query or "$search" in req.query
    if not counting and not is_advanced and "$orderby" in req.query and (relationship or has_filter):
        raise unsupported("Sorting not supported for current query.")
    if relationship and not counting and "$filter" in req.query:
        require_advanced(req, "$filter on this relationship")
    items = apply_search(items, req, searchable, key=view)
    raw = req.query.get("$filter")
    if raw is not None:
        rules = FilterRules(properties=filterable, resource=resource, directory=True, advanced=is_advanced)
        predicate = parse_filter(raw, rules)
        if not filtered:
            items = [item for item in items if predicate(view(item))]
    return order_by(items, req, sortable, key=view) if not counting else items


def _no_expand_with_advanced(req: GraphRequest) -> None:
    if "$expand" in req.query and eventual(req):
        raise unsupported("$expand is not supported with advanced queries (ConsistencyLevel: eventual).")


# --- users ---------------------------------------------------------------------------------------
def _with_expansions(user: User, req: GraphRequest, obj: dict[str, Any]) -> dict[str, Any]:
    """$expand=manager / directReports (directReports capped at 20), each optionally with its own $select."""
    org = req.state.org
    for name, options in expand_options(req).items():
        relation = name.lower()
        if relation not in ("manager", "directreports"):
            raise unknown_property(name, USER_TYPE)
        if set(options) - {"$select"}:
            raise unsupported(f"Only $select is supported inside $expand=({name}).")
        if not any(r in req.roles for r in USER_READ_FULL):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        names = [n.strip() for n in options.get("$select", "*").split(",") if n.strip()]
        if relation == "manager":
            manager = org.users.get(user.manager_id) if user.manager_id else None
            if manager is not None:
                obj["manager"] = render_user(manager, req, names=names, typed=True)
        else:
            reports = org.direct_reports(user.id)[:EXPANDED_REPORTS_CAP]
            obj["directReports"] = [render_user(r, req, names=names, typed=True) for r in reports]
    return obj


def _directory_users(req: GraphRequest, *, ordered: bool = True) -> tuple[list[User], bool]:
    """The users a /users query reads: the whole directory, or, when its $filter or $search is a simple
    indexed predicate, only the users that may match (in directory order unless not `ordered`; `_query`
    then runs as over all). The flag: the users are exactly the $filter's matches (every part indexed)."""
    org = req.state.org
    index = org.user_index
    everyone = (list(org.users.values()), False)
    if index is None or len(index) != len(org.users):
        return everyone
    narrowed: set[str] | None = None
    exact = False
    try:
        raw = req.query.get("$search")
        if raw is not None:
            narrowed = index.search_ids(getattr(parse_search(raw, USER_SEARCHABLE), "groups", [[("", [])]]))
        raw = req.query.get("$filter")
        if raw is not None:
            rules = FilterRules(properties=USER_FILTERABLE, resource="User", directory=True, advanced=True)
            found = index.filter_ids(getattr(parse_filter(raw, rules), "hint", None))
            if found is not None:
                ids, exact = found
                narrowed = ids if narrowed is None else narrowed & ids
    except GraphError:
        return everyone  # `_query` answers the error, as it would have
    if narrowed is None:
        return everyone
    users = org.users
    ids = index.in_order(narrowed) if ordered else narrowed
    return [users[i] for i in ids if i in users], exact


async def list_users(req: GraphRequest) -> GraphResponse:
    _no_expand_with_advanced(req)
    check_select(req, USER_PROPERTIES, USER_TYPE)
    view = _json_view(UserView)
    sortable = USER_SORTABLE_ADVANCED if advanced(req) else USER_SORTABLE
    users, filtered = _directory_users(req)
    users = _query(req, users, view=view, resource="User", filterable=USER_FILTERABLE,
                   searchable=USER_SEARCHABLE, sortable=sortable, relationship=False, filtered=filtered)
    return page(req, users, default_size=PAGE, max_size=MAX_PAGE, context="users",
                render=lambda u: _with_expansions(u, req, render_user(u, req)))


async def count_users(req: GraphRequest) -> GraphResponse:
    require_count_segment(req)
    users, filtered = _directory_users(req, ordered=False)
    users = _query(req, users, view=_json_view(UserView), resource="User", filterable=USER_FILTERABLE,
                   searchable=USER_SEARCHABLE, sortable=(), relationship=False, counting=True, filtered=filtered)
    return _count_response(len(users))


async def get_user(req: GraphRequest) -> GraphResponse:
    user = _user(req)
    return _entity(req, "users", _with_expansions(user, req, render_user(user, req)))


async def get_manager(req: GraphRequest) -> GraphResponse:
    user = _user(req)
    manager = req.state.org.users.get(user.manager_id) if user.manager_id else None
    if manager is None:
        raise _missing("manager")
    return _entity(req, "directoryObjects", render_user(manager, req, typed=True))


def _user_relation_objects(org: Org, user: User, relation: str) -> list[DirectoryObject]:
    if relation == "directReports":
        return list(org.direct_reports(user.id))
    if relation == "memberOf":
        groups: list[Group] = org.member_of(user.id)
        principals = [user.id]
    else:
        groups = org.transitive_member_of(user.id)
        principals = [user.id, *(g.id for g in groups)]
    roles: dict[str, RoleDefinition] = {}
    for principal in principals:
        for role in org.roles_of(principal):
            roles.setdefault(role.id, role)
    return [*groups, *roles.values()]


async def user_relation(relation: str, req: GraphRequest, *, cast: str | None = None,
                        count: bool = False) -> GraphResponse:
    """directReports, memberOf, transitiveMemberOf: collections of directory objects."""
    org = req.state.org
    objects = _user_relation_objects(org, _user(req), relation)
    return _relation(req, objects, cast=cast, count=count)


def _relation(req: GraphRequest, objects: list[DirectoryObject], *, cast: str | None,
              count: bool) -> GraphResponse:
    org = req.state.org
    if cast == GROUP_TYPE:
        objects = [o for o in objects if isinstance(o, Group)]
    elif cast == USER_TYPE:
        objects = [o for o in objects if isinstance(o, User)]
    if count:
        require_count_segment(req)
    elif cast:
        require_advanced(req, f"The OData cast to '{cast}'")
    known = {GROUP_TYPE: GROUP_PROPERTIES, USER_TYPE: USER_PROPERTIES}.get(cast or "", DIRECTORY_OBJECT_PROPERTIES)
    check_select(req, known, cast or "microsoft.graph.directoryObject")
    objects = _query(req, objects, view=_object_json(org), resource="DirectoryObject",
                     filterable=OBJECT_FILTERABLE, searchable=OBJECT_SEARCHABLE, sortable=("displayName",),
                     relationship=True, counting=count)
    if count:
        return _count_response(len(objects))
    fragment = {GROUP_TYPE: "groups", USER_TYPE: "users"}.get(cast or "", "directoryObjects")
    return page(req, objects, default_size=PAGE, max_size=MAX_PAGE, context=fragment,
                render=lambda o: render_directory_object(o, req, org))


async def check_member_groups(req: GraphRequest) -> GraphResponse:
    user = _user(req)
    body = req.body
    ids = body.get("groupIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("The request body must be a JSON object with a 'groupIds' string array.",
                          "Request_BadRequest")
    if len(ids) > CHECK_MEMBER_GROUPS_MAX:
        raise bad_request(f"The number of group ids must not exceed {CHECK_MEMBER_GROUPS_MAX}.",
                          "Request_BadRequest")
    member_of = {g.id.lower() for g in req.state.org.transitive_member_of(user.id)}
    value = [i for i in ids if i.lower() in member_of]
    return GraphResponse(body={"@odata.context": f"{req.base_url}/$metadata#Collection(Edm.String)",
                               "value": value})


# --- groups --------------------------------------------------------------------------------------
async def list_groups(req: GraphRequest) -> GraphResponse:
    _no_expand_with_advanced(req)
    if "$expand" in req.query:
        raise unsupported("$expand on /groups is not supported by devtenant.")
    check_select(req, GROUP_PROPERTIES, GROUP_TYPE)
    view = _json_view(group_json)
    groups = _query(req, list(req.state.org.groups.values()), view=view, resource="Group",
                    filterable=GROUP_FILTERABLE, searchable=GROUP_SEARCHABLE, sortable=("displayName",),
                    relationship=False)
    return page(req, groups, default_size=PAGE, max_size=MAX_PAGE, context="groups",
                render=lambda g: select(group_json(g), req, type_name=GROUP_TYPE))


async def count_groups(req: GraphRequest) -> GraphResponse:
    require_count_segment(req)
    groups = _query(req, list(req.state.org.groups.values()), view=_json_view(group_json), resource="Group",
                    filterable=GROUP_FILTERABLE, searchable=GROUP_SEARCHABLE, sortable=(), relationship=False,
                    counting=True)
    return _count_response(len(groups))


async def get_group(req: GraphRequest) -> GraphResponse:
    return _entity(req, "groups", select(group_json(_group(req)), req, type_name=GROUP_TYPE))


def _group_members(org: Org, group: Group, transitive: bool) -> list[DirectoryObject]:
    def direct(g: Group) -> list[DirectoryObject]:
        out: list[DirectoryObject] = []
        for member_id in g.member_ids:
            member = org.users.get(member_id) or org.groups.get(member_id)
            if member is not None:
                out.append(member)
        return out

    if not transitive:
        return direct(group)
    seen: dict[str, DirectoryObject] = {}
    stack, visited = [group], {group.id}
    while stack:
        for member in direct(stack.pop()):
            if member.id not in seen:
                seen[member.id] = member
            if isinstance(member, Group) and member.id not in visited:
                visited.add(member.id)
                stack.append(member)
    return list(seen.values())


async def group_relation(relation: str, req: GraphRequest, *, cast: str | None = None,
                         count: bool = False) -> GraphResponse:
    org = req.state.org
    members = _group_members(org, _group(req), transitive=relation == "transitiveMembers")
    return _relation(req, members, cast=cast, count=count)


# --- the tenant ----------------------------------------------------------------------------------
async def list_organization(req: GraphRequest) -> GraphResponse:
    obj = select(organization_json(req.state.org), req, type_name="microsoft.graph.organization")
    return GraphResponse(body={"@odata.context": context_url(req, "organization"), "value": [obj]})


async def get_organization(req: GraphRequest) -> GraphResponse:
    if req.params["id"].lower() != req.state.tenant_id.lower():
        raise _missing(req.params["id"])
    return _entity(req, "organization", select(organization_json(req.state.org), req,
                                               type_name="microsoft.graph.organization"))


async def list_domains(req: GraphRequest) -> GraphResponse:
    values = [select(domain_json(d), req, type_name="microsoft.graph.domain") for d in req.state.org.domains]
    return GraphResponse(body={"@odata.context": context_url(req, "domains"), "value": values})


async def get_domain(req: GraphRequest) -> GraphResponse:
    key = req.params["id"].lower()
    domain = next((d for d in req.state.org.domains if d.id.lower() == key), None)
    if domain is None:
        raise _missing(req.params["id"])
    return _entity(req, "domains", select(domain_json(domain), req, type_name="microsoft.graph.domain"))


SP_FILTERABLE = ("id", "appId", "displayName", "servicePrincipalNames", "servicePrincipalType", "accountEnabled",
                 "appOwnerOrganizationId", "tags")


async def list_service_principals(req: GraphRequest) -> GraphResponse:
    view = _json_view(lambda sp: sp)
    sps = _query(req, service_principals(req.state), view=view, resource="ServicePrincipal",
                 filterable=SP_FILTERABLE, searchable=("displayName",), sortable=(), relationship=False)
    return page(req, sps, default_size=PAGE, max_size=MAX_PAGE, context="servicePrincipals",
                render=lambda sp: select(sp, req, type_name="microsoft.graph.servicePrincipal"))


async def get_service_principal(req: GraphRequest) -> GraphResponse:
    if "app_id" in req.params:
        key, field = req.params["app_id"], "appId"
    else:
        key, field = req.params["id"], "id"
    sp = next((s for s in service_principals(req.state) if s[field].lower() == key.lower()), None)
    if sp is None:
        raise _missing(key)
    return _entity(req, "servicePrincipals", select(sp, req, type_name="microsoft.graph.servicePrincipal"))


# --- /users/delta and /groups/delta ----------------------------------------------------------------
class _DeltaTokens:
    """The opaque, signed state tokens of one kind of delta round (users or groups).

    A token carries the initial request's $select/$filter/$top, the org version the round started from and where
    the page stopped. A token from another run of devtenant (its generation differs) answers 410 Gone with a
    Location to start over; a deltaLink older than `delta_token_lifetime_s` answers 400 syncStateNotFound, as
    Graph does after about seven days."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.generation = uuid.uuid4().hex[:12]
        # The entries of the rounds being walked, sorted once per (org version, starting point, filter) rather than
        # on every page: the 500 pages of a 50,000-person round would each sort 50,000 entries.
        self._sorted: OrderedDict[tuple[Any, ...], tuple[list[tuple[int, str, Any]], list[tuple[int, str]]]] = \
            OrderedDict()

    def entries(self, org: Org, since: int, flt: str | None,
                build: Callable[[], list[tuple[int, str, Any]]]) -> tuple[list[tuple[int, str, Any]],
                                                                         list[tuple[int, str]]]:
        """`build()`'s entries filtered and sorted by (version, id), and their (version, id) keys, memoised."""
        key = (id(org), org.version, since, flt)
        found = self._sorted.get(key)
        if found is None:
            entries = _changed(build(), since, flt)
            found = self._sorted[key] = (entries, [(e[0], e[1]) for e in entries])
            while len(self._sorted) > 4:
                self._sorted.popitem(last=False)
        return found

    def _key(self, req: GraphRequest) -> bytes:
        return hashlib.sha256(f"devtenant{self.path}/{req.state.tenant_id}".encode()).digest()

    def encode(self, req: GraphRequest, state: Mapping[str, Any]) -> str:
        raw = json.dumps({"g": self.generation, **state}, separators=(",", ":")).encode()
        mac = hmac.new(self._key(req), raw, hashlib.sha256).digest()[:12]
        return (base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "."
                + base64.urlsafe_b64encode(mac).rstrip(b"=").decode())

    def decode(self, req: GraphRequest, token: str) -> dict[str, Any]:
        invalid = GraphError(400, "Request_BadRequest", "Invalid delta token or skip token.")
        try:
            body, _, sig = token.partition(".")
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            mac = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            state = json.loads(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid from None
        expected = hmac.new(self._key(req), raw, hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(mac, expected) or not isinstance(state, dict) \
                or not isinstance(state.get("v"), int):
            raise invalid
        issued = state.get("at")
        lifetime = req.state.config.delta_token_lifetime_s
        if "$deltatoken" in req.query and isinstance(issued, (int, float)) and time.time() - issued > lifetime:
            # Graph keeps a directory delta token for about seven days; after that the client must start over.
            raise GraphError(400, "syncStateNotFound", "The sync state generation is not found. The delta token is "
                             "expired and data must be synchronized again.")
        if state.get("g") != self.generation or state.get("v", -1) > req.state.org.version:
            restart = link(req, self.path, drop=("$deltatoken", "$skiptoken"),
                           extra={k: v for k, v in (("$select", state.get("sel")), ("$filter", state.get("f")))
                                  if v})
            raise GraphError(410, "SyncStateNotFound", "The sync state is no longer valid: start a new "
                             "delta round without a token.", headers={"Location": restart})
        return state

    def begin(self, req: GraphRequest, properties: Collection[str], type_name: str) -> dict[str, Any]:
        """The state of a round the request starts: a token's, or a new round's from its query."""
        token = req.query.get("$deltatoken") or req.query.get("$skiptoken")
        if token:
            state = self.decode(req, token)
            if "$deltatoken" in req.query:
                state = {**state, "c": None}  # a new round from the stored version
            return state
        sel = req.query.get("$select")
        flt = req.query.get("$filter")
        if sel is not None:
            check_select(req, properties, type_name)
        if flt is not None:
            parse_filter(flt, FilterRules(properties=("id",), resource=type_name.rsplit(".", 1)[-1].title(),
                                          functions=(), directory=True, advanced=False))
        if any(k in req.query for k in ("$search", "$orderby", "$expand", "$count")):
            raise unsupported("This query is not supported on delta.")
        return {"v": -1, "c": None, "sel": sel, "f": flt, "t": page_size(req, PAGE, MAX_PAGE)}

    def links(self, req: GraphRequest, state: Mapping[str, Any], cursor: list[Any] | None) -> dict[str, str]:
        """The page's nextLink (more to come from `cursor`) or, at the round's end, its deltaLink."""
        if cursor is not None:
            nxt = self.encode(req, {**state, "c": cursor})
            return {"@odata.nextLink": f"{req.base_url}{self.path}?$skiptoken={nxt}"}
        delta = self.encode(req, {**state, "v": req.state.org.version, "c": None, "at": round(time.time())})
        return {"@odata.deltaLink": f"{req.base_url}{self.path}?$deltatoken={delta}"}


def _selected(sel: str | None, default: Sequence[str]) -> list[str]:
    if not sel:
        return list(default)
    names = [n.strip() for n in sel.split(",") if n.strip()]
    return names if any(n.lower() == "id" for n in names) else [*names, "id"]


def _changed(entries: list[tuple[int, str, Any]], since: int, flt: str | None) -> list[tuple[int, str, Any]]:
    if flt:
        predicate = parse_filter(flt, FilterRules(properties=("id",), functions=()))
        entries = [e for e in entries if predicate({"id": e[1]})]
    entries.sort(key=lambda e: (e[0], e[1]))
    return entries


def _reference(obj: DirectoryObject | None, oid: str, *, removed: bool = False) -> dict[str, Any]:
    """An entry of manager@delta or members@delta: the object's type and id, `@removed` when it left."""
    type_name = GROUP_TYPE if isinstance(obj, Group) else USER_TYPE
    out: dict[str, Any] = {"@odata.type": f"#{type_name}", "id": oid}
    if removed:
        out["@removed"] = {"reason": "deleted"}
    return out


class UserDelta:
    """Graph's change tracking for users (`GET /users/delta`).

    A round walks entries ordered by (version, id): every live user on the initial round (plus users deleted
    earlier, as `@removed`), then only users whose `version` moved past the round's starting point and users
    removed since. Pages chain with `$skiptoken`; the last page carries `@odata.deltaLink` with a `$deltatoken`
    holding the org's version, where the next round starts. `manager` in $select tracks the manager: each user
    returned carries `manager@delta` (a list of one reference, empty when the user has none).
    """

    PROPERTIES = (*USER_PROPERTIES, "manager")

    def __init__(self) -> None:
        self.tokens = _DeltaTokens("/users/delta")

    async def handle(self, req: GraphRequest) -> GraphResponse:
        org = req.state.org
        state = self.tokens.begin(req, self.PROPERTIES, USER_TYPE)
        names = _selected(state.get("sel"), USER_DEFAULT)
        manager = any(n.lower() == "manager" for n in names)
        names = [n for n in names if n.lower() != "manager"]
        since = int(state["v"])

        def build() -> list[tuple[int, str, Any]]:
            found: list[tuple[int, str, Any]] = [
                (u.version, u.id, u) for u in org.users.values() if since < 0 or u.version > since]
            return found + [(v, uid, None) for uid, v in org.removed_users.items()
                            if uid not in org.users and (since < 0 or v > since)]

        entries, keys = self.tokens.entries(org, since, state.get("f"), build)
        cursor = tuple(state["c"]) if state.get("c") else None
        start = bisect.bisect_right(keys, (int(cursor[0]), str(cursor[1]))) if cursor is not None else 0
        size = int(state.get("t") or PAGE)
        chunk, rest = entries[start:start + size], start + size < len(entries)
        body: dict[str, Any] = {"@odata.context": f"{req.base_url}/$metadata#users"
                                + (f"({','.join(n for n in names if n != 'id')})" if state.get("sel") else "")}
        body.update(self.tokens.links(req, state, [chunk[-1][0], chunk[-1][1]] if rest else None))
        body["value"] = [self._item(req, user, uid, names, manager) for _, uid, user in chunk]
        return GraphResponse(body=body)

    @staticmethod
    def _item(req: GraphRequest, user: User | None, uid: str, names: Sequence[str],
              manager: bool) -> dict[str, Any]:
        if user is None:
            return {"id": uid, "@removed": {"reason": "changed"}}
        out = render_user(user, req, names=names)
        if manager:
            boss = req.state.org.users.get(user.manager_id) if user.manager_id else None
            out["manager@delta"] = [_reference(boss, boss.id)] if boss is not None else []
        return out


class GroupDelta:
    """Graph's change tracking for groups (`GET /groups/delta`), membership included.

    As for users, a round walks groups ordered by (version, id): all of them on the initial round, then the
    groups changed since (a property, or a member added or removed: either moves the group's version) and the
    groups deleted since (`@removed`, reason "deleted"). With `members` in $select each group carries
    `members@delta`: on the initial round every direct member, later only the members added (plain references)
    and removed (`@removed`) since the round's starting point. A page holds at most $top groups (default 100) and
    `group_delta_members_per_page` members@delta entries: a group with more comes back on the next page, its
    properties again, with the next part of its members (the cursor remembers how far it got).
    """

    PROPERTIES = (*GROUP_PROPERTIES, "members")

    def __init__(self) -> None:
        self.tokens = _DeltaTokens("/groups/delta")

    async def handle(self, req: GraphRequest) -> GraphResponse:
        org = req.state.org
        state = self.tokens.begin(req, self.PROPERTIES, GROUP_TYPE)
        size = int(state.get("t") or PAGE)
        names = _selected(state.get("sel"), GROUP_PROPERTIES)
        members = any(n.lower() == "members" for n in names)
        names = [n for n in names if n.lower() != "members"]
        since = int(state["v"])

        def build() -> list[tuple[int, str, Any]]:
            found: list[tuple[int, str, Any]] = [
                (g.version, g.id, g) for g in org.groups.values() if since < 0 or g.version > since]
            return found + [(v, gid, None) for gid, v in org.removed_groups.items()
                            if gid not in org.groups and (since < 0 or v > since)]

        everything, keys = self.tokens.entries(org, since, state.get("f"), build)
        cursor = state.get("c")
        offset = first = 0
        if cursor:
            at = (int(cursor[0]), str(cursor[1]))
            offset = int(cursor[2]) if len(cursor) > 2 else 0
            first = bisect.bisect_left(keys, at) if offset else bisect.bisect_right(keys, at)
            if offset and (first == len(keys) or keys[first] != at):
                offset = 0  # the group changed since: its version moved, it comes again later in the round
        entries = everything[first:first + size + 1]
        budget = max(1, req.state.config.group_delta_members_per_page)
        value: list[dict[str, Any]] = []
        next_cursor: list[Any] | None = None
        for n, (version, gid, group) in enumerate(entries):
            if len(value) >= size or (members and budget <= 0):
                next_cursor = [entries[n - 1][0], entries[n - 1][1]]
                break
            if group is None:
                value.append({"id": gid, "@removed": {"reason": "deleted"}})
                continue
            item = project(group_json(group), names, type_name=GROUP_TYPE) if state.get("sel") else group_json(group)
            if members:
                part, more = self._member_refs(org, group, since, offset if n == 0 else 0, budget)
                budget -= len(part)
                item["members@delta"] = part
                value.append(item)
                if more is not None:
                    next_cursor = [version, gid, more]
                    break
            else:
                value.append(item)
        body: dict[str, Any] = {"@odata.context": f"{req.base_url}/$metadata#groups"
                                + (f"({','.join(n for n in names if n != 'id')})" if state.get("sel") else "")}
        body.update(self.tokens.links(req, state, next_cursor))
        body["value"] = value
        return GraphResponse(body=body)

    @staticmethod
    def _member_refs(org: Org, group: Group, since: int, start: int, budget: int
                     ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `budget` members@delta entries from position `start` of the group's (initial round: members;
        later: members changed since `since`), and where the next page goes on (None: none left)."""
        def obj(mid: str) -> DirectoryObject | None:
            return org.users.get(mid) or org.groups.get(mid)

        if since < 0:
            ids = group.member_ids
        else:
            ids = sorted(mid for mid, v in group.member_changes.items() if v > since)
        current = set(group.member_ids) if since >= 0 else None
        out: list[dict[str, Any]] = []
        at = start
        while at < len(ids) and len(out) < budget:
            mid = ids[at]
            at += 1
            found = obj(mid)
            if current is not None and mid not in current:
                out.append(_reference(found, mid, removed=True))
            elif found is not None:
                out.append(_reference(found, mid))
        return out, at if at < len(ids) else None
