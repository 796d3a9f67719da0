"""`load_context`: everything a verification needs, in two round trips, each source failing alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from devtenant.state import GRAPH_PERMISSIONS
from graph.batch import Deadline
from graph.directory import SIGN_INS_PENDING, UserNotFound
from graph.graph_directory import GraphDirectory
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import (
    ADA,
    ALAN,
    GLOBAL_ADMIN_ROLE,
    GRACE,
    JOSE,
    KATHERINE,
    MARGARET,
    make_eligible,
)
from tests.graph.support import directory_for, state
from verification import Policy, assess_risk
from verification.context import ChatType, GroupKind, ResponseStatus, Sensitivity, Source


def names(people) -> set[str]:
    return {p.display_name for p in people}


async def test_alan_is_read_in_two_round_trips_with_his_org_chart(directory: GraphDirectory,
                                                                   tiny: ThreadedDevTenant) -> None:
    loaded = await directory.load_context(tiny.ready["tenant_id"], ALAN)
    c = loaded.context
    assert loaded.round_trips <= 2
    assert c.unavailable == {"sign_ins": SIGN_INS_PENDING}  # on their way, beside the rest
    assert c.profile.id == ALAN and c.profile.department == "Engineering"
    assert c.manager is not None and c.manager.id == GRACE
    assert names(c.peers) == {"Katherine Johnson", "José Müller"}
    assert c.direct_reports == ()
    assert not c.is_federated
    assert c.last_password_change is not None


async def test_alans_meetings_name_his_partners_as_directory_people(directory: GraphDirectory,
                                                                    tiny: ThreadedDevTenant) -> None:
    c = (await directory.load_context(tiny.ready["tenant_id"], ALAN)).context
    by_subject = {m.subject: m for m in c.meetings}
    one_on_one = by_subject["Alan / Grace 1:1"]
    assert one_on_one.organizer.person is not None and one_on_one.organizer.person.id == GRACE
    assert one_on_one.my_response is ResponseStatus.ACCEPTED
    standup = by_subject["Compilers standup"]
    assert {a.who.person.id for a in standup.attendees if a.who.person} == {ALAN, KATHERINE}
    assert standup.start.tzinfo is not None and standup.start.hour == 11  # 11:00 UTC on Tuesday
    assert by_subject["Doctor"].sensitivity is Sensitivity.PRIVATE
    assert by_subject["Canceled: Design review"].is_cancelled
    partners = {p.who.person.id for m in c.meetings for p in (*m.attendees,) if p.who.person}
    partners |= {m.organizer.person.id for m in c.meetings if m.organizer.person}
    assert {GRACE, KATHERINE} <= partners


async def test_alans_groups_have_kinds_sizes_and_directness(directory: GraphDirectory,
                                                           tiny: ThreadedDevTenant) -> None:
    loaded = await directory.load_context(tiny.ready["tenant_id"], ALAN)
    groups = {g.name: g for g in loaded.context.groups}
    assert set(groups) == {"Compilers Team", "All Company"}
    assert groups["Compilers Team"].kind is GroupKind.MICROSOFT_365
    assert groups["Compilers Team"].member_count == 3 and not groups["Compilers Team"].is_tenant_wide
    assert groups["All Company"].member_count == 6 and groups["All Company"].is_tenant_wide
    assert groups["Compilers Team"].member_ids == {GRACE, ALAN, KATHERINE}  # who shares it: read with the counts
    assert all(g.is_direct for g in groups.values())
    catalogue = {g.name: g for g in loaded.org.groups}
    assert catalogue["Helpdesk Agents"].kind is GroupKind.SECURITY
    assert loaded.org.group_count == 4


async def test_alans_chats_contacts_and_mail_senders(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    c = (await directory.load_context(tiny.ready["tenant_id"], ALAN)).context
    chats = {ch.chat_type: ch for ch in c.chats}
    assert {m.person.id for m in chats[ChatType.ONE_ON_ONE].members if m.person} == {ALAN, KATHERINE}
    assert chats[ChatType.GROUP].topic == "Compilers" and len(chats[ChatType.GROUP].members) == 3
    assert chats[ChatType.GROUP].last_message_at > chats[ChatType.ONE_ON_ONE].last_message_at
    contacts = {k.display_name: k for k in c.contacts}
    assert contacts["Katherine Johnson"].person is not None and contacts["Katherine Johnson"].person.id == KATHERINE
    assert contacts["Joan Clarke"].person is None and contacts["Joan Clarke"].emails == ("joan@bletchley.example",)
    senders = {m.sender.name: m.sender for m in c.mail}
    assert senders["Grace Hopper"].person is not None and senders["Grace Hopper"].person.id == GRACE
    assert senders["Newsletter"].person is None
    assert all(m.subject is None for m in c.mail)  # no subjects unless asked for


async def test_sign_ins_and_what_the_directory_reveals(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # A devtenant of its own: the shared one's reports window still holds other tests' sign-in reads (Graph
    # counts a request that arrives after its client gave up on it).
    dt = make_tenant()
    async with directory_for(dt) as directory:
        await _sign_ins_and_what_the_directory_reveals(directory, dt.ready["tenant_id"])


async def _sign_ins_and_what_the_directory_reveals(directory: GraphDirectory, tenant: str) -> None:
    loaded = await (await directory.load_context(tenant, ALAN)).with_sign_ins()
    assert len(loaded.context.sign_ins) == 5
    assert all(s.succeeded and s.country_code == "GB" and s.latitude for s in loaded.context.sign_ins)
    org = loaded.org
    assert org.population == 6
    assert org.skip_level is not None and org.skip_level.id == ADA
    assert names(org.department_members) == {"Grace Hopper", "Alan Turing", "Katherine Johnson", "José Müller"}
    assert set(org.internal_domains) == {"tiny.example", "corp.tiny.example"}
    assert {r.name: r.is_privileged for r in org.roles}["Global Administrator"] is True
    assert org.given_name_counts["alan"] == 1 and org.given_name_counts["jose"] == 1

    katherine = (await (await directory.load_context(tenant, KATHERINE)).with_sign_ins()).context
    burst = katherine.sign_ins
    assert katherine.unavailable == {}, katherine.unavailable
    assert sum(1 for s in burst if s.error_code == 50126) == 8


async def test_later_verifications_read_the_org_chart_from_the_tenant_cache_in_one_round_trip(
        directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    cold = await directory.load_context(tenant, ALAN)
    await directory.settle()  # the background refresh counts every group of the catalogue
    warm = await directory.load_context(tenant, ALAN)
    assert cold.round_trips == 2 and warm.round_trips == 1 and warm.requests == 1  # the profile with the rest
    assert {"org_chart", "users", "catalogue", "sign_ins"} <= set(warm.cached)
    assert warm.context.peers == cold.context.peers and warm.context.manager == cold.context.manager
    assert warm.org.skip_level == cold.org.skip_level
    assert names(warm.org.department_members) == names(cold.org.department_members)
    assert warm.context.groups == cold.context.groups
    assert all(g.member_count is not None for g in warm.org.groups)
    assert {g.name: g.member_count for g in warm.org.groups}["Watchword Admins"] == 2


async def test_roles_federation_and_reports_of_other_people(directory: GraphDirectory,
                                                            tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    ada = (await directory.load_context(tenant, ADA)).context
    assert [(r.display_name, r.is_privileged) for r in ada.roles] == [("Global Administrator", True)]
    assert ada.manager is None and ada.peers == ()
    assert names(ada.direct_reports) == {"Grace Hopper", "Margaret Hamilton"}
    margaret = (await directory.load_context(tenant, MARGARET)).context
    assert [r.display_name for r in margaret.roles] == ["Helpdesk Administrator"]
    assert (await directory.load_context(tenant, JOSE)).context.is_federated


async def test_a_pim_eligible_global_administrator_is_read_in_the_same_round_as_active_roles(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: make_eligible(state(dt).org, ALAN, GLOBAL_ADMIN_ROLE))
    async with directory_for(dt) as directory:
        loaded = await (await directory.load_context(dt.ready["tenant_id"], ALAN)).with_sign_ins()
    [role] = loaded.context.roles
    assert (role.display_name, role.is_privileged, role.eligible) == ("Global Administrator", True, True)
    assert loaded.round_trips <= 2 and loaded.context.unavailable == {}


async def test_a_tenant_without_entra_id_p2_has_no_eligibilities_rather_than_unknown_roles(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(entra_id_p2=False)
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        ada = (await directory.load_context(dt.ready["tenant_id"], ADA)).context
        asked = len(sent)
        loaded = await (await directory.load_context(dt.ready["tenant_id"], ALAN)).with_sign_ins()
    alan = loaded.context
    assert [(r.display_name, r.eligible) for r in ada.roles] == [("Global Administrator", False)]
    assert alan.roles == () and alan.unavailable == {} and alan.is_available(Source.ROLES)
    # the tenant said it has no P2 once: the next start does not ask again (one read fewer per start there)
    assert "no_pim" in loaded.cached and b"roleEligibility" not in b"".join(r.content for r in sent[asked:])


async def test_an_eligibility_read_that_fails_otherwise_leaves_the_roles_unknown(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: setattr(state(dt).org, "role_eligibilities", None))  # devtenant's handler fails: a 500
    async with directory_for(dt) as directory:
        alan = (await directory.load_context(dt.ready["tenant_id"], ALAN)).context
    assert not alan.is_available(Source.ROLES) and alan.unavailable["roles"].startswith("500")


async def test_an_unknown_user_is_not_found(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    with pytest.raises(UserNotFound):
        await directory.load_context(tiny.ready["tenant_id"], "aaaaaaaa-0000-4000-8000-0000000000ff")


async def test_without_chat_read_all_only_chats_are_unavailable(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: setattr(state(dt), "consented", set(GRAPH_PERMISSIONS) - {"Chat.Read.All"}))
    async with directory_for(dt) as directory:
        loaded = await (await directory.load_context(dt.ready["tenant_id"], ALAN)).with_sign_ins()
    c = loaded.context
    assert c.unavailable == {"chats": "403: Chat.Read.All not granted"}
    assert c.chats == ()
    assert c.meetings and c.groups and c.contacts and c.mail and c.sign_ins and c.manager
    assert loaded.round_trips <= 2


async def test_sign_in_logs_are_rationed_and_cached(tiny: ThreadedDevTenant) -> None:
    """Six quick verifications of six people: five read the logs at once; the sixth's read waits in the
    background for the reports window (5 per 10 s) rather than be refused by Graph, and its first question did
    not wait at all; a second verification of someone reads the cache."""
    tenant = tiny.ready["tenant_id"]
    async with directory_for(tiny) as directory:
        started = {uid: await directory.load_context(tenant, uid)
                   for uid in (ALAN, GRACE, KATHERINE, MARGARET, ADA, JOSE)}
        assert all(r.context.unavailable == {"sign_ins": SIGN_INS_PENDING} for r in started.values())
        results = {uid: await r.with_sign_ins() for uid, r in started.items()}
        again = await directory.load_context(tenant, ALAN)
    assert all(r.context.sign_ins for r in results.values())
    assert "sign_ins" in again.cached and again.context.sign_ins == results[ALAN].context.sign_ins
    assert again.sign_ins_later is None and again.context.unavailable == {}
    assert "throttled" not in str([r.context.unavailable for r in results.values()])  # Graph never said 429


async def test_a_second_instance_that_finds_graphs_reports_budget_spent_waits_it_out_and_reads_the_sign_ins(
        tiny: ThreadedDevTenant) -> None:
    """Two Watchword processes share the app's reports budget at Microsoft, each counting only its own reads: when the
    first spent it, the second's read is answered 429, waits for its Retry-After and then reads the sign-ins, instead
    of deciding without them."""
    tenant = tiny.ready["tenant_id"]
    async with directory_for(tiny) as first, directory_for(tiny) as second:
        spent = [await first.load_context(tenant, uid) for uid in (ALAN, GRACE, KATHERINE, MARGARET, ADA)]
        assert all([(await r.with_sign_ins()).context.sign_ins for r in spent])
        late = await (await second.load_context(tenant, JOSE)).with_sign_ins()
    assert late.context.sign_ins and late.context.unavailable == {}


async def test_a_generated_org_resolves_meeting_partners_in_two_round_trips(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    org = state(dt).org
    target = max((u for u in org.users.values() if not u.is_service_account and u.manager_id),
                 key=lambda u: len(org.calendar(u.id)))
    async with directory_for(dt) as directory:
        loaded = await (await directory.load_context(dt.ready["tenant_id"], target.id)).with_sign_ins()
    c = loaded.context
    assert loaded.round_trips <= 2 and c.unavailable == {}
    assert c.meetings and c.groups and c.chats and c.mail and c.sign_ins
    domains = loaded.org.internal_domains
    internal = [a.who for m in c.meetings for a in m.attendees
                if a.type != "resource" and a.who.address and a.who.address.split("@")[1] in domains]
    assert internal and all(p.person is not None for p in internal)
    assert all(g.member_count is not None for g in c.groups)
    assert loaded.org.population == sum(1 for u in org.users.values() if u.account_enabled and u.user_type == "Member")
    assert loaded.org.department_members and loaded.org.others


async def test_injected_faults_leave_a_context_with_gaps_instead_of_an_error(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # devtenant's injected "timeout" hangs 30 s by default and stop() waits for it; 2.5 s is still longer
    # than one attempt may take within a 4 s budget, so it is a timeout for the client all the same.
    dt = make_tenant(generated=True, seed=1, users=60, fault_rate=0.15, fault_hang_s=2.5)
    people = [u for u in state(dt).org.users.values() if not u.is_service_account][10:13]
    async with directory_for(dt) as directory:
        loaded = [await directory.load_context(dt.ready["tenant_id"], u.id, Deadline.after(4.0)) for u in people]
    assert [r.context.profile.id for r in loaded] == [u.id for u in people]
    # Faults cost retries (more rounds) or a source; never the verification.
    assert any(r.round_trips > 2 or r.context.unavailable for r in loaded)
    for r in loaded:
        assert set(r.context.unavailable) <= {"meetings", "groups", "hierarchy", "chats", "contacts", "mail", "roles",
                                              "sign_ins"}



async def test_the_first_question_never_waits_for_slow_sign_in_logs(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # Sign-in logs slower than a verification's whole Graph budget (8 s): everything else arrives within the
    # verification's budget, the logs are handed over later, and the risk weighed meanwhile applies the
    # "sign-ins unavailable" rule.
    dt = make_tenant(endpoint_latency_ms=(("/auditLogs/signIns", 12_000.0),))
    async with directory_for(dt) as directory:
        loaded = await asyncio.wait_for(directory.load_context(dt.ready["tenant_id"], ALAN), 20)
        c = loaded.context
        assert c.meetings and c.groups and c.mail and c.manager and loaded.round_trips <= 2
        assert c.unavailable == {"sign_ins": SIGN_INS_PENDING} and c.sign_ins == ()
        assert loaded.sign_ins_later is not None
        assert assess_risk(c, Policy()).extra_bits_required == Policy().sign_ins_unavailable_extra_bits


async def test_sign_in_logs_that_take_seconds_arrive_after_the_rest(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(endpoint_latency_ms=(("/auditLogs/signIns", 2_000.0),))
    async with directory_for(dt) as directory:
        loaded = await directory.load_context(dt.ready["tenant_id"], ALAN)
        complete = await loaded.with_sign_ins()
    assert loaded.context.sign_ins == () and len(complete.context.sign_ins) == 5
    assert complete.context.unavailable == {} and complete.sign_ins_later is None
