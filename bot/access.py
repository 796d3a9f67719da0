"""Who the bot serves: connected tenants only, and helpdesk agents (members of the tenant's helpdesk group).

Both answers are cached briefly per process (a tenant check for a minute, a membership for two), so a
turn costs no directory round trip, and a removal from the helpdesk group takes effect within minutes.
A membership that cannot be checked (Graph down) counts as "not an agent" and is cached only briefly:
failing closed shows the end-user experience, never the agent's.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from dialogs.ports import Clock
from graph.directory import Directory, DirectoryError
from store import Store

log = logging.getLogger(__name__)

TENANT_TTL = timedelta(minutes=1)
MEMBERSHIP_TTL = timedelta(minutes=2)
FAILURE_TTL = timedelta(seconds=15)
CACHE_LIMIT = 50_000  # entries per cache; past it the cache starts afresh (memory stays bounded)


def remember(cache: dict, key: object, value: object) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


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
        self._tenants: dict[str, tuple[bool, datetime]] = {}
        self._members: dict[tuple[str, str], tuple[bool, datetime]] = {}

    async def tenant_connected(self, tenant_id: str | None) -> bool:
        tenant = canonical(tenant_id)
        if tenant is None:
            return False
        if tenant == self._start_tenant:
            return True
        cached = self._tenants.get(tenant)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await self._store.tenants.get(tenant)
        connected = row is not None and row.is_connected
        remember(self._tenants, tenant, (connected, now + TENANT_TTL))
        return connected

    async def helpdesk_group(self, tenant_id: str) -> str | None:
        policies = getattr(self._store, "policies", None)
        if policies is not None:
            group = (await policies.get_access(tenant_id)).helpdesk_group_id
            if group:
                return group
        return self._fallback_group

    async def is_agent(self, tenant_id: str, user_id: str | None) -> bool:
        tenant, user = canonical(tenant_id), canonical(user_id)
        if tenant is None or user is None:
            return False
        now = self._clock()
        cached = self._members.get((tenant, user))
        if cached is not None and cached[1] > now:
            return cached[0]
        group = await self.helpdesk_group(tenant)
        if group is None:
            log.warning("tenant %s has no helpdesk group configured: nobody there is treated as an agent", tenant)
            remember(self._members, (tenant, user), (False, now + FAILURE_TTL))
            return False
        try:
            member = await self._directory.is_member_of(tenant, user, group)
        except DirectoryError as err:
            log.warning("helpdesk membership of %s in tenant %s unknown (%s): treated as not an agent", user, tenant,
                        err)
            remember(self._members, (tenant, user), (False, now + FAILURE_TTL))
            return False
        remember(self._members, (tenant, user), (member, now + MEMBERSHIP_TTL))
        return member
