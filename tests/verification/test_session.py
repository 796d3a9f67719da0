"""The verification session: decisions, stopping rules, time, transcript and resume."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import timedelta

import pytest

from bench.callers import GenuineCaller as _GenuineCaller
from bench.callers import InformedImpostor, converse
from tests.verification import builders as b
from verification import (
    NO_RISK,
    Flag,
    Form,
    Outcome,
    Policy,
    Question,
    RiskAssessment,
    RiskLevel,
    RiskSignal,
    Source,
    VerificationSession,
    assess_risk,
    generate_questions,
)
from verification.session import FULL_NAME_PROMPT


def GenuineCaller(rng: random.Random | None = None, **noise) -> _GenuineCaller:  # noqa: N802 - reads like the class
    """The real Alan, answering from the fixture's ground truth (tests.verification.builders.TRUTH)."""
    return _GenuineCaller(b.memory(), rng or random.Random(0), **noise)


def run(caller, context=None, org=None, policy=None, risk=NO_RISK, seed="seed"):
    """Drive one session over the fixture to its decision, 30 seconds per answer."""
    now = [b.NOW]
    session = VerificationSession(lambda: now[0], seed=seed)
    step = session.start(context or b.context(), org or b.org(), policy or Policy(), risk, 0)
    return converse(session, step, caller, now)


class Clock:
    def __init__(self) -> None:
        self.now = b.NOW

    def __call__(self):
        return self.now

    def tick(self, seconds: float = 30) -> None:
        self.now += timedelta(seconds=seconds)


def started(context=None, org=None, policy=None, risk=NO_RISK, attempts=0, seed="seed"):
    clock = Clock()
    session = VerificationSession(clock, seed=seed)
    step = session.start(context or b.context(), org or b.org(), policy or Policy(), risk, attempts)
    return session, step, clock


MEDIUM = RiskAssessment(RiskLevel.MEDIUM, (RiskSignal("failed_burst", RiskLevel.MEDIUM, "burst"),), 8.0, False)


def test_genuine_caller_passes_in_four_questions():
    decision = run(GenuineCaller())
    assert decision.outcome is Outcome.VERIFIED
    assert decision.questions_asked <= 4
    assert decision.bits_earned >= decision.bits_required == 20


def test_caller_guessing_teammates_fails():
    decision = run(InformedImpostor(b.chart()))
    assert decision.outcome is Outcome.NOT_VERIFIED
    assert decision.bits_earned < 20


def test_caller_who_only_says_i_dont_know_is_not_verified():
    decision = run(lambda prompt: "I don't know")
    assert decision.outcome is Outcome.NOT_VERIFIED
    assert decision.wrong_answers == 0
    assert {t.result for t in decision.transcript} == {"skipped"}


def test_privileged_admin_is_refused_before_questions():
    session, step, _ = started(context=b.context(roles=(b.GLOBAL_ADMIN, b.HELPDESK_ROLE)))
    assert step.done and step.prompt is None
    assert step.decision.outcome is Outcome.PRIVILEGED
    assert "Global Administrator" in step.decision.reason
    assert step.decision.questions_asked == 0


def test_person_only_eligible_for_global_administrator_is_refused_as_eligible_through_pim():
    eligible = replace(b.GLOBAL_ADMIN, eligible=True)
    _, step, _ = started(context=b.context(roles=(eligible, b.HELPDESK_ROLE)))
    assert step.done and step.decision.outcome is Outcome.PRIVILEGED
    assert "eligible" in step.decision.reason and "PIM" in step.decision.reason
    assert "Global Administrator" in step.decision.reason and step.decision.questions_asked == 0


def test_member_of_a_role_assignable_group_is_privileged():
    admins = b.Group("g-adm", "Tier 0 Admins", b.GroupKind.SECURITY, 3, is_role_assignable=True)
    _, step, _ = started(context=b.context(groups=(*b.context().groups, admins)))
    assert step.decision.outcome is Outcome.PRIVILEGED


