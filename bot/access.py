"""Who the bot serves: connected tenants only, and helpdesk agents (members of the tenant's helpdesk group).

Membership is decided from the helpdesk group's member list (its users, through nested groups too), read once
per tenant and kept for MEMBERS_TTL: when 200 agents start at once their first turns cost one Graph read, not
200 (issue 11). The list is read again in the background once it is REFRESH_AT old, while turns go on using
the one they have (stale-while-revalidate); turns that find no list share the one read in flight (single
flight). So a person removed from the group loses access within MEMBERS_TTL.

When the list cannot be read (the group holds more than MEMBER_LIST_LIMIT users, or Graph did not answer),
each person is asked about as before: one membership check per person, cached briefly (a tenant check for a
minute, a membership for two). A membership that cannot be checked (Graph unreachable, slow or throttled) is
*unknown*, never "no": the agent is told Graph could not be asked and to try again, nothing is cached, and
nobody gets an agent's powers without a "yes" from Graph (fail closed without telling a real agent they are
not one).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from cachetools import TLRUCache, TTLCache

from graph.directory import (
    Directory,
    DirectoryError,
    GraphUnavailable,
    GroupNotFound,
    GroupTooLarge,
    Unavailability,
)
from store import Store
from verification.clock import Clock

log = logging.getLogger(__name__)

TENANT_TTL = timedelta(minutes=1)
MEMBERSHIP_TTL = timedelta(minutes=2)
FAILURE_TTL = timedelta(seconds=15)
CACHE_LIMIT = 50_000  # entries per cache; past it the least recently used go (memory stays bounded)
MEMBERS_TTL = timedelta(minutes=5)  # the helpdesk group's member list: a removal takes effect within this
REFRESH_AT = timedelta(minutes=4)  # ... read again in the background once it is this old
MEMBER_LIST_LIMIT = 5_000  # a larger helpdesk group is not read whole: each person is asked about instead
MEMBER_LIST_BUDGET_S = 8.0  # the whole list read (every page): the first agents of a tenant wait for it


class Membership(StrEnum):
    AGENT = "agent"
    NOT_AGENT = "not_agent"
    UNKNOWN = "unknown"  # Graph could not say: neither yes nor no


@dataclass(frozen=True)
class AgentCheck:
    """Whether a person is a helpdesk agent; when UNKNOWN, `cause` says why Graph could not tell."""

    membership: Membership
    cause: Unavailability | None = None

    @property
    def is_agent(self) -> bool:
        return self.membership is Membership.AGENT


@dataclass(frozen=True)
class _MemberList:
    """A helpdesk group's users (lower-case ids) as read at some moment; `ids` None: not readable, ask per person."""

    ids: frozenset[str] | None
    refresh_at: datetime
    expires_at: datetime


def canonical(guid: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(guid)))
    except ValueError:
        return None


