"""The Policy page: the form, validation with clear messages (keeping what was typed), and the audit of changes."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta
from unittest.mock import ANY

import pytest

from admin.context import DIRECTORY, STORE
from admin.policy_form import changed_fields, parse_policy_form
from store import TenantAccess
from store.audit import AuditFilter
from tests.admin.support import build_app, csrf_token, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory
from tests.devtenant.tiny_org import TENANT_ID
from verification.context import Source
from verification.factors import ManagerMode
from verification.policy import Policy

HELPDESK = "bbbbbbbb-0000-4000-8000-000000000001"
ENGINEERING = "bbbbbbbb-0000-4000-8000-000000000004"
CONTRACTORS = "bbbbbbbb-0000-4000-8000-000000000005"
NAMES = {HELPDESK: "Helpdesk Agents", ENGINEERING: "Engineering", CONTRACTORS: "Contractors"}


def valid_form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "required_bits": "20", "max_questions": str(Policy().max_questions), "max_wrong": "2", "session_minutes": "10",
        "max_attempts_per_day": "3", "lockout_hours": "24", "medium_risk_extra_bits": "8", "low_risk_extra_bits": "0",
        "sign_ins_unavailable_extra_bits": "4", "block_on_high_risk": "on", "refuse_when_roles_unknown": "on",
        "helpdesk_group_id": "", "include_group_ids": "", "exclude_group_ids": "",
        "possession_code": "on", "code_required_bits": "6", "manager_attestation": "when_needed",
        "manager_required_bits": "12", "code_and_manager_required_bits": "3", "strong_factor_after_limit": "on",
        "security_contact_id": "",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


SOURCES = [("sources", s) for s in ("meetings", "groups", "hierarchy", "chats", "contacts", "mail", "roles")]


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    app = build_app(settings_for(tmp_path), directory=FakeDirectory(names=dict(NAMES)))
    client = await aiohttp_client(app)
    await app[STORE].tenants.connect(TENANT_ID, display_name="Tiny", granted_permissions=["User.Read.All"])
    sign_in_as(client)
    return client


async def post(client, form: dict[str, object], sources=SOURCES):
    token = await csrf_token(client, "/admin/policy")
    data = [("csrf_token", token), *((k, str(v)) for k, v in form.items()), *sources]
    return await client.post("/admin/policy", data=data, allow_redirects=False)


async def policy_changes(client) -> list:
    page = await client.server.app[STORE].audit.query(AuditFilter(action="policy.change"))
    return list(page.entries)


def value_of(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, name
    return htmllib.unescape(match.group(1))


# --- the page -------------------------------------------------------------------------------------------
async def test_page_shows_the_defaults_before_anything_is_saved(client):
    html = await (await client.get("/admin/policy")).text()

    assert value_of(html, "required_bits") == "20" and value_of(html, "max_questions") == str(Policy().max_questions)
    assert value_of(html, "session_minutes") == "10" and value_of(html, "max_attempts_per_day") == "3"
    assert "Watchword's defaults: not changed yet." in html
    assert html.count('name="sources"') == 7 and html.count('name="sources" value=') == 7
    assert 'name="block_on_high_risk" checked' in html and 'name="self_service" checked' not in html


async def test_saving_changes_the_policy_and_audits_only_what_changed(client):
    response = await post(client, valid_form(required_bits="24", max_attempts_per_day="2", self_service="on",
                                             helpdesk_group_id=HELPDESK),
                          sources=[("sources", "meetings"), ("sources", "chats")])

    assert response.status == 303
    stored = await client.server.app[STORE].policies.get_stored(TENANT_ID)
    assert stored is not None and stored.updated_by == "ada.lovelace@tiny.example"
    assert stored.policy.required_bits == 24 and stored.policy.max_attempts_per_day == 2
    assert stored.policy.sources == frozenset({Source.MEETINGS, Source.CHATS})
    assert stored.access == TenantAccess(helpdesk_group_id=HELPDESK, self_service=True)
    [entry] = await policy_changes(client)
    assert entry.outcome == "ok" and entry.actor == "ada.lovelace@tiny.example" and entry.tenant_id == TENANT_ID
    assert entry.details["before"] == {
        "required_bits": 20.0, "max_attempts_per_day": 3, "self_service": False, "helpdesk_group_id": None,
        "sources": ["chats", "contacts", "groups", "hierarchy", "mail", "meetings", "roles"]}
    assert entry.details["after"] == {"required_bits": 24.0, "max_attempts_per_day": 2, "self_service": True,
                                      "helpdesk_group_id": HELPDESK, "sources": ["chats", "meetings"]}
    page = await (await client.get("/admin/policy")).text()
    assert "Policy saved." in page and "Helpdesk Agents" in page and "by ada.lovelace@tiny.example" in page


async def test_an_admin_sets_how_long_a_lockout_lasts(client):
    response = await post(client, valid_form(lockout_hours="1.5", max_attempts_per_day="5"))
    assert response.status == 303
    stored = await client.app[STORE].policies.get_stored(TENANT_ID)
    assert stored.policy.lockout_duration == timedelta(hours=1.5) and stored.policy.max_attempts_per_day == 5
    page = await (await client.get("/admin/policy")).text()
    assert value_of(page, "lockout_hours") == "1.5"


async def test_saving_again_records_the_second_change_against_the_first(client):
    await post(client, valid_form(session_minutes="5"))
    await post(client, valid_form(session_minutes="5", exclude_group_ids=CONTRACTORS))

    second = (await policy_changes(client))[0]  # newest first
    assert second.details == {"before": {"exclude_group_ids": []}, "after": {"exclude_group_ids": [CONTRACTORS]},
                              "correlation_id": ANY}
    policy = await client.server.app[STORE].policies.get(TENANT_ID)
    assert policy is not None and policy.session_timeout == timedelta(minutes=5)


async def test_saving_nothing_new_is_not_audited(client):
    await post(client, valid_form())
    response = await post(client, valid_form())

    assert response.status == 303 and len(await policy_changes(client)) == 1
    assert "No changes to save." in await (await client.get("/admin/policy")).text()


# --- validation -----------------------------------------------------------------------------------------
async def test_out_of_range_values_are_refused_with_messages_and_the_input_kept(client):
    response = await post(client, valid_form(max_questions="50", max_wrong="two", session_minutes="",
                                             required_bits="19.5"), sources=[])

    html = await response.text()
    assert response.status == 400 and "The policy was not saved." in html
    assert "Questions asked at most must be from 1 to 20; got 50." in html
    assert ("Wrong answers after which a caller can no longer pass: “two” is not a whole number; enter one from 1 "
            "to 10.") in html
    assert "A verification expires after: enter a whole number from 2 to 60 minutes." in html
    assert "Choose at least one source of questions." in html
    assert value_of(html, "max_questions") == "50" and value_of(html, "max_wrong") == "two"
    assert value_of(html, "required_bits") == "19.5"
    assert await client.server.app[STORE].policies.get(TENANT_ID) is None
    [refused] = await policy_changes(client)
    assert refused.outcome == "refused"
    assert refused.details == {"invalid_fields": ["max_questions", "max_wrong", "session_minutes", "sources"],
                               "correlation_id": ANY}


async def test_required_bits_below_twenty_save_with_a_nist_warning(client):
    response = await post(client, valid_form(required_bits="16"))

    assert response.status == 303
    page = await (await client.get("/admin/policy")).text()
    assert "Policy saved." in page
    assert "16 bits is below the 20 bits Watchword follows from NIST SP 800-63A-3" in page
    again = await (await client.get("/admin/policy")).text()
    assert "16 bits is below the 20 bits" in again  # on every visit, until the policy changes


async def test_a_requirement_questions_alone_cannot_reach_warns_that_only_strong_factors_pass(client):
    response = await post(client, valid_form(required_bits="60", max_questions="3"))

    assert response.status == 303
    page = await (await client.get("/admin/policy")).text()
    assert "Questions alone give at most 24 bits: only callers who also read out the code" in page


async def test_unknown_groups_are_refused_by_name(client):
    unknown = "cccccccc-0000-4000-8000-000000000009"
    response = await post(client, valid_form(include_group_ids=f"{ENGINEERING}\n{unknown}",
                                             helpdesk_group_id="not-a-guid"))
    first = await response.text()
    again = await post(client, valid_form(include_group_ids=f"{ENGINEERING}\n{unknown}"))
    second = await again.text()

    assert response.status == 400 and "“not-a-guid” is not a group&#39;s Object ID" in first
    assert again.status == 400 and f"No group with Object ID {unknown} in your directory." in second
    assert f"{ENGINEERING}\n{unknown}" in htmllib.unescape(second)  # the textarea keeps what was typed


async def test_group_names_unavailable_still_saves_and_says_so(client):
    client.server.app[DIRECTORY].unavailable = True

    response = await post(client, valid_form(helpdesk_group_id=HELPDESK))

    assert response.status == 303
    page = await (await client.get("/admin/policy")).text()
    assert "Could not check that the groups exist" in page


async def test_policy_post_needs_the_csrf_token(client):
    response = await client.post("/admin/policy", data=valid_form(), allow_redirects=False)

    assert response.status == 403


# --- the form and the diff, without HTTP ----------------------------------------------------------------
def test_form_keeps_knobs_it_does_not_show():
    current = Policy(max_bits_per_question=6.0, guesses_per_question=1)

    parsed = parse_policy_form(valid_form(), current, ["meetings"])

    assert parsed.ok and parsed.policy is not None
    assert parsed.policy.max_bits_per_question == 6.0 and parsed.policy.guesses_per_question == 1


def test_a_group_cannot_be_both_included_and_excluded():
    parsed = parse_policy_form(valid_form(include_group_ids=ENGINEERING, exclude_group_ids=ENGINEERING.upper()),
                               Policy(), ["meetings"])

    assert parsed.errors == {"exclude_group_ids": "A group cannot be both included and excluded."}


def test_more_wrong_answers_than_questions_is_refused():
    parsed = parse_policy_form(valid_form(max_questions="2", max_wrong="3"), Policy(), ["meetings"])

    assert "cannot be more than the questions asked (2)" in parsed.errors["max_wrong"]


def test_changed_fields_keep_only_differences():
    assert changed_fields({"a": 1, "b": 2, "c": [1]}, {"a": 1, "b": 3, "c": [1, 2]}) == (
        {"b": 2, "c": [1]}, {"b": 3, "c": [1, 2]})


# --- ways to pass: the code, the manager, questions -------------------------------------------------------------
SECURITY_CONTACT = "dddddddd-0000-4000-8000-000000000001"


async def test_page_lists_the_default_ways_to_pass(client):
    html = htmllib.unescape(await (await client.get("/admin/policy")).text())

    assert "20 bits of questions" in html
    assert "The code shown in their own Teams + 6 bits of questions" in html
    assert "Their manager's confirmation in Teams + 12 bits of questions" in html
    assert 'name="possession_code" checked' in html and 'name="strong_factor_after_limit" checked' in html
    assert 'value="when_needed" selected' in html


async def test_admin_combines_factors_and_names_a_security_contact(client):
    response = await post(client, valid_form(code_required_bits="8", manager_attestation="always",
                                             manager_required_bits="10", security_contact_id=SECURITY_CONTACT,
                                             strong_factor_after_limit=None))
    assert response.status == 303
    stored = await client.server.app[STORE].policies.get_stored(TENANT_ID)
    assert stored.policy.code_required_bits == 8 and stored.policy.manager_required_bits == 10
    assert stored.policy.manager_attestation is ManagerMode.ALWAYS
    assert stored.policy.security_contact_id == SECURITY_CONTACT and not stored.policy.strong_factor_after_limit
    [entry] = await policy_changes(client)
    assert entry.details["after"]["manager_attestation"] == "always"
    page = htmllib.unescape(await (await client.get("/admin/policy")).text())
    assert "The code shown in their own Teams + 8 bits of questions" in page


async def test_a_security_contact_that_is_not_an_object_id_is_refused(client):
    response = await post(client, valid_form(security_contact_id="sam@contoso.example"))
    assert response.status == 400
    assert "is not a user&#39;s Object ID" in await response.text()


async def test_an_unknown_manager_mode_is_refused(client):
    response = await post(client, valid_form(manager_attestation="sometimes"))
    assert response.status == 400 and "Choose when their manager is asked." in await response.text()


def test_strong_factors_without_any_question_warn():
    parsed = parse_policy_form(valid_form(code_required_bits="0", security_contact_id=SECURITY_CONTACT), Policy(),
                               ["meetings"])
    assert parsed.ok
    assert any("without a single question" in w and "stolen, signed-in laptop" in w for w in parsed.warnings)


def test_no_security_contact_warns():
    parsed = parse_policy_form(valid_form(), Policy(), ["meetings"])
    assert any(w.startswith("No security contact") for w in parsed.warnings)