def test_unreadable_roles_are_treated_as_privileged():
    _, step, _ = started(context=b.context(unavailable={"roles": "403 missing RoleManagement.Read.Directory"}))
    assert step.decision.outcome is Outcome.PRIVILEGED and "403" in step.decision.reason
    lenient = Policy(refuse_when_roles_unknown=False)
    _, step, _ = started(context=b.context(unavailable={"roles": "403"}), policy=lenient)
    assert not step.done


def test_helpdesk_role_holder_is_not_privileged():
    _, step, _ = started(context=b.context(roles=(b.HELPDESK_ROLE,)))
    assert not step.done


def test_locked_out_after_three_attempts_in_a_day():
    assert not started(attempts=2)[1].done
    _, step, _ = started(attempts=3)
    assert step.decision.outcome is Outcome.LOCKED_OUT


def test_high_risk_blocks_before_questions():
    context = b.context(sign_ins=(replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),))
    _, step, _ = started(context=context, risk=assess_risk(context, Policy()))
    assert step.decision.outcome is Outcome.BLOCKED_BY_RISK
    assert "high risk" in step.decision.reason


def test_medium_risk_needs_more_bits():
    session, step, _ = started(risk=MEDIUM)
    assert step.bits_required == 28
    decision = run(GenuineCaller(), risk=MEDIUM)
    assert decision.outcome is Outcome.VERIFIED and decision.bits_earned >= 28
    assert decision.risk.level is RiskLevel.MEDIUM


def test_not_enough_questions_when_the_data_is_thin():
    thin = b.context(meetings=(), chats=(), mail=(), contacts=())
    _, step, _ = started(context=thin)
    assert step.decision.outcome is Outcome.NOT_ENOUGH_QUESTIONS
    assert step.decision.questions_asked == 0


def test_session_times_out_after_ten_minutes():
    session, step, clock = started()
    clock.tick(9 * 60)
    assert not session.check().done
    clock.tick(61)
    step = session.answer(b.TIM.display_name)
    assert step.decision.outcome is Outcome.TIMED_OUT
    assert session.outcome is Outcome.TIMED_OUT


def test_a_wrong_answer_is_not_asked_again_and_gets_the_same_next_question_as_a_right_one():
    right, _, _ = started()
    wrong, _, _ = started()
    after_right = right.answer(b.TIM.display_name)
    after_wrong = wrong.answer("Ada Lovelace")
    assert right.transcript[0].result == "correct" and wrong.transcript[0].result == "wrong"
    assert after_right.prompt == after_wrong.prompt
    assert after_right.prompt.question_id != right.transcript[0].question_id
    assert (after_right.clarify, after_right.offer) == (after_wrong.clarify, after_wrong.offer)


def play(session, step, answers):
    """Answer with `answers` (a function of the question's number) to the decision."""
    asked = []
    while not step.done:
        asked.append(step.prompt.question_id)
        step = session.answer(answers(len(asked)))
    return asked, step.decision


def test_two_wrong_answers_fail_the_session_without_stopping_it_any_earlier():
    all_wrong = play(*started()[:2], lambda n: "Ada Lovelace")
    right_first = play(*started()[:2], lambda n: b.TIM.display_name if n == 1 else "Ada Lovelace")
    assert all_wrong[0] == right_first[0]  # the same questions, to the same end
    for _, decision in (all_wrong, right_first):
        assert decision.outcome is Outcome.NOT_VERIFIED and decision.wrong_answers >= 2
        assert "wrong" not in decision.reason and "bits" not in decision.reason


def test_after_two_wrong_answers_right_ones_no_longer_verify():
    session, step, _ = started()
    genuine = GenuineCaller()
    answers = iter(["Ada Lovelace", "Ada Lovelace"])
    while not step.done:
        step = session.answer(next(answers, None) or genuine(step.prompt))
    assert step.decision.outcome is Outcome.NOT_VERIFIED
    assert step.decision.bits_earned >= step.decision.bits_required  # enough right answers, yet two were wrong


