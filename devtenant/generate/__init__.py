"""The generated organisation behind devtenant: `generate_org(seed, users, now)`.

A seed, a head count and an anchor time give the same organisation every time, ids included:
a tenant with two verified domains (one federated), people in a manager tree across offices and
departments, service accounts, groups of all four kinds, directory roles, and a month of
activity (meetings, chats, mail, contacts, sign-ins with injected anomalies) that follows the
org chart. Phases, each in its own module:

- `people`: tenant, offices, departments, the manager tree, names, service accounts;
- `work`: projects across teams and each person's weighted work partners;
- `directory`: groups, directory role assignments and PIM eligibilities (their own RNG stream);
- `activity`: calendar events and Teams chats (two-sided, stored once);
- `footprint`: contacts, received mail and sign-ins, made per user on demand.

Cost is linear in `users` (50,000 in well under a minute).
"""

from __future__ import annotations

import gc
from datetime import datetime

from devtenant.generate._rand import as_utc, rng_for
from devtenant.generate.activity import Activity, Timeline
from devtenant.generate.directory import GroupBuilder, role_assignments, role_definitions, role_eligibilities
from devtenant.generate.footprint import ANOMALIES, Footprint, choose_anomalies
from devtenant.generate.people import Outsiders, build_roster
from devtenant.generate.strangers import strangers
from devtenant.generate.work import WorkGraph
from devtenant.model import Domain, Org

MIN_USERS = 20
MAX_USERS = 50_000

__all__ = ["ANOMALIES", "MAX_USERS", "MIN_USERS", "generate_org"]


def generate_org(seed: int, users: int, now: datetime | None = None, *, strangers: bool = False) -> Org:
    """A whole organisation of `users` directory accounts (people plus a few service accounts).

    `now` (default: the current UTC hour) anchors every date: activity spans the 30 days before it
    and the week after. Datetimes are timezone-aware UTC. `strangers`: add guests and disabled accounts on top
    (devtenant's server does by default, as every real tenant has them; see generate/strangers.py).
    """
    if not MIN_USERS <= users <= MAX_USERS:
        raise ValueError(f"users must be between {MIN_USERS} and {MAX_USERS}, not {users}")
    now = as_utc(now)
    # Millions of small records and no cycles: collecting during the build only costs time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(seed, users, now, with_strangers=strangers)
    finally:
        if collecting:
            gc.enable()


def _generate(seed: int, users: int, now: datetime, *, with_strangers: bool) -> Org:
    roster = build_roster(seed, users, now)
    work = WorkGraph(roster)
    outsiders = Outsiders(seed, roster)
    timeline = Timeline(now, roster.offices)

    groups = GroupBuilder(roster, work)
    helpdesk, admins, role_groups = groups.build()
    assignments = role_assignments(roster, rng_for(seed, "roles"), role_groups)

    activity = Activity(roster, work, outsiders, timeline)
    activity.meetings()
    activity.chats_all()

    footprint = Footprint(roster, work, outsiders, timeline, choose_anomalies(roster, rng_for(seed, "anomalies")))
    domains = [
        Domain(roster.domain, is_default=True, is_verified=True, authentication_type="Managed"),
        Domain(roster.federated_domain, is_default=False, is_verified=True, authentication_type="Federated"),
        Domain(f"{roster.slug.replace('-', '')}.onmicrosoft.com", is_default=False, is_verified=True,
               authentication_type="Managed"),
    ]
    org = Org(
        tenant_id=roster.tenant_id,
        display_name=roster.company,
        domains=domains,
        now=now,
        users={u.id: u for u in (*roster.people, *roster.service_accounts)},
        groups=groups.groups,
        role_definitions=role_definitions(),
        role_assignments=assignments,
        role_eligibilities=role_eligibilities(roster, rng_for(seed, "eligibilities"), assignments),
        events=activity.events,
        chats=activity.chats,
        helpdesk_group_id=helpdesk.id,
        admins_group_id=admins.id,
        contacts_of=footprint.contacts_of,
        messages_of=footprint.messages_of,
        sign_ins_of=footprint.sign_ins_of,
    )
    if with_strangers:
        names = [(u.given_name, u.surname) for u in roster.people]
        org.users.update((u.id, u) for u in strangers(seed, users, roster.domain, domains[2].id, now, names))
    return org.index()
