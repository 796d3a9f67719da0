"""Who the bot serves: connected tenants only, and helpdesk agents (members of the tenant's helpdesk group).

Both answers are cached briefly per process (a tenant check for a minute, a membership for two), so a
turn costs no directory round trip, and a removal from the helpdesk group takes effect within minutes.
A membership that cannot be checked (Graph unreachable, slow or throttled) is *unknown*, never "no": the
agent is told Graph could not be asked and to try again, nothing is cached, and nobody gets an agent's
powers without a "yes" from Graph (fail closed without telling a real agent they are not one).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from cachetools import TLRUCache, TTLCache

from graph.directory import Directory, DirectoryError, GraphUnavailable, Unavailability
from store import Store
from verification.clock import Clock

log = logging.getLogger(__name__)

TENANT_TTL = timedelta(minutes=1)
MEMBERSHIP_TTL = timedelta(minutes=2)
FAILURE_TTL = timedelta(seconds=15)
CACHE_LIMIT = 50_000  # entries per cache; past it the least recently used go (memory stays bounded)


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
        # (tenant, user) -> (is a member, how long that holds): a failure is kept for less long than an answer.
        self._members: TLRUCache[tuple[str, str], tuple[bool, timedelta]] = TLRUCache(
            CACHE_LIMIT, ttu=lambda _key, entry, now: now + entry[1], timer=clock)

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
        cached = self._members.get((tenant, user))
        if cached is not None:
            return AgentCheck(Membership.AGENT if cached[0] else Membership.NOT_AGENT)
        group = await self.helpdesk_group(tenant)
        if group is None:
            log.warning("tenant %s has no helpdesk group configured: nobody there is treated as an agent", tenant)
            self._members[tenant, user] = (False, FAILURE_TTL)
            return AgentCheck(Membership.NOT_AGENT)
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