def test_a_session_says_it_can_no_longer_pass_after_two_wrong_answers_while_it_keeps_asking():
    session, step, _ = started()
    assert session.can_still_pass
    step = session.answer("Ada Lovelace")
    assert session.can_still_pass
    step = session.answer("Ada Lovelace")
    assert not session.can_still_pass and not step.done and step.prompt is not None


def test_skip_is_not_counted_as_wrong():
    session, step, _ = started()
    step = session.skip()
    assert not step.done
    assert session.transcript[0].result == "skipped" and session.transcript[0].bits_earned == 0


def test_bare_first_name_asks_for_the_full_name_whatever_it_matched():
    for said in ("Tim", "Zebedee"):
        session, step, _ = started()
        step = session.answer(said)
        assert step.clarify and step.prompt.text == FULL_NAME_PROMPT


def test_full_name_after_a_bare_first_name_is_correct():
    session, step, _ = started()
    assert step.prompt.kind == "chats.chatted.outside_team"
    session.answer("Tim")
    step = session.answer("Berners-Lee")
    assert session.transcript[-1].result == "correct"


def test_partial_answer_earns_reduced_bits():
    session, step, _ = started()
    bits = step.prompt.bits
    session.answer("Tim")  # six Tims in the tenant
    step = session.answer("I don't know their surname")
    entry = session.transcript[-1]
    assert entry.result == "partial"
    assert entry.bits_earned == pytest.approx(bits * Policy().partial_credit, abs=0.01)


def test_one_person_is_never_credited_twice():
    session, step, _ = started()
    session.answer(b.TIM.display_name)
    step = session.check()
    assert step.prompt.kind.startswith("meetings.")
    assert "haven't named already" in step.prompt.text
    step = session.answer(b.TIM.display_name)
    entry = session.transcript[-1]
    assert entry.result == "unscored" and entry.bits_earned == 0 and session.to_dict()["wrong"] == 0


def test_stops_when_skips_leave_no_way_to_reach_the_requirement():
    decision = run(lambda prompt: "I don't know", policy=Policy(max_questions=3))
    assert decision.outcome is Outcome.NOT_VERIFIED
    assert decision.questions_asked < 3  # after one skip, two questions cannot make up 20 bits even if right
    assert "bits" not in decision.reason


def test_one_skip_does_not_end_the_session_while_other_sources_remain():
    session, step, _ = started()
    step = session.skip()
    assert step.prompt.source != session.transcript[0].source
    step = session.skip()
    assert not step.done and step.prompt is not None


def test_contacts_are_never_the_first_question():
    contacts_first = Policy(sources=frozenset({Source.CONTACTS, Source.CHATS}), required_bits=12)
    for seed in map(str, range(20)):
        assert started(policy=contacts_first, seed=seed)[1].prompt.source is not Source.CONTACTS
    only_contacts = Policy(sources=frozenset({Source.CONTACTS}), required_bits=6)
    assert started(policy=only_contacts)[1].prompt.source is Source.CONTACTS


def test_questions_come_from_varied_sources():
    decision = run(GenuineCaller())
    sources = [t.source for t in decision.transcript]
    assert len(sources) == len(set(sources))


def test_multiple_choice_never_precedes_free_recall():
    decision = run(lambda prompt: "no idea", policy=Policy(max_questions=12, required_bits=10, max_wrong=12),
                   context=b.context(), org=b.org())
    forms = [t.form for t in decision.transcript]
    assert set(forms) == {Form.FREE_RECALL.value, Form.MULTIPLE_CHOICE.value}  # both asked: not vacuous
    assert forms == sorted(forms, key=lambda f: f == Form.MULTIPLE_CHOICE.value)


def test_hierarchy_questions_are_never_asked():
    decision = run(lambda prompt: "no idea", policy=Policy(max_questions=20, required_bits=60))
    assert Source.HIERARCHY.value not in {t.source for t in decision.transcript}


