"""The generated organisation: deterministic, shaped like a real company, activity that follows the org chart."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtenant.generate import ANOMALIES, generate_org
from devtenant.model import GroupKind, Org, User

NOW = datetime(2026, 11, 26, 14, tzinfo=UTC)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"


@pytest.fixture(scope="module")
def tiny() -> Org:
    return generate_org(3, 20, NOW)


@pytest.fixture(scope="module")
def org() -> Org:
    return generate_org(7, 300, NOW)


def people(org: Org) -> list[User]:
    return [u for u in org.users.values() if not u.is_service_account]


def close(org: Org, a: str, b: str) -> bool:
    """Manager, direct report or teammate (same manager)."""
    ua, ub = org.users[a], org.users[b]
    return ua.manager_id == b or ub.manager_id == a or (ua.manager_id is not None and ua.manager_id == ub.manager_id)


def anomalies_of(org: Org) -> dict[str, list]:
    out: dict[str, list] = {}
    for u in people(org):
        for s in org.sign_ins_of(u.id):
            if s.anomaly:
                out.setdefault(s.anomaly, []).append(s)
    return out


# --- determinism -------------------------------------------------------------------------------
def test_same_seed_users_and_now_give_the_same_org_ids_included():
    a, b = generate_org(11, 120, NOW), generate_org(11, 120, NOW)
    assert a.tenant_id == b.tenant_id and a.display_name == b.display_name and a.domains == b.domains
    assert list(a.users.values()) == list(b.users.values())
    assert list(a.groups.values()) == list(b.groups.values())
    assert a.role_assignments == b.role_assignments
    assert a.events == b.events
    assert a.chats == b.chats
    assert (a.helpdesk_group_id, a.admins_group_id) == (b.helpdesk_group_id, b.admins_group_id)


def test_lazy_mail_sign_ins_and_contacts_do_not_depend_on_call_order():
    a, b = generate_org(11, 60, NOW), generate_org(11, 60, NOW)
    ids = [u.id for u in people(a)][:6]
    first = {i: (a.messages_of(i), a.sign_ins_of(i), a.contacts_of(i)) for i in ids}
    second = {i: (b.contacts_of(i), b.sign_ins_of(i), b.messages_of(i)) for i in reversed(ids)}
    for i in ids:
        assert first[i] == tuple(reversed(second[i]))
    assert a.messages_of(ids[0]) is a.messages_of(ids[0])  # cached


def test_the_org_does_not_depend_on_python_hash_randomisation():
    script = (
        "import hashlib; from datetime import datetime, UTC; from devtenant.generate import generate_org\n"
        "org = generate_org(9, 40, datetime(2026, 11, 26, 14, tzinfo=UTC))\n"
        "u = list(org.users)[5]\n"
        "parts = (list(org.users.values()), list(org.groups.values()), org.events, org.chats, org.role_assignments,"
        " org.messages_of(u), org.sign_ins_of(u), org.contacts_of(u))\n"
        "print(hashlib.sha256(repr(parts).encode()).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {  # our own interpreter and script: nothing untrusted reaches the command line
        subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True,  # noqa: S603
                       env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_another_seed_gives_another_org():
    a, b = generate_org(1, 40, NOW), generate_org(2, 40, NOW)
    assert a.tenant_id != b.tenant_id
    assert not set(a.users) & set(b.users)


def test_now_defaults_to_the_current_utc_hour_and_anchors_every_date():
    org = generate_org(5, 20)
    assert org.now.tzinfo is not None and org.now.utcoffset() == timedelta(0)
    assert (org.now.minute, org.now.second, org.now.microsecond) == (0, 0, 0)
    assert abs(datetime.now(UTC) - org.now) < timedelta(hours=1, minutes=1)
    naive = generate_org(5, 20, NOW.replace(tzinfo=None))
    assert naive.now == NOW


# --- people and the org chart ------------------------------------------------------------------
def test_every_tenant_has_guests_and_disabled_accounts():
    org = generate_org(4, 300, NOW, strangers=True)
    guests = [u for u in org.users.values() if u.user_type == "Guest"]
    disabled = [u for u in org.users.values() if not u.account_enabled]
    assert len(guests) >= 2 and len(disabled) >= 2
    assert all("#EXT#@" in g.user_principal_name and g.mail and "#" not in g.mail for g in guests)
    assert all(d.user_type == "Member" and d.manager_id is None for d in disabled)
    assert generate_org(4, 300, NOW, strangers=True).users.keys() == org.users.keys()  # seeded
    assert len(org.users) - len(guests) - len(disabled) == 300 == len(generate_org(4, 300, NOW).users)


@pytest.mark.parametrize("users", [20, 21, 333, 1234])
def test_the_directory_holds_exactly_the_users_asked_for(users):
    org = generate_org(4, users, NOW)
    assert len(org.users) == users
    assert len({u.user_principal_name.lower() for u in org.users.values()}) == users
    assert any(u.is_service_account for u in org.users.values())


@pytest.mark.parametrize("users", [19, 50_001])
def test_sizes_outside_20_to_50000_are_refused(users):
    with pytest.raises(ValueError, match="between 20 and 50000"):
        generate_org(1, users, NOW)


@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_the_manager_tree_is_a_tree_with_one_root(fixture, request):
    org = request.getfixturevalue(fixture)
    humans = people(org)
    roots = [u for u in humans if u.manager_id is None]
    assert len(roots) == 1 and roots[0].job_title == "Chief Executive Officer"
    for u in humans:
        seen = set()
        while u.manager_id is not None:
            assert u.id not in seen, "cycle in the manager chain"
            seen.add(u.id)
            u = org.users[u.manager_id]
            assert not u.is_service_account
        assert u is roots[0]
    assert all(u.manager_id is None for u in org.users.values() if u.is_service_account)
    assert max(len(org.direct_reports(u.id)) for u in humans if u is not roots[0]) <= 10


def test_people_look_like_people(org):
    humans = people(org)
    assert len({u.department for u in humans}) >= 8
    assert len({u.city for u in humans}) >= 2
    assert all(u.usage_location and len(u.usage_location) == 2 for u in humans)
    assert all(u.employee_id and u.job_title and u.mail for u in humans)
    assert len({u.employee_id for u in humans}) == len(humans)
    assert any(not u.display_name.isascii() for u in humans), "some names carry diacritics"
    assert all(u.user_principal_name.isascii() for u in org.users.values())
    assert all(u.created_date_time <= u.last_password_change_date_time <= org.now for u in humans)


def test_a_few_people_changed_their_password_within_the_last_day(org):
    recent = [u for u in people(org) if org.now - u.last_password_change_date_time < timedelta(days=1)]
    assert 1 <= len(recent) <= len(people(org)) // 20


def test_federated_users_come_from_the_federated_domain(org):
    federated = {d.id for d in org.domains if d.authentication_type == "Federated"}
    default = [d for d in org.domains if d.is_default]
    assert len(federated) == 1 and len(default) == 1 and default[0].authentication_type == "Managed"
    synced = [u for u in org.users.values() if u.on_premises_sync_enabled]
    assert 0 < len(synced) < len(org.users) // 10
    for u in synced:
        assert u.user_principal_name.split("@")[1] in federated and u.on_premises_immutable_id
    assert all(u.user_principal_name.split("@")[1] == default[0].id
               for u in org.users.values() if not u.on_premises_sync_enabled)


# --- groups and roles --------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_everyone_is_in_some_small_group(fixture, request):
    org = request.getfixturevalue(fixture)
    for u in org.users.values():
        assert min(len(g.member_ids) for g in org.member_of(u.id)) <= 15, u.display_name


@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_helpdesk_and_admin_groups_hold_it_people(fixture, request):
    org = request.getfixturevalue(fixture)
    helpdesk, admins = org.groups[org.helpdesk_group_id], org.groups[org.admins_group_id]
    assert helpdesk.display_name == "Helpdesk Agents" and admins.display_name == "Watchword Admins"
    assert len(helpdesk.member_ids) >= 3 and len(admins.member_ids) >= 2
    for uid in (*helpdesk.member_ids, *admins.member_ids):
        assert org.users[uid].department == "IT"


@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_groups_of_all_four_kinds_tenant_wide_nested_and_role_assignable(fixture, request):
    org = request.getfixturevalue(fixture)
    groups = list(org.groups.values())
    assert {g.kind for g in groups} == set(GroupKind)
    tenant_wide = [g for g in groups if g.is_tenant_wide]
    assert any(len(g.member_ids) >= len(people(org)) for g in tenant_wide)
    assert any(m in org.groups for g in groups for m in g.member_ids), "some groups nest groups"
    role_assignable = {g.id for g in groups if g.is_assignable_to_role}
    assert role_assignable and all(org.groups[g].kind is GroupKind.SECURITY for g in role_assignable)
    assert any(a.principal_id in role_assignable for a in org.role_assignments)
    assert all(g.mail is None for g in groups if g.kind is GroupKind.SECURITY)
    assert all(g.mail for g in groups if g.kind is not GroupKind.SECURITY)


@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_directory_roles_use_entras_template_ids_and_sit_with_it(fixture, request):
    org = request.getfixturevalue(fixture)
    assert len(org.role_definitions) == 16
    assert org.role_definitions[GLOBAL_ADMIN].display_name == "Global Administrator"
    assert org.role_definitions[GLOBAL_ADMIN].is_privileged
    assert not org.role_definitions["29232cdf-9323-42fd-ade2-1d097af3e4de"].is_privileged  # Exchange
    global_admins = [a for a in org.role_assignments if a.role_definition_id == GLOBAL_ADMIN]
    assert 2 <= len(global_admins) <= 3
    helpdesk = set(org.groups[org.helpdesk_group_id].member_ids)
    helpdesk_admins = [a.principal_id for a in org.role_assignments if a.role_definition_id == HELPDESK_ADMIN]
    assert helpdesk_admins and set(helpdesk_admins) <= helpdesk
    for a in org.role_assignments:
        assert a.role_definition_id in org.role_definitions
        assert a.principal_id in org.users or a.principal_id in org.groups
    holders = {a.principal_id for a in org.role_assignments if a.principal_id in org.users}
    assert all(org.users[h].department in ("IT", "Finance") for h in holders)
    assert len(holders) <= max(6, len(people(org)) // 20)


def test_a_handful_of_it_people_are_eligible_through_pim_for_privileged_roles_they_do_not_hold(org):
    eligibilities = org.role_eligibilities
    assert 2 <= len(eligibilities) <= max(2, len(people(org)) // 100)
    active = {a.principal_id for a in org.role_assignments}
    for e in eligibilities:
        assert org.role_definitions[e.role_definition_id].is_privileged
        assert org.users[e.principal_id].department == "IT" and e.principal_id not in active
    assert generate_org(3, 400, NOW).role_eligibilities == generate_org(3, 400, NOW).role_eligibilities


# --- sign-ins ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["tiny", "org"])
def test_every_kind_of_sign_in_anomaly_is_injected(fixture, request):
    org = request.getfixturevalue(fixture)
    found = anomalies_of(org)
    assert set(found) == set(ANOMALIES)
    burst = found["failed_burst"]
    assert all(s.error_code in (50126, 50053) for s in burst) and len(burst) >= 8
    assert all(s.risk_state == "atRisk" and s.risk_level_during_sign_in in ("high", "medium")
               for s in found["risky_sign_in"])
    assert all(s.error_code == 0 for s in found["new_country"])


def test_anomalies_stand_out_from_each_users_usual_places():
    org = generate_org(8, 200, NOW)
    for u in people(org):
        sign_ins = org.sign_ins_of(u.id)
        usual = {s.country_or_region for s in sign_ins if not s.anomaly}
        for s in sign_ins:
            if s.anomaly == "new_country":
                assert s.country_or_region not in usual
                assert org.now - s.created_date_time < timedelta(days=4)
            if s.anomaly == "failed_burst":
                assert org.now - s.created_date_time < timedelta(days=1)
        travel = sorted((s for s in sign_ins if s.anomaly == "impossible_travel"), key=lambda s: s.created_date_time)
        if travel:
            first, second = travel
            assert first.country_or_region != second.country_or_region
            assert second.created_date_time - first.created_date_time <= timedelta(minutes=90)


def test_sign_ins_cover_thirty_days_newest_first_mostly_successful(org):
    u = people(org)[10]
    sign_ins = org.sign_ins_of(u.id)
    assert sign_ins == sorted(sign_ins, key=lambda s: s.created_date_time, reverse=True)
    assert all(org.now - timedelta(days=31) <= s.created_date_time <= org.now for s in sign_ins)
    assert sum(s.error_code == 0 for s in sign_ins) / len(sign_ins) > 0.8
    assert len({s.city for s in sign_ins if not s.anomaly}) <= 4


# --- meetings and chats ------------------------------------------------------------------------
def test_a_meeting_shows_in_every_attendees_calendar(org):
    for e in org.events:
        for uid in (e.organizer_id, *e.attendee_ids):
            assert e in org.calendar(uid)
        assert e.declined_ids <= set(e.attendee_ids)
        assert e.start < e.end


def test_meetings_are_mostly_with_teammates_and_the_manager(org):
    pairs = Counter(close(org, e.organizer_id, a) for e in org.events if e.kind != "all_hands" for a in e.attendee_ids)
    assert pairs[True] / sum(pairs.values()) > 0.6


def test_chats_are_mostly_with_teammates_and_the_manager(org):
    pairs = Counter(close(org, a, b) for c in org.chats for a, b in itertools.combinations(c.member_ids, 2))
    assert pairs[True] / sum(pairs.values()) > 0.6
    assert {c.chat_type for c in org.chats} == {"oneOnOne", "group", "meeting"}
    active = [c for c in org.chats if org.now - c.last_updated_date_time < timedelta(days=3)]
    assert len(active) > len(org.chats) // 4
    for c in org.chats:
        times = [m.created_date_time for m in c.messages]
        assert times == sorted(times) and all(t <= org.now for t in times)
        assert len({m.id for m in c.messages}) == len(c.messages)


def test_calendars_hold_every_kind_of_meeting(org):
    kinds = Counter(e.kind for e in org.events)
    assert set(kinds) == {"one_on_one", "team", "project", "all_hands", "cross_team", "focus", "external"}
    assert kinds["cross_team"] < kinds["project"] < kinds["team"]
    assert any(e.sensitivity == "private" for e in org.events)
    assert any(e.is_cancelled for e in org.events)
    assert any(e.declined_ids for e in org.events)
    assert any(e.external_attendees for e in org.events)
    assert all(not e.attendee_ids for e in org.events if e.kind == "focus")
    all_hands = max((e for e in org.events if e.kind == "all_hands"), key=lambda e: len(e.attendee_ids))
    assert len(all_hands.attendee_ids) == len(people(org)) - 1


def test_every_person_has_a_weekly_one_on_one_with_their_manager(org):
    window = (org.now - timedelta(days=14), org.now + timedelta(days=7))
    for u in people(org):
        if u.manager_id is None:
            continue
        one_on_ones = [e for e in org.calendar(u.id) if e.kind == "one_on_one" and window[0] <= e.start < window[1]
                       and {e.organizer_id, *e.attendee_ids} == {u.id, u.manager_id}]
        assert one_on_ones, u.display_name


def test_activity_sits_in_the_window_and_mostly_on_workdays(org):
    assert all(org.now - timedelta(days=31) <= e.start <= org.now + timedelta(days=8) for e in org.events)
    assert any(e.start > org.now for e in org.events), "the coming days are planned too"
    weekend = sum(e.start.weekday() >= 5 for e in org.events)
    assert weekend / len(org.events) < 0.03


# --- contacts and mail -------------------------------------------------------------------------
def test_contacts_are_mostly_colleagues_plus_some_outsiders(org):
    contacts = [c for u in people(org)[:60] for c in org.contacts_of(u.id)]
    colleagues = [c for c in contacts if c.email_addresses[0].user_id]
    assert len(colleagues) / len(contacts) > 0.5
    assert len(colleagues) < len(contacts), "some outsiders too"
    assert all(c.email_addresses[0].user_id in org.users for c in colleagues)
    for u in people(org)[:60]:
        assert 2 <= len(org.contacts_of(u.id)) <= 60


def test_mail_arrives_every_workday_mostly_from_work_partners(org):
    u = next(u for u in people(org) if u.manager_id and org.users[u.manager_id].manager_id)
    mail = org.messages_of(u.id)
    assert mail == sorted(mail, key=lambda m: m.received_date_time, reverse=True)
    assert all(org.now - timedelta(days=31) <= m.received_date_time <= org.now for m in mail)
    workdays = {m.received_date_time.date() for m in mail if m.received_date_time.weekday() < 5}
    assert len(workdays) >= 19
    internal = Counter(m.sender.user_id for m in mail if m.sender.user_id in org.users
                       and not org.users[m.sender.user_id].is_service_account)
    top = [uid for uid, _ in internal.most_common(3)]
    assert all(close(org, u.id, uid) for uid in top)
    assert any(m.sender.user_id is None for m in mail), "newsletters and outsiders write too"