class Access:
    def __init__(self, store: Store, directory: Directory, clock: Clock, *, connected_at_start: str = "",
                 fallback_helpdesk_group: str = "") -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._start_tenant = canonical(connected_at_start)
        self._fallback_group = canonical(fallback_helpdesk_group)
        self._tenants: TTLCache[str, bool] = TTLCache(CACHE_LIMIT, TENANT_TTL, timer=clock)
        self._groups: TTLCache[str, tuple[str | None]] = TTLCache(CACHE_LIMIT, TENANT_TTL, timer=clock)
        # (tenant, user) -> (is a member, how long that holds): a failure is kept for less long than an answer.
        self._members: TLRUCache[tuple[str, str], tuple[bool, timedelta]] = TLRUCache(
            CACHE_LIMIT, ttu=lambda _key, entry, now: now + entry[1], timer=clock)
        # (tenant, group) -> its member list, and the reads of one in flight (at most one per group at a time).
        self._lists: TLRUCache[tuple[str, str], _MemberList] = TLRUCache(
            CACHE_LIMIT, ttu=lambda _key, entry, _now: entry.expires_at, timer=clock)
        self._reads: dict[tuple[str, str], asyncio.Task[_MemberList]] = {}

    def close(self) -> None:
        """Stop the member list reads in flight (at shutdown: none may outlive the directory's HTTP client)."""
        for task in list(self._reads.values()):
            task.cancel()

    async def tenant_connected(self, tenant_id: str | None) -> bool:
        tenant = canonical(tenant_id)
        if tenant is None:
            return False
        if tenant == self._start_tenant:
            return True
        cached = self._tenants.get(tenant)
        if cached is not None:
            return cached
        row = await self._store.tenants.get(tenant)
        connected = self._tenants[tenant] = row is not None and row.is_connected
        return connected

    async def helpdesk_group(self, tenant_id: str) -> str | None:
        return (await self._store.policies.get_access(tenant_id)).helpdesk_group_id or self._fallback_group

    async def is_agent(self, tenant_id: str, user_id: str | None) -> bool:
        """Only a "yes" from Graph counts (for choosing the help card's audience)."""
        return (await self.check_agent(tenant_id, user_id)).is_agent

    async def check_agent(self, tenant_id: str, user_id: str | None) -> AgentCheck:
        tenant, user = canonical(tenant_id), canonical(user_id)
        if tenant is None or user is None:
            return AgentCheck(Membership.NOT_AGENT)
        kept_group = self._groups.get(tenant)
        group = kept_group[0] if kept_group is not None else await self.helpdesk_group(tenant)
        self._groups[tenant] = (group,)
        if group is None:
            log.warning("tenant %s has no helpdesk group configured: nobody there is treated as an agent", tenant)
            return AgentCheck(Membership.NOT_AGENT)
        members = (await self._member_list(tenant, group)).ids
        if members is not None:
            return AgentCheck(Membership.AGENT if user in members else Membership.NOT_AGENT)
        return await self._check_one(tenant, user, group)

    async def _member_list(self, tenant: str, group: str) -> _MemberList:
        """The group's member list: the one kept (read again in the background when due), else the read in
        flight, else a new read; every waiting turn shares one read, and a turn that gives up does not cancel it."""
        key = (tenant, group)
        kept = self._lists.get(key)
        if kept is not None:
            if self._clock() >= kept.refresh_at and key not in self._reads:
                self._start_read(key)
            return kept
        return await asyncio.shield(self._reads.get(key) or self._start_read(key))

    def _start_read(self, key: tuple[str, str]) -> asyncio.Task[_MemberList]:
        task = asyncio.create_task(self._read_list(*key))
        self._reads[key] = task

        def done(finished: asyncio.Task[_MemberList]) -> None:
            if self._reads.get(key) is finished:
                del self._reads[key]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("helpdesk member list of tenant %s failed", key[0], exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    async def _read_list(self, tenant: str, group: str) -> _MemberList:
        kept = self._lists.get((tenant, group))
        try:
            ids = await self._directory.group_member_ids(tenant, group, at_most=MEMBER_LIST_LIMIT,
                                                         budget_s=MEMBER_LIST_BUDGET_S)
        except GroupTooLarge:
            log.info("helpdesk group of tenant %s has more than %d users: each agent is checked alone",
                     tenant, MEMBER_LIST_LIMIT)
            now = self._clock()
            fresh = _MemberList(None, now + MEMBERS_TTL, now + MEMBERS_TTL)
        except GroupNotFound:
            log.warning("helpdesk group %s of tenant %s does not exist: nobody there is an agent", group, tenant)
            now = self._clock()
            fresh = _MemberList(frozenset(), now + FAILURE_TTL, now + FAILURE_TTL)
        except DirectoryError as err:  # Graph did not answer: keep what we have, else ask per person for now
            log.warning("helpdesk member list of tenant %s not read: %s", tenant, err)
            now = self._clock()
            if kept is not None and kept.ids is not None:
                fresh = replace(kept, refresh_at=min(now + FAILURE_TTL, kept.expires_at))
            else:
                fresh = _MemberList(None, now + FAILURE_TTL, now + FAILURE_TTL)
        else:
            now = self._clock()
            fresh = _MemberList(ids, now + REFRESH_AT, now + MEMBERS_TTL)
        self._lists[tenant, group] = fresh
        return fresh

    async def _check_one(self, tenant: str, user: str, group: str) -> AgentCheck:
        """The per-person check, when the group's member list cannot be read."""
        cached = self._members.get((tenant, user))
        if cached is not None:
            return AgentCheck(Membership.AGENT if cached[0] else Membership.NOT_AGENT)
        try:
            member = await self._directory.is_member_of(tenant, user, group)
        except GraphUnavailable as err:
            log.warning("helpdesk membership of %s in tenant %s unknown: %s", user, tenant, err.reason)
            return AgentCheck(Membership.UNKNOWN, err.cause)
        except DirectoryError as err:  # the person is not in the directory (any more): not an agent
            log.warning("helpdesk membership of %s in tenant %s: %s", user, tenant, err)
            self._members[tenant, user] = (False, FAILURE_TTL)
            return AgentCheck(Membership.NOT_AGENT)
        self._members[tenant, user] = (member, MEMBERSHIP_TTL)
        return AgentCheck(Membership.AGENT if member else Membership.NOT_AGENT)