def test_federated_account_is_flagged():
    decision = run(GenuineCaller(), context=b.context(is_federated=True))
    assert decision.verified and Flag.FEDERATED.value in decision.flags


def secrets_of_the_fixture() -> list[str]:
    names = [p.display_name for p in (b.TIM, b.RADIA, b.VINT, b.HEDY, b.XIOMARA, b.KNUTH, b.DIJKSTRA)]
    return names + ["Joan Clarke", "Compilers Team", "Rust Guild"]


def test_transcript_never_contains_accepted_answers():
    decision = run(GenuineCaller(), context=b.context())
    text = json.dumps(decision.to_dict())
    for secret in [*secrets_of_the_fixture(), "Berners", "Perlman"]:
        assert secret not in text
    assert "prompt" not in text  # prompts may quote meeting subjects when a tenant allows them


def test_session_round_trips_through_dict():
    session, step, clock = started()
    session.answer(b.TIM.display_name)
    data = json.loads(json.dumps(session.to_dict()))
    plan = [Question.from_dict(q) for q in json.loads(json.dumps([q.to_dict() for q in session.plan()]))]
    restored = VerificationSession.from_dict(data, clock, plan)
    assert restored.to_dict() == session.to_dict()
    assert restored.check() == session.check()
    caller = GenuineCaller(said={b.TIM.display_name})
    a, r = session.check(), restored.check()
    while not a.done:
        answer = caller(a.prompt)
        a, r = session.answer(answer), restored.answer(answer)
        assert a == r
    assert restored.decision == session.decision and restored.outcome is Outcome.VERIFIED


def test_accepted_answers_live_only_in_the_plan_until_the_decision():
    session, _, _ = started()
    progress = json.dumps(session.to_dict())
    assert not any(secret in progress for secret in secrets_of_the_fixture())
    assert b.TIM.display_name in json.dumps([q.to_dict() for q in session.plan()])
    assert b.TIM.display_name not in repr(session)


def test_each_turn_moves_only_the_small_progress_not_the_plan():
    session, _, _ = started()
    session.answer(b.TIM.display_name)
    plan_bytes = len(json.dumps([q.to_dict() for q in session.plan()]))
    assert len(json.dumps(session.to_dict())) < plan_bytes
    assert len(json.dumps(session.to_dict())) < 4_000


def test_resuming_without_the_plan_it_needs_fails_clearly():
    session, _, clock = started()
    with pytest.raises(ValueError, match="question plan lacks"):
        VerificationSession.from_dict(session.to_dict(), clock, ())


def test_a_resumed_session_judges_a_repeated_name_as_the_original_does():
    session, _, clock = started()
    session.answer(b.TIM.display_name)
    assert session.to_dict()["secret"]["credited"]
    restored = VerificationSession.from_dict(json.loads(json.dumps(session.to_dict())), clock, session.plan())
    assert restored.to_dict() == session.to_dict()
    while not session.check().done:  # Tim again (credited already), then blanks: both sessions agree throughout
        a, r = session.answer(b.TIM.display_name), restored.answer(b.TIM.display_name)
        assert a == r and restored.to_dict() == session.to_dict()


def test_decided_session_drops_its_secrets():
    session, step, _ = started()
    session.cancel()
    data = json.dumps(session.to_dict())
    assert session.outcome is Outcome.CANCELLED
    assert json.loads(data)["secret"] == {} and session.plan() == ()
    assert not any(secret in data for secret in secrets_of_the_fixture())


def test_decided_session_ignores_further_answers():
    session, step, _ = started()
    session.cancel()
    assert session.answer(b.TIM.display_name).decision.outcome is Outcome.CANCELLED


def test_session_cannot_start_twice():
    session, _, _ = started()
    with pytest.raises(RuntimeError):
        session.start(b.context(), b.org(), Policy(), NO_RISK, 0)


