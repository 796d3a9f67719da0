"""Bits are measured against an informed impostor: public answers are worth nothing."""

from __future__ import annotations

import gc
import math
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.verification import builders as b
from verification import Group, GroupKind, Policy, generate_questions
from verification.guessability import (
    PeopleRanking,
    Tier,
    assess,
    assess_choice,
    p_hit_ranked,
    p_hit_uniform,
    rank_people,
)


def questions(**ctx):
    return {q.kind: q for q in generate_questions(b.context(**ctx), b.org(), Policy(), "seed")}


def test_manager_name_question_is_worth_no_bits():
    q = questions()["hierarchy.manager.anyone"]
    assert q.bits == 0.0
    assert "the manager (1 right of 1)" in q.explanation


def test_peers_and_direct_reports_are_worth_no_bits():
    reports = (b.person("u-r1", "Linus", "Torvalds"), b.person("u-r2", "Guido", "Rossum"))
    qs = questions(direct_reports=reports)
    assert qs["hierarchy.peer.anyone"].bits == 0.0
    assert qs["hierarchy.direct_report.anyone"].bits == 0.0


def test_public_questions_are_never_offered_to_the_session():
    policy = Policy()
    for q in generate_questions(b.context(), b.org(), policy, "seed"):
        if q.source.value == "hierarchy":
            assert q.bits < policy.min_bits_per_question


def test_guesses_covering_a_tier_with_an_answer_always_hit():
    assert p_hit_ranked([Tier("manager", 1, 1)], 2) == 1.0
    assert p_hit_ranked([Tier("manager", 1, 0), Tier("team", 1, 1)], 2) == 1.0


def test_partial_tier_hit_is_exact_hypergeometric():
    # 2 guesses into 8 look-alikes holding 1 answer: 1 - C(7,2)/C(8,2) = 1/4.
    assert p_hit_ranked([Tier("dept", 8, 1)], 2) == pytest.approx(0.25)
    # After the manager takes one guess, a single guess is left: 1/8.
    assert p_hit_ranked([Tier("manager", 1, 0), Tier("dept", 8, 1)], 2) == pytest.approx(1 / 8)


def test_uniform_floor_keeps_bits_honest_when_the_ranking_misses():
    tiers = [Tier("dept", 30, 0), Tier("rest", 1000, 3)]
    assert p_hit_ranked(tiers, 2) == 0.0
    g = assess(tiers, 2, cap=20.0)
    assert g.p_hit == pytest.approx(p_hit_uniform(tiers, 2))
    assert g.bits == pytest.approx(-math.log2(g.p_hit), abs=0.01)


def test_free_recall_bits_are_capped():
    g = assess([Tier("dept", 30, 0), Tier("rest", 10**6, 1)], 2, cap=8.0)
    assert g.bits == 8.0 and "capped" in g.explanation


def test_question_is_reshaped_to_exclude_the_team():
    """Alan met his manager and teammates; asking "anyone" would be ~0 bits, so the wording excludes them."""
    met = [q for q in questions().values() if q.kind.startswith("meetings.met.") and q.form.value == "free_recall"]
    assert len(met) == 1
    q = met[0]
    assert q.kind != "meetings.met.anyone"
    accepted = {c.display for c in q.accepted}
    assert b.GRACE.display_name not in accepted and b.TEAM[0].display_name not in accepted
    assert "not your manager" in q.prompt
    assert q.bits >= 5.0


def test_department_colleague_in_the_impostors_first_tier_is_cheap():
    ranking = rank_people(b.context(), b.org())
    tiers = ranking.tiers([b.DIJKSTRA.id], ranking.ids(*[label for label, _ in ranking.named[:4]]))
    assert tiers[4].accepted == 1  # same office, similar title
    assert assess(tiers, 2, 8.0).bits < 2.0


def test_multiple_choice_with_look_alike_decoys_is_worth_log2_k():
    assert assess_choice([5, 5, 5, 5, 5], 2).bits == pytest.approx(math.log2(5), abs=0.01)


def test_multiple_choice_odd_one_out_is_worth_nothing():
    assert assess_choice([7, 5, 5, 5, 5], 0).bits == 0.0


def test_multiple_choice_never_exceeds_log2_k():
    for q in generate_questions(b.context(), b.org(), Policy(), "seed"):
        if q.options:
            assert q.bits <= math.log2(len(q.options)) + 1e-9


