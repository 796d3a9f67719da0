"""`GraphDirectory`: the `Directory` over Microsoft Graph (and devtenant, which only differs by URLs and CA).

One msgraph-sdk client per tenant, built on the shared HTTP client; `$select` on every query; SDK models
mapped in graph/mapping.py; `ODataError`, token and transport failures caught here and turned into
graph.directory's errors. Reading a verification's context lives in graph/context_loader.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.user import User

from graph import mapping
from graph.batch import (
    ATTEMPT_SHARE,
    MIN_ATTEMPT_S,
    RETRYABLE,
    BatchError,
    BatchItem,
    BatchResult,
    Deadline,
    GraphCalls,
    send_batch,
)
from graph.client import build_graph_client
from graph.context_loader import ContextLoader, reason
from graph.delta import REFUSED_STATUSES, BrokenPage, DeltaPage, LinkRefused, walk_delta
from graph.directory import (
    ConnectionCheck,
    DirectoryError,
    GraphHttpError,
    GraphUnavailable,
    GroupNotFound,
    GroupTooLarge,
    LoadedContext,
    OnPage,
    PermissionStatus,
    ResetOutcomeUnknown,
    ResetRefusal,
    ResetRefused,
    SyncPage,
    Unavailability,
    UserNotFound,
    cause_of_status,
    no_token,
)
from graph.limits import TtlCache
from graph.passwords import TemporaryPassword, generate_password
from graph.people_search import (
    ADDRESS_FIELDS,
    NAME_FIELDS,
    Form,
    best,
    clean,
    fetch_size,
    form_of,
    search_term,
)
from graph.permissions import PERMISSIONS, RESET_ROLES
from graph.roles import ROLE_ASSIGNMENTS, ROLE_ELIGIBILITIES, is_privileged_role, no_pim_licence
from graph.teams_apps import INSTALL_PERMISSION, NotPermitted, app_chat_id, catalog_id
from graph.tokens import TokenError, TokenSource
from graph.urls import EVENTUAL, odata_string, relative_link, relative_url
from verification.clock import Clock, utc_now
from verification.context import Person

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BUDGET_S = 8.0  # a verification's whole Graph budget
CALL_TIMEOUT_S = 15.0  # one direct call, our retries (429/503/504 after Retry-After, hangs) included
MEMBERSHIP_TIMEOUT_S = 8.0  # "is this person a helpdesk agent?": the agent is waiting for the bot's answer
MAX_ATTEMPTS = 5
READY_TIMEOUT_S = 3.0  # /readyz: a probe must answer quickly, whatever Graph does
READY_TTL_S = 10.0
# The catalog's id for Watchword changes only if an admin removes the app and uploads it again; an hour bounds that.
CATALOG_ID_TTL_S = 3600.0
BACKOFF_S = 0.25  # the first wait when Graph names none; doubled on each retry
NO_MIDDLEWARE_RETRY = {REQUEST_OPTIONS_KEY: {RetryHandlerOption.get_key(): RetryHandlerOption(0, 0, False)}}
SYNC_CALL_TIMEOUT_S = 60.0  # one call of the directory sync's (delta pages, tenant-wide reads)
MAX_PAGES = 10_000  # a runaway paging loop (a link that never ends) stops here
RESET_PERMISSION = "User-PasswordProfile.ReadWrite.All"


class GraphDirectory:
    """The `Directory` for every connected tenant, over one shared HTTP client and token source.

    `clock` is "now" for every window (meetings, mail, sign-ins); `budget_s` the default Graph time budget of
    one verification; `with_mail_subjects` reads mail subjects too (off: senders and times only). Call
    `aclose()` on shutdown: it stops the background refresh of tenant-wide facts."""

    def __init__(self, tokens: TokenSource, http: httpx.AsyncClient, graph_url: str, client_id: str,
                 clock: Clock = utc_now, *, with_mail_subjects: bool = False,
                 budget_s: float = DEFAULT_BUDGET_S, calls: GraphCalls | None = None) -> None:
        self._tokens = tokens
        self._http = http
        self._graph_url = graph_url.rstrip("/")
        self._client_id = client_id
        self._clock = clock
        self._budget_s = budget_s
        self._clients: dict[str, GraphServiceClient] = {}
        self._answers: TtlCache[tuple[GraphUnavailable | None]] = TtlCache(READY_TTL_S, max_entries=1_000)
        self._catalog_ids: TtlCache[str] = TtlCache(CATALOG_ID_TTL_S, max_entries=1_000)
        self._loader = ContextLoader(tokens=tokens, http=http, graph_url=self._graph_url, clock=clock,
                                     with_mail_subjects=with_mail_subjects, calls=calls)

    async def aclose(self) -> None:
        """Stop the background refresh of tenant-wide facts (the HTTP client and tokens belong to the caller)."""
        await self._loader.aclose()

    async def settle(self) -> None:
        """Wait until the background refresh of tenant-wide facts is done."""
        await self._loader.settle()

    def warm_up(self, tenant_id: str) -> None:
        """Start reading the tenant-wide facts in the background, so the first verification after start-up
        needs one Graph round trip rather than two."""
        self._loader.tenant_facts.refresh_soon(tenant_id)

    def _client(self, tenant_id: str) -> GraphServiceClient:
        client = self._clients.get(tenant_id)
        if client is None:
            client = build_graph_client(self._http, self._tokens.for_tenant(tenant_id, self._graph_url),
                                        self._graph_url)
            self._clients[tenant_id] = client
        return client

    # --- finding the caller ------------------------------------------------------------------------------
    async def find_people(self, tenant_id: str, text: str, limit: int = 10) -> list[Person]:
        """The people `text` finds (graph/people_search.py says how), best first. From the tenant's directory snapshot
        when it is complete and finds someone (disabled accounts and guests included, as Graph finds them): the agent
        waits for no Graph round trip. Else from Graph, which also holds anyone created since the last delta round.
        Either way the start then reads the person's live profile, so who was disabled or deleted since the snapshot
        is refused or reported gone there."""
        query = clean(text)
        if not query or limit < 1:
            return []
        held = self._loader.tenant_facts.directory(tenant_id)
        if held is not None:
            found = held.people_index.find(query, limit)
            if found:
                return found
        params = {"$select": ",".join(mapping.PERSON_FIELDS), "$top": str(fetch_size(limit))}
        headers: dict[str, str] = {}
        form = form_of(query)
        if form is Form.WORDS:
            # Every word must start a word of the display name, in any order ("ada love" finds Ada Lovelace).
            params["$search"] = '"displayName:' + search_term(query) + '"'
            headers = dict(EVENTUAL)
        else:
            literal = odata_string(query)
            fields = ADDRESS_FIELDS if form is Form.ADDRESS else NAME_FIELDS
            params["$filter"] = " or ".join(f"startswith({f},{literal})" for f in fields)
        # The agent waits for this: a verification's budget, retries of throttled or hung attempts included.
        body = await self._get_json(tenant_id, relative_url("/users", params), "people search", headers=headers,
                                    permission="User.Read.All", budget_s=self._budget_s)
        return best(mapping.people(mapping.values(body)), query, limit)

    async def _get_json(self, tenant_id: str, url: str, what: str, *, headers: dict[str, str] | None = None,
                        permission: str | None = None, budget_s: float = CALL_TIMEOUT_S) -> Any:
        """One GET (a path below the Graph base, or an absolute next/delta link) answered with JSON (or, for a
        `/$count`, text/plain: returned as the text), retried as `_request` says."""
        return await self._request("GET", tenant_id, url, what, headers=headers, permission=permission,
                                   budget_s=budget_s)

    async def _request(self, method: str, tenant_id: str, url: str, what: str, *, body: Any = None,
                       headers: dict[str, str] | None = None, permission: str | None = None,
                       budget_s: float = CALL_TIMEOUT_S) -> Any:
        """One read (a GET, or a POST that only reads, such as checkMemberGroups) within `budget_s`.

        Reads go around msgraph-sdk's models (see graph/mapping.py for why) but through the same HTTP client,
        without its retry middleware (which waits on Retry-After whatever our budget): a 429/503/504, a hang
        past the attempt's share of the budget, or a dropped connection is retried here after Retry-After (or
        a growing back-off) while the budget lasts. Every directory read Graph may throttle goes through here."""
        target = url if url.startswith("https://") or url.startswith("http://") else self._graph_url + url
        deadline = Deadline.after(budget_s)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            remaining = deadline.remaining()
            timeout = min(remaining, max(MIN_ATTEMPT_S, remaining * ATTEMPT_SHARE))
            try:
                async with asyncio.timeout(timeout):
                    token = await self._tokens.for_tenant(tenant_id, self._graph_url).get_authorization_token(target)
                    response = await self._http.request(
                        method, target, json=body, timeout=timeout, extensions=NO_MIDDLEWARE_RETRY,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})})
            except TokenError as err:
                raise no_token(err.code) from None
            except (TimeoutError, httpx.TimeoutException):
                failure = GraphUnavailable(f"{what}: timed out", Unavailability.TIMED_OUT)
                wait = 0.0
            except httpx.HTTPError as err:
                failure = GraphUnavailable(f"{what}: connection failed ({type(err).__name__})",
                                           Unavailability.UNREACHABLE)
                wait = 0.0
            else:
                if response.status_code in RETRYABLE:
                    failure = GraphHttpError(response.status_code, _error_code(response),
                                         f"{what}: {_odata_reason(response.status_code, '', permission)}")
                    wait = _retry_after(response.headers.get("Retry-After"))
                else:
                    return _answer(response, what, permission)
            wait = max(wait, BACKOFF_S * 2 ** (attempt - 1))
            if attempt == MAX_ATTEMPTS or wait >= deadline.remaining() - MIN_ATTEMPT_S / 2:
                raise failure
            log.info("graph: %s: %s; retrying in %.1f s", what, failure.reason, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # noqa: EM101 - the loop returns or raises

    # --- a verification's context ------------------------------------------------------------------------
    async def load_context(self, tenant_id: str, user_id: str, deadline: Deadline | None = None) -> LoadedContext:
        return await self._loader.load(tenant_id, user_id, deadline or Deadline.after(self._budget_s))

    # --- the connection ----------------------------------------------------------------------------------
    async def answers(self, tenant_id: str) -> GraphUnavailable | None:
        """Whether Graph answers for the tenant right now (None) or why not: one cheap read with a short
        timeout, remembered for a few seconds so a load balancer's probes do not become Graph traffic."""
        cached = self._answers.get(tenant_id)
        if cached is not None:
            return cached[0]
        try:
            await self._get_json(tenant_id, relative_url("/organization", {"$select": "id"}), "readiness check",
                                 permission="User.Read.All", budget_s=READY_TIMEOUT_S)
            result: GraphUnavailable | None = None
        except GraphUnavailable as err:
            result = err
        self._answers.put(tenant_id, (result,))
        return result

    async def check_connection(self, tenant_id: str) -> ConnectionCheck:
        checked_at = self._clock()
        try:
            token = await self._tokens.token(tenant_id, fresh=True)
        except TokenError as err:
            return ConnectionCheck(
                tenant_id=tenant_id, checked_at=checked_at, token_ok=False, tenant_matches=False,
                permissions=tuple(PermissionStatus(p.name, p.purpose, False, p.optional) for p in PERMISSIONS),
                token_error=err.code, problems=(_token_problem(err),))
        granted = token.roles
        permissions = tuple(PermissionStatus(p.name, p.purpose, p.name in granted, p.optional) for p in PERMISSIONS)
        if token.tenant_id.lower() != tenant_id.lower():
            return ConnectionCheck(
                tenant_id=tenant_id, checked_at=checked_at, token_ok=True, tenant_matches=False,
                permissions=permissions,
                problems=(f"The token is for tenant {token.tenant_id}, not {tenant_id}: the connection is refused.",))
        problems = []
        missing = [p.name for p in permissions if not p.granted and not p.optional]
        if missing:
            problems.append(f"Not granted: {', '.join(missing)}. An administrator must grant admin consent again.")
        sp_id, sp_roles = None, ()
        try:
            sp_id, sp_roles = await self._service_principal_roles(tenant_id)
        except GraphUnavailable as err:
            problems.append(f"Could not read Watchword's service principal and its roles ({err.reason}).")
        can_reset = bool(set(sp_roles) & RESET_ROLES)
        if sp_id and not can_reset:
            problems.append("Watchword's service principal holds no directory role that may reset passwords: "
                            "assign it Helpdesk Administrator (or User Administrator) in Microsoft Entra.")
        problems += await self._probe_sources(tenant_id, granted)
        return ConnectionCheck(tenant_id=tenant_id, checked_at=checked_at, token_ok=True, tenant_matches=True,
                               permissions=permissions, sp_object_id=sp_id, sp_roles=tuple(sorted(sp_roles)),
                               can_reset=can_reset, problems=tuple(problems))

    async def _probe_sources(self, tenant_id: str, granted: frozenset[str]) -> list[str]:
        """Ask each gated source once, live, for one person: protected and policy-gated APIs answer 403 with the
        permission granted (Teams chats without Microsoft's approval, mail under an Exchange application access
        policy, sign-in logs without Entra ID P1), and only asking shows it. One sentence per source that fails,
        with the cause and the fix."""
        try:
            users = await self._get_json(tenant_id, relative_url("/users", {
                "$select": "id,mail", "$filter": "accountEnabled eq true", "$top": "10"}), "people",
                permission="User.Read.All", budget_s=READY_TIMEOUT_S * 2)
        except GraphUnavailable as err:
            return [f"Could not pick someone to check the data sources with ({err.reason})."]
        person = next((u for u in mapping.values(users) if u.get("id") and u.get("mail")), None)
        if person is None:
            return []
        uid = quote(str(person["id"]), safe="")
        probes = {
            "chats": ("Teams chats", f"/users/{uid}/chats?$top=1", "Chat.Read.All"),
            "mail": ("Mail", f"/users/{uid}/messages?$top=1&$select=id", "Mail.ReadBasic.All"),
            "sign_ins": ("Sign-in logs", relative_url("/auditLogs/signIns", {
                "$filter": f"userId eq {odata_string(str(person['id']))}", "$top": "1"}), "AuditLog.Read.All"),
        }
        asked = {key: probe for key, probe in probes.items() if probe[2] in granted}  # missing ones are named above
        try:
            results = await self._batch(tenant_id, [BatchItem(k, url) for k, (_, url, _) in asked.items()])
        except GraphUnavailable as err:
            return [f"Could not check the data sources ({err.reason})."]
        return [f"{label} cannot be read: {reason(results[key], permission)}."
                for key, (label, _, permission) in asked.items()
                if not results[key].ok and results[key].status not in (404,)]

    async def _service_principal_roles(self, tenant_id: str) -> tuple[str | None, tuple[str, ...]]:
        sps = await self._get_json(tenant_id, relative_url("/servicePrincipals", {
            "$filter": f"appId eq {odata_string(self._client_id)}", "$select": "id,appId,displayName"}),
            "service principal", permission="Directory.Read.All")
        sp = next((s for s in mapping.values(sps) if s.get("id")), None)
        if sp is None:
            return None, ()
        assignments = await self._get_all(tenant_id, relative_url(ROLE_ASSIGNMENTS, {
            "$filter": f"principalId eq {odata_string(str(sp['id']))}", "$expand": "roleDefinition"}),
            "service principal roles", permission="RoleManagement.Read.Directory")
        return str(sp["id"]), tuple({mapping.role_name(a) for a in assignments})

    # --- the reset ---------------------------------------------------------------------------------------
    async def may_install_app(self, tenant_id: str) -> bool:
        try:  # msal's cached token: no request to Graph
            return INSTALL_PERMISSION in (await self._tokens.token(tenant_id)).roles
        except TokenError:
            return False

    async def open_app_chat(self, tenant_id: str, user_id: str, *, via_user_id: str, manifest_id: str) -> str | None:
        key = (tenant_id, manifest_id)

        async def send(method: str, url: str, body: Any) -> Any:
            return await self._request(method, tenant_id, url, "installing Watchword for the person", body=body,
                                       permission=INSTALL_PERMISSION)

        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                # Read once per tenant: every manager asked and reset notice comes this way.
                app_id = self._catalog_ids.get(key)
                if app_id is None:
                    app_id = await catalog_id(send, via_user_id, manifest_id)
                    self._catalog_ids.put(key, app_id)
                try:
                    return await app_chat_id(send, self._graph_url, user_id=user_id, catalog_id=app_id)
                except Exception:
                    self._catalog_ids.forget(key)  # perhaps the app was uploaded again: found afresh next time
                    raise
        except NotPermitted as err:
            log.info("cannot install Watchword for user %s in tenant %s: %s", user_id, tenant_id, err)
            return None
        except TimeoutError:
            raise GraphUnavailable("installing Watchword for the person: timed out", Unavailability.TIMED_OUT) from None

    async def reset_password(self, tenant_id: str, user_id: str, *,
                             before_patch: Callable[[], Awaitable[None]] | None = None) -> TemporaryPassword:
        user, roles = await self._reset_precheck(tenant_id, user_id)
        password = generate_password(avoid=(user.get("displayName"), user.get("givenName"), user.get("surname"),
                                            str(user.get("userPrincipalName") or "").split("@")[0]))
        body = User(password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=True))
        client = self._client(tenant_id)
        if before_patch is not None:  # the claim proved this process's own; the PATCH follows at once
            await before_patch()
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await client.users.by_user_id(user_id).patch(body)
        except ODataError as err:
            raise await self._reset_error(tenant_id, user_id, err, roles) from None
        except TokenError as err:
            raise no_token(err.code) from None
        except TimeoutError:
            # The outcome is unknown: the caller must not read out a password that may not be set.
            raise ResetOutcomeUnknown("password reset: timed out; the password may or may not have changed",
                                      Unavailability.TIMED_OUT) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:  # never sent: nothing changed
            raise GraphUnavailable(f"password reset: connection failed ({type(err).__name__})",
                                   Unavailability.UNREACHABLE) from None
        except httpx.HTTPError as err:  # sent, and the answer was lost: it may have been applied
            raise ResetOutcomeUnknown(f"password reset: the connection dropped ({type(err).__name__}); the password "
                                      "may or may not have changed", Unavailability.UNREACHABLE) from None
        log.info("password reset for user %s in tenant %s (change required at next sign-in)", user_id, tenant_id)
        return TemporaryPassword(password, user_id, self._clock())

    async def _reset_precheck(self, tenant_id: str, user_id: str) -> tuple[dict[str, Any], list[str]]:
        """Refuse before touching the account: not found, privileged, role-assignable group, federated."""
        u = f"/users/{quote(user_id, safe='')}"
        items = [
            BatchItem("user", relative_url(u, {"$select": "id,displayName,givenName,surname,userPrincipalName,"
                                                          "onPremisesSyncEnabled,accountEnabled,userType"})),
            BatchItem("roles", relative_url(ROLE_ASSIGNMENTS, {
                "$filter": f"principalId eq {odata_string(user_id)}", "$expand": "roleDefinition"})),
            # Graph itself resets a user who is only eligible (PIM) for Global Administrator: check here.
            BatchItem("eligible", relative_url(ROLE_ELIGIBILITIES, {
                "$filter": f"principalId eq {odata_string(user_id)}", "$expand": "roleDefinition",
                "$select": "id,principalId,roleDefinitionId"})),
            BatchItem("groups", relative_url(f"{u}/transitiveMemberOf/microsoft.graph.group", {
                "$select": "id,displayName,isAssignableToRole", "$top": "999", "$count": "true"}), dict(EVENTUAL)),
            BatchItem("domains", relative_url("/domains", {"$select": "id,authenticationType"})),
        ]
        results = await self._batch(tenant_id, items)
        user_res = results["user"]
        if user_res.status == 404:
            raise ResetRefused(ResetRefusal.NOT_FOUND)
        for key, what in (("user", "the account"), ("roles", "the account's roles"),
                          ("groups", "the account's groups")):
            if not results[key].ok:
                # Fail closed: without these we cannot rule out an administrator.
                raise GraphUnavailable(f"could not check {what} before the reset: {reason(results[key], None)}")
        eligible_res = results["eligible"]
        if not eligible_res.ok and not no_pim_licence(eligible_res.status, eligible_res.error_code):
            raise GraphUnavailable("could not check the account's role eligibilities before the reset: "
                                   f"{reason(eligible_res, None)}")
        user = user_res.body if isinstance(user_res.body, dict) else {}
        if str(user.get("userType") or "Member").lower() == "guest":
            raise ResetRefused(ResetRefusal.GUEST)
        if user.get("accountEnabled") is False:
            raise ResetRefused(ResetRefusal.DISABLED)
        assignments = mapping.values(results["roles"].body)
        role_names = [mapping.role_name(a) for a in assignments]
        privileged = [mapping.role_name(a) for a in assignments if is_privileged_role(mapping.role_template(a))]
        privileged += [f"{mapping.role_name(e)} (eligible through PIM)"
                       for e in (mapping.values(eligible_res.body) if eligible_res.ok else [])
                       if is_privileged_role(mapping.role_template(e))]
        if privileged:
            raise ResetRefused(ResetRefusal.PRIVILEGED, ", ".join(sorted(set(privileged))))
        group = await self._role_assignable_group(tenant_id, results["groups"])
        if group is not None:
            raise ResetRefused(ResetRefusal.ROLE_ASSIGNABLE_GROUP, group)
        domain = str(user.get("userPrincipalName") or "").rsplit("@", 1)[-1].lower()
        federated = results["domains"].ok and any(
            str(d.get("id", "")).lower() == domain and str(d.get("authenticationType", "")).lower() == "federated"
            for d in mapping.values(results["domains"].body))
        if user.get("onPremisesSyncEnabled") or federated:
            raise ResetRefused(ResetRefusal.FEDERATED)
        return user, role_names

    async def _role_assignable_group(self, tenant_id: str, first: BatchResult) -> str | None:
        page: BatchResult | None = first
        pages = 0
        while page is not None and pages < 20:
            pages += 1
            found = next((str(g.get("displayName") or g.get("id")) for g in mapping.values(page.body)
                          if g.get("isAssignableToRole")), None)
            if found:
                return found
            link = page.next_link
            if not link:
                return None
            page = (await self._batch(tenant_id, [BatchItem("next", relative_link(self._graph_url, link),
                                                            dict(EVENTUAL))]))["next"]
            if not page.ok:
                raise GraphUnavailable(f"could not check the account's groups before the reset: {reason(page, None)}")
        return None

    async def _reset_error(self, tenant_id: str, user_id: str, err: ODataError,
                           roles: list[str]) -> DirectoryError:
        status = err.response_status_code or 0
        code = err.error.code if err.error else ""
        message = (err.error.message if err.error else "") or ""
        if status == 404:
            return ResetRefused(ResetRefusal.NOT_FOUND)
        if status == 400 and "on-premises" in message.lower():
            return ResetRefused(ResetRefusal.FEDERATED)
        if status == 403:
            if roles:
                return ResetRefused(ResetRefusal.PRIVILEGED, ", ".join(sorted(set(roles))))
            try:
                granted = (await self._tokens.token(tenant_id)).roles
            except TokenError:
                granted = frozenset()
            if RESET_PERMISSION not in granted:
                return ResetRefused(ResetRefusal.APP_LACKS_PERMISSION)
            return ResetRefused(ResetRefusal.APP_LACKS_ROLE)
        log.warning("password reset for user %s in tenant %s failed: %s %s", user_id, tenant_id, status, code)
        if status >= 500 and status not in (501, 503):  # a server error after the request arrived: maybe applied
            return ResetOutcomeUnknown(f"password reset: {_odata_reason(status, code, RESET_PERMISSION)}; the "
                                       "password may or may not have changed", cause_of_status(status))
        return GraphUnavailable(f"password reset: {_odata_reason(status, code, RESET_PERMISSION)}",
                                cause_of_status(status))

    async def _batch(self, tenant_id: str, items: list[BatchItem]) -> dict[str, BatchResult]:
        try:
            return await send_batch(self._http, self._graph_url, self._tokens.for_tenant(tenant_id, self._graph_url),
                                    items, Deadline.after(CALL_TIMEOUT_S), calls=self._loader.calls)
        except TokenError as err:
            raise no_token(err.code) from None
        except BatchError as err:
            raise GraphUnavailable(str(err)) from None

    # --- the directory sync ------------------------------------------------------------------------------
    async def sync_users(self, tenant_id: str, resume_link: str | None, on_page: OnPage) -> str:
        start = relative_url("/users/delta", {"$select": ",".join(mapping.DIRECTORY_USER_FIELDS)})

        async def fetch(url: str) -> Any:
            try:
                return await self._get_json(tenant_id, url, "directory sync", permission="User.Read.All",
                                            budget_s=SYNC_CALL_TIMEOUT_S)
            except GraphHttpError as err:
                if err.status in REFUSED_STATUSES:
                    log.info("directory sync for tenant %s: link refused (%s %s)", tenant_id, err.status, err.code)
                    raise LinkRefused(GraphUnavailable(err.reason, err.cause)) from None
                raise GraphUnavailable(err.reason, err.cause) from None

        async def page(found: DeltaPage) -> None:
            users = tuple(mapping.directory_user(d) for d in found.items if not mapping.is_removed(d))
            removed = tuple(str(d["id"]) for d in found.items if mapping.is_removed(d))
            await on_page(SyncPage(users=users, removed_ids=removed, next_link=found.next_link,
                                   delta_link=found.delta_link, restarted=found.restarted))

        try:
            return await walk_delta(fetch, start, resume_link, page)
        except BrokenPage:
            raise GraphUnavailable("directory sync: a page with neither a next nor a delta link") from None

    # --- membership --------------------------------------------------------------------------------------
    async def is_member_of(self, tenant_id: str, user_id: str, group_id: str,
                           budget_s: float = MEMBERSHIP_TIMEOUT_S) -> bool:
        url = f"/users/{quote(user_id, safe='')}/checkMemberGroups"
        try:
            answer = await self._request("POST", tenant_id, url, "membership check", body={"groupIds": [group_id]},
                                         permission="GroupMember.Read.All", budget_s=budget_s)
        except GraphHttpError as err:
            if err.status == 404:
                raise UserNotFound(user_id) from None
            raise
        ids = answer.get("value") if isinstance(answer, dict) else None
        return group_id.lower() in {str(v).lower() for v in ids or [] if isinstance(v, str)}

    # --- tenant-wide reads (the directory sync, the policy page) -----------------------------------------
    async def group_member_ids(self, tenant_id: str, group_id: str, *, at_most: int | None = None,
                               budget_s: float | None = None) -> frozenset[str]:
        url = relative_url(f"/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user",
                           {"$select": "id", "$top": "999", "$count": "true"})
        try:
            members = await self._get_all(tenant_id, url, "group members", permission="GroupMember.Read.All",
                                          headers=dict(EVENTUAL), at_most=at_most,
                                          deadline=Deadline.after(budget_s) if budget_s is not None else None)
        except GraphHttpError as err:
            if err.status == 404:
                raise GroupNotFound(group_id) from None
            raise
        except _TooMany:
            raise GroupTooLarge(group_id, at_most or 0) from None
        return frozenset(str(m["id"]).lower() for m in members if m.get("id"))

    async def not_resettable_ids(self, tenant_id: str) -> dict[str, tuple[str, ...]]:
        query = {"$select": "id,principalId,roleDefinitionId", "$expand": "roleDefinition", "$top": "999"}
        groups_url = relative_url("/groups", {"$filter": "isAssignableToRole eq true", "$select": "id",
                                              "$top": "999"})
        assignments, eligibilities, groups = await _all_or_first_failure(
            self._get_all(tenant_id, relative_url(ROLE_ASSIGNMENTS, query), "role assignments",
                          permission="RoleManagement.Read.Directory"),
            self._eligibilities(tenant_id, relative_url(ROLE_ELIGIBILITIES, query)),
            self._get_all(tenant_id, groups_url, "role-assignable groups", permission="Group.Read.All"))
        # Eligible (PIM) counts as held: the principal can activate the role at will.
        privileged_principals = {str(a.get("principalId", "")).lower() for a in (*assignments, *eligibilities)
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

    async def _eligibilities(self, tenant_id: str, url: str) -> list[mapping.Json]:
        """Every PIM eligibility; none in a tenant without Entra ID P2 (Graph refuses the read there)."""
        try:
            return await self._get_all(tenant_id, url, "role eligibilities", permission="RoleManagement.Read.Directory")
        except GraphHttpError as err:
            if no_pim_licence(err.status, err.code):
                return []
            raise

    async def _members_if_any(self, tenant_id: str, group_id: str) -> frozenset[str]:
        try:
            return await self.group_member_ids(tenant_id, group_id)
        except GroupNotFound:
            return frozenset()  # deleted between the two reads

    async def count_users(self, tenant_id: str) -> int | None:
        try:
            body = await self._get_json(tenant_id, "/users/$count", "user count", headers=dict(EVENTUAL),
                                        permission="User.Read.All", budget_s=SYNC_CALL_TIMEOUT_S)
        except GraphUnavailable:
            return None
        return mapping.count_value(body)

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> dict[str, str | None]:
        names: dict[str, str | None] = {}
        for group_id in dict.fromkeys(group_ids):
            url = relative_url(f"/groups/{quote(group_id, safe='')}", {"$select": "id,displayName"})
            try:
                body = await self._get_json(tenant_id, url, "group", permission="Group.Read.All",
                                            budget_s=SYNC_CALL_TIMEOUT_S)
            except GraphHttpError as err:
                if err.status == 404:
                    names[group_id] = None
                    continue
                raise
            names[group_id] = str(body.get("displayName") or group_id) if isinstance(body, dict) else group_id
        return names

    async def _get_all(self, tenant_id: str, url: str, what: str, *, permission: str,
                       headers: dict[str, str] | None = None, at_most: int | None = None,
                       deadline: Deadline | None = None) -> list[mapping.Json]:
        """Every item of a collection, following `@odata.nextLink` (at most MAX_PAGES pages). With `at_most`,
        raises `_TooMany` once the collection is known to hold more (its `@odata.count`, or the items so far);
        with `deadline`, every page comes out of that one budget rather than SYNC_CALL_TIMEOUT_S each."""
        items: list[mapping.Json] = []
        link: str | None = url
        for _ in range(MAX_PAGES):
            if link is None:
                return items
            if deadline is not None and deadline.remaining() <= 0:
                raise GraphUnavailable(f"{what}: timed out", Unavailability.TIMED_OUT)
            body = await self._get_json(tenant_id, link, what, headers=headers, permission=permission,
                                        budget_s=deadline.remaining() if deadline else SYNC_CALL_TIMEOUT_S)
            items += mapping.values(body)
            count = body.get("@odata.count") if isinstance(body, dict) else None
            if at_most is not None and (len(items) > at_most or (isinstance(count, int) and count > at_most)):
                raise _TooMany
            next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
            link = str(next_link) if next_link else None
        raise GraphUnavailable(f"{what}: more than {MAX_PAGES} pages")


# --- helpers ---------------------------------------------------------------------------------------------
class _TooMany(Exception):  # noqa: N818 - private: `_get_all` past its `at_most`, turned into GroupTooLarge
    pass


def _error_code(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return ""
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _retry_after(value: str | None) -> float:
    """Graph's Retry-After in seconds (it sends whole seconds); 0 when absent or unreadable."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _answer(response: httpx.Response, what: str, permission: str | None) -> Any:
    """A final answer: its JSON (or text for a `/$count`; None when it has no body), or `GraphHttpError` for an
    error status."""
    if response.status_code >= 400:
        code = _error_code(response)
        raise GraphHttpError(response.status_code, code,
                             f"{what}: {_odata_reason(response.status_code, code, permission)}")
    if response.headers.get("content-type", "").startswith("text/plain"):
        return response.text
    if not response.content:  # 201/204 with no body (an install, say): nothing to read
        return None
    try:
        return response.json()
    except ValueError:
        raise GraphUnavailable(f"{what}: an answer that is not JSON") from None


def _odata_reason(status: int, code: str, permission: str | None) -> str:
    if status == 403:
        return f"403: {permission} not granted" if permission else "403: access denied"
    if status == 429:
        return "throttled"
    if status in (503, 504):
        return "service unavailable"
    if status == 401:
        return "401: the token was refused"
    return f"{status}: {code or 'error'}"


def _token_problem(err: TokenError) -> str:
    hints: dict[str, Any] = {
        "invalid_client": "Watchword is not (or no longer) consented in this tenant: an administrator must "
                          "grant admin consent.",
        "unauthorized_client": "Watchword is not known in this tenant: an administrator must grant admin consent.",
        "invalid_tenant": "The tenant does not exist.",
        # msal reports a failed authority discovery (an unknown tenant, or no network) as one ValueError.
        "unreachable": "The Microsoft identity platform could not be reached, or does not know this tenant.",
    }
    return f"No token for the tenant ({err.code}). " + hints.get(err.code, "Check the app registration and consent.")


async def _all_or_first_failure(*reads: Awaitable[Any]) -> list[Any]:
    """Run the reads together; when several fail, raise the first in argument order, not in time.

    asyncio.gather raises whichever failure lands first, so the same missing permission would be reported
    as one read on one run and another on the next; the admin (and a test) should see the same reason.
    """
    results = await asyncio.gather(*reads, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