def test_genuine_callers_with_recall_noise_pass_and_informed_impostors_do_not():
    """A small Monte Carlo on the fixture (bench/ runs the big one on a generated org)."""
    genuine = [run(GenuineCaller(random.Random(i), forget=0.2, first_name_only=0.3, typo=0.15, knows_surname=0.85),
                   seed=str(i)) for i in range(60)]
    impostor = [run(InformedImpostor(b.chart(), random.Random(i)), seed=str(i)) for i in range(60)]
    assert sum(d.verified for d in genuine) >= 55  # each question asked once: a slip is not retried
    assert sorted(d.questions_asked for d in genuine)[30] <= 4
    assert not any(d.verified for d in impostor)


def test_follow_up_comes_after_its_first_question_is_answered_right_or_wrong_but_not_after_a_skip():
    policy = Policy(max_questions=12, required_bits=10, max_wrong=12)
    skipped, _ = play(*started(policy=policy)[:2], lambda n: "I don't know")
    assert len(skipped) > 5 and not any("_again." in q for q in skipped)  # every first question was offered
    wrong, _ = play(*started(policy=policy)[:2], lambda n: "Ada Lovelace")
    assert any("_again." in q for q in wrong)


def test_follow_up_never_credits_the_same_person_twice():
    decision = run(GenuineCaller(), policy=Policy(required_bits=40, max_questions=10))
    kinds = [t.kind for t in decision.transcript]
    again = [k for k in kinds if "_again." in k]
    assert again, kinds
    assert decision.verified
    for kind in again:
        first = kind.replace("_again.", ".")
        assert kinds.index(first) < kinds.index(kind)


def test_caller_who_blanks_on_the_first_two_questions_can_still_pass():
    blanks = iter(range(2))
    genuine = GenuineCaller()

    def caller(prompt):
        if prompt.text != FULL_NAME_PROMPT and next(blanks, None) is not None:
            return "I don't know"
        return genuine(prompt)

    decision = run(caller)
    assert [t.result for t in decision.transcript[:2]] == ["skipped", "skipped"]
    assert decision.outcome is Outcome.VERIFIED and decision.questions_asked <= Policy().max_questions


CHATS_ONLY = Policy(sources=frozenset({Source.CHATS}), required_bits=9)  # chats: 7.64 + 6.64 + 2 x 2.32 bits


def test_multiple_choice_is_still_offered_when_its_answer_was_already_credited():
    first = next(q for q in generate_questions(b.context(), b.org(), CHATS_ONLY, "seed")
                 if q.id == "chats.chatted.choice")
    genuine, said = GenuineCaller(), []

    def caller(prompt):  # names the first version's right answer, then recalls no one else
        if prompt.options:
            return genuine(prompt)
        said.append(prompt.kind)
        return first.accepted[0].display if len(said) == 1 else "no idea"

    decision = run(caller, policy=CHATS_ONLY)
    asked = [t.question_id for t in decision.transcript if t.kind == "chats.chatted.choice"]
    assert decision.transcript[0].result == "correct"
    assert asked == ["chats.chatted.choice#2"]  # another version, with another right answer
    assert decision.outcome is Outcome.VERIFIED


def test_multiple_choice_versions_per_source_are_capped_by_the_policy():
    genuine = GenuineCaller()

    def caller(prompt):  # recognises every true option, recalls nobody
        return genuine(prompt) if prompt.options else "no idea"

    two = run(caller, policy=replace(CHATS_ONLY, required_bits=4.5))
    choices = [t.question_id for t in two.transcript if t.form == Form.MULTIPLE_CHOICE.value]
    assert two.outcome is Outcome.VERIFIED and len(set(choices)) == len(choices) == 2
    one = run(caller, policy=replace(CHATS_ONLY, required_bits=4.5, multiple_choice_per_source=1))
    assert one.outcome is Outcome.NOT_VERIFIED  # one 2.32-bit pick cannot make up 4.5 bits
    assert sum(t.form == Form.MULTIPLE_CHOICE.value for t in one.transcript) <= 1