def test_tenant_wide_and_large_groups_are_never_accepted():
    q = questions()["groups.member_of.small"]
    names = {c.display for c in q.accepted}
    assert names == {"Compilers Team", "Rust Guild"}
    assert "company-wide" in q.prompt


def test_group_named_after_the_department_is_cheap():
    eng = b.Group("g-eng-plat", "Engineering Platform", b.GroupKind.SECURITY, 20)
    others = tuple(b.Group(f"g-e{i}", f"Engineering Guild {i}", b.GroupKind.SECURITY, 20) for i in range(3))
    context = b.context(groups=(eng,))
    org = b.org(groups=(*b.org().groups, eng, *others))
    q = next(q for q in generate_questions(context, org, Policy(), "s") if q.kind == "groups.member_of.small")
    assert q.bits <= 1.0  # 2 guesses among 4 "Engineering ..." groups: P = 1/2


def test_commonest_role_is_worth_nothing():
    qs = questions(roles=(b.HELPDESK_ROLE,))
    assert qs["roles.held"].bits == 0.0


def test_rare_role_is_worth_some_bits():
    rare = b.Role("r-rare", "Attack Simulation Administrator", False)
    q = questions(roles=(rare,))["roles.held"]
    assert 4.0 < q.bits <= 8.0


def test_more_guesses_mean_fewer_bits():
    one = generate_questions(b.context(), b.org(), Policy(guesses_per_question=1), "s")
    two = generate_questions(b.context(), b.org(), Policy(guesses_per_question=2), "s")
    by_kind = {q.kind: q.bits for q in two}
    for q in one:
        if q.kind in by_kind and q.form.value == "free_recall" and 0 < by_kind[q.kind] < 8:
            assert q.bits > by_kind[q.kind]


def test_bits_explanation_names_the_impostors_route():
    q = questions()["chats.chatted.outside_team"]
    assert "informed impostor" in q.explanation and "P(hit)" in q.explanation


def test_unknown_population_still_yields_finite_bits():
    org = replace(b.org(), population=0, department_members=())
    for q in generate_questions(b.context(), org, Policy(), "s"):
        assert 0.0 <= q.bits <= Policy().max_bits_per_question


def test_common_helpdesk_role_is_cheap_even_when_tenant_role_counts_are_unknown():
    q = generate_questions(b.context(roles=(b.HELPDESK_ROLE,)), b.org(roles=()), Policy(), "s")
    assert next(x for x in q if x.kind == "roles.held").bits == 0.0


def test_follow_up_is_worth_no_more_than_its_first_question():
    qs = questions()
    for q in qs.values():
        if q.follows:
            assert q.bits <= qs[q.follows].bits
            assert set(c.key for c in q.accepted) == set(c.key for c in qs[q.follows].accepted)


def test_the_departments_biggest_named_list_is_the_impostors_first_guess():
    managers = b.Group("g-eng-mgr", "Engineering Managers", b.GroupKind.MAIL_ENABLED_SECURITY, 30)
    smaller = tuple(b.Group(f"g-e{i}", f"Engineering Guild {i}", b.GroupKind.SECURITY, 10) for i in range(10))
    org = b.org(groups=(*b.org().groups, managers, *smaller))
    qs = generate_questions(b.context(groups=(managers,)), org, Policy(), "s")
    assert next(q for q in qs if q.kind == "groups.member_of.small").bits == 0.0  # uniform in the tier: 2.46 bits


def test_group_bits_hold_against_an_impostor_who_ignores_size():
    # The smallest of four "Engineering ..." groups: last by size, but one guess in two when picked at random.
    small = b.Group("g-eng-small", "Engineering Platform", b.GroupKind.SECURITY, 5)
    others = tuple(b.Group(f"g-e{i}", f"Engineering Guild {i}", b.GroupKind.SECURITY, 20 + i) for i in range(3))
    org = b.org(groups=(*b.org().groups, small, *others))
    qs = generate_questions(b.context(groups=(small,)), org, Policy(), "s")
    assert next(q for q in qs if q.kind == "groups.member_of.small").bits == 1.0


def test_group_follow_up_is_measured_with_both_questions_guesses():
    qs = questions()
    first, again = qs["groups.member_of.small"], qs["groups.member_of_again.small"]
    assert again.follows == first.kind and again.prompt.startswith("One more, please.")
    assert first.bits > 0 and again.bits == 0.0  # four guesses by size reach Rust Guild (14 members)


def test_one_group_has_no_follow_up():
    qs = generate_questions(b.context(groups=(b.COMPILERS,)), b.org(), Policy(), "s")
    assert not [q for q in qs if q.kind == "groups.member_of_again.small"]


def test_multiple_choice_versions_share_a_kind_and_differ_in_the_right_answer():
    versions = [q for q in generate_questions(b.context(), b.org(), Policy(), "s") if q.kind == "chats.chatted.choice"]
    assert len(versions) > 1 and len({q.id for q in versions}) == len(versions)
    assert len({q.accepted[0].key for q in versions}) == len(versions)
    assert {q.bits for q in versions} == {2.32}


def test_saved_colleague_outside_the_team_makes_a_contacts_multiple_choice():
    saved = b.Contact(b.TIM.display_name, (b.TIM.mail or "",), "Tim", "Berners-Lee", b.TIM)
    qs = generate_questions(b.context(contacts=(*b.contacts(), saved)), b.org(), Policy(), "s")
    choice = next(q for q in qs if q.kind == "contacts.saved.choice")
    assert choice.options[choice.correct_option] == b.TIM.display_name
    # Without a colleague saved, the only version is the outsiders' one (tests/verification/test_outsider_choice.py).
    versions = [q for q in generate_questions(b.context(), b.org(), Policy(), "s") if q.kind == "contacts.saved.choice"]
    assert [q.options[q.correct_option] for q in versions] == ["Joan Clarke"]
    assert "from outside your organisation" in versions[0].prompt


def _mail_from_radia_bits(*groups: Group) -> list[float]:
    """Bits of the free-recall mail questions when Alan's only mail outside the team is from Radia (Sales)."""
    mail = (b.MailMessage(b.party(b.RADIA), b.NOW - timedelta(hours=30)),)
    found = questions(mail=mail, groups=(*b.context().groups, *groups))
    return [q.bits for q in found.values() if q.source.value == "mail" and q.form.value == "free_recall"
            and b.RADIA.id in {c.key for c in q.accepted}]


def test_a_project_co_member_is_what_a_linkedin_impostor_guesses_first():
    """Title, department, manager and cross-team collaborators (a project's working group, visible in the directory
    and on LinkedIn): Radia, in Alan's two-colleague project, is worth what the team's own partners are, nothing."""
    assert min(_mail_from_radia_bits()) >= 5.0
    project = Group("g-apollo", "Project Apollo", GroupKind.MICROSOFT_365, 3,
                    member_ids=frozenset({b.ALAN.id, b.RADIA.id, b.VINT.id}))
    assert max(_mail_from_radia_bits(project), default=0.0) < 1.0
    big_list = replace(project, id="g-sales-dl", name="Sales and friends", kind=GroupKind.DISTRIBUTION)
    assert min(_mail_from_radia_bits(big_list)) >= 5.0  # a mailing list says nothing about who works together


def test_a_collaborator_who_emailed_is_asked_among_other_collaborators_so_is_not_the_odd_one_out():
    """Alan's project spans Product, Sales and Finance; his meetings name those colleagues: Radia, the only one who
    emailed him, is shown among them, so the LinkedIn reader, who knows them all, still has one chance in five."""
    ids = frozenset({b.ALAN.id, b.RADIA.id, b.VINT.id, b.TIM.id, b.HEDY.id, b.XIOMARA.id})
    project = Group("g-apollo", "Project Apollo", GroupKind.MICROSOFT_365, len(ids), member_ids=ids)
    mail = (b.MailMessage(b.party(b.RADIA), b.NOW - timedelta(hours=30)),)
    [choice] = [q for q in questions(mail=mail, groups=(*b.context().groups, project)).values()
                if q.kind == "mail.emailed_by.choice"]
    assert set(choice.options) == {p.display_name for p in (b.RADIA, b.VINT, b.TIM, b.HEDY, b.XIOMARA)}
    assert choice.bits == pytest.approx(math.log2(5), abs=0.01)


def test_a_starts_ranking_goes_when_the_start_is_done_not_at_a_full_collection():
    """A start's PeopleRanking, with its memos (every colleague's Candidate, the name indexes), is freed by reference
    counting once the questions are chosen: nothing it keeps refers back to it. In a reference cycle it waited for a
    full collection, one every few dozen starts under load, and each full collection walked it."""
    gc.collect()
    gc.disable()
    try:
        assert generate_questions(b.context(), b.org(), Policy(), "seed")
        left = [o for o in gc.get_objects() if isinstance(o, PeopleRanking)]
    finally:
        gc.enable()
    assert left == []