def test_someone_who_recognises_but_cannot_recall_is_asked_every_version_of_a_source_by_default():
    """After "I don't know" to the free-recall questions, three independent 1-in-5 picks (6.96 bits) can reach what two
    (4.64) cannot: the code's 6 bits, for a person whose only private facts are one source's."""
    clock = Clock()
    session = VerificationSession(clock, seed="seed")
    session.start(b.context(), b.org(), replace(CHATS_ONLY, required_bits=6.5), NO_RISK, 0)
    plan = session.plan()
    second = next(q for q in plan if q.id == "chats.chatted.choice#2")
    third = replace(second, id="chats.chatted.choice#3")  # the fixture has partners for two versions only
    data = session.to_dict()
    data["secret"]["pool"].append(third.id)
    session = VerificationSession.from_dict(data, clock, (*plan, third))
    step, asked = session.check(), []
    while not step.done:
        q = session.asking
        asked.append(q.id)
        step = session.answer(q.options[q.correct_option] if q.options else "no idea")
    assert [i for i in asked if "choice" in i] == ["chats.chatted.choice", "chats.chatted.choice#2",
                                                   "chats.chatted.choice#3"]


def test_a_spare_multiple_choice_version_stands_in_for_those_whose_answer_was_named_earlier():
    """The caller names, in free recall, the right answers of two multiple-choice versions. Each of the versions then
    asked must still have a right answer not credited yet, so picking it proves something."""
    others = tuple(b.person(f"u-x{i}", f"Given{chr(65 + i)}", f"Surname{chr(65 + i)}", "Analyst", "Operations",
                            "Leeds") for i in range(24))  # enough decoys for every version
    org = b.org(others=(*b.OTHERS, *others))
    policy = Policy(sources=frozenset({Source.MEETINGS}), required_bits=17, multiple_choice_per_source=2)
    clock = Clock()
    session = VerificationSession(clock, seed="seed")
    step = session.start(b.context(), org, policy, NO_RISK, 0)
    choices = [q for q in session.plan() if q.form is Form.MULTIPLE_CHOICE]
    named = iter(q.accepted[0].display for q in choices[:2])
    asked = []
    while not step.done:
        q = session.asking
        asked.append(q.id)
        step = session.answer(q.options[q.correct_option] if q.options else next(named, "no idea"))
    results = {t.question_id: t.result for t in step.decision.transcript}
    picked = [i for i in asked if "choice" in i]
    assert len(picked) == 2 and not {q.id for q in choices[:2]} & set(picked)
    assert all(results[i] == "correct" for i in picked), results


CONTACTS_ONLY = Policy(sources=frozenset({Source.CONTACTS}), required_bits=8)


def _first_name_alone_for_joan(org) -> float:
    """Joan Clarke (outside the organisation) named by her first name alone, the surname not known: bits earned."""
    session, step, _ = started(org=org, policy=CONTACTS_ONLY)
    assert step.prompt.kind.startswith("contacts.saved.") and step.prompt.bits == 8
    session.answer("Joan")
    session.answer("I don't know their surname")
    entry = session.transcript[-1]
    assert entry.result == "partial"
    return entry.bits_earned


def test_a_rare_first_name_alone_for_an_outsider_earns_what_its_rarity_is_worth():
    """One Joan in 400 people: two bare-name guesses hit one saved outsider about 1 time in 130 (7 bits), where half
    credit gave 4."""
    rare = _first_name_alone_for_joan(b.org(given_name_counts={**b.GIVEN_COUNTS, "joan": 3}))
    assert rare == pytest.approx(-math.log2(2 * 1 * (3 + 1) / (1200 + 1)), abs=0.01)


def test_a_common_first_name_alone_for_an_outsider_earns_no_more_than_half():
    common = _first_name_alone_for_joan(b.org(given_name_counts={**b.GIVEN_COUNTS, "joan": 240}))
    assert common == pytest.approx(8 * Policy().partial_credit, abs=0.01)
