"""The session's decision half: the code in the person's own Teams, their manager, "not me", the attempt limit."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.verification import builders as b
from verification import NO_RISK, Outcome, Policy, VerificationSession
from verification.factors import Attestation, CodeCheck, Factor, ManagerMode
from verification.session import Flag

CODE = frozenset({Factor.POSSESSION})
MANAGER = frozenset({Factor.MANAGER})
BOTH = CODE | MANAGER


class Clock:
    def __init__(self) -> None:
        self.now = b.NOW

    def __call__(self):
        return self.now


def started(available=frozenset(), policy=None, attempts=0, context=None, risk=NO_RISK):
    clock = Clock()
    session = VerificationSession(clock, seed="seed")
    step = session.start(context or b.context(), b.org(), policy or Policy(), risk, attempts, available)
    return session, step, clock


def with_code(**kw):
    """A session that showed the code in the person's Teams; (session, step, the code)."""
    session, step, clock = started(available=CODE, **kw)
    assert step.offer == CODE and step.prompt is None and not step.done
    code = session.issue_code()
    return session, session.requested(Factor.POSSESSION), code


def truthful(session) -> str:
    question = session.asking
    credited = session.to_dict()["secret"]["credited"]  # naming a credited person again proves nothing
    fresh = [c.display for c in question.accepted if c.display != b.ALAN.display_name and c.key not in credited]
    # a multiple-choice version whose right answer was already named: the real person picks it again
    return (fresh or [c.display for c in question.accepted])[0]


def answer_truthfully_until_decided(session, step):
    for _ in range(12):
        if step.done:
            return step.decision
        step = session.answer(truthful(session))
    raise AssertionError("still asking")


def thin_context():
    """Someone whose Microsoft 365 data is thin: a few meetings and nothing else."""
    return b.context(chats=(), contacts=(), mail=(), groups=())


def wrong_code(code: str) -> str:
    return "".join(str((int(c) + 5) % 10) for c in code)


# --- the code -----------------------------------------------------------------------------------------------------
def test_with_the_code_available_it_is_asked_before_any_question():
    session, step, _ = with_code()
    assert step.awaiting == CODE and step.prompt is None and not step.done


def test_right_code_and_one_right_answer_verify():
    session, step, code = with_code()
    step = session.enter_code(code)
    assert step.code is CodeCheck.MATCH and step.prompt is not None
    decision = answer_truthfully_until_decided(session, step)
    assert decision.outcome is Outcome.VERIFIED
    assert decision.questions_asked == 1
    assert decision.factors == (Factor.POSSESSION, Factor.KNOWLEDGE)
    assert "code shown in their own Teams" in decision.reason and "bits" not in decision.reason


def test_wrong_code_stops_and_flags_an_attack():
    session, step, code = with_code()
    step = session.enter_code(wrong_code(code))
    assert step.done and step.decision.outcome is Outcome.NOT_VERIFIED
    assert step.code is CodeCheck.WRONG
    assert Flag.CODE_MISMATCH.value in step.decision.flags and step.decision.alert


def test_one_near_miss_gets_one_more_try_and_a_second_stops():
    session, step, code = with_code()
    near = code[:5] + str((int(code[5]) + 1) % 10)
    step = session.enter_code(near)
    assert step.code is CodeCheck.NEAR_MISS and not step.done and step.awaiting == CODE
    step = session.enter_code(near)
    assert step.done and Flag.CODE_MISMATCH.value in step.decision.flags


def test_near_miss_then_right_code_passes_the_code_check():
    session, step, code = with_code()
    session.enter_code(code[:5] + str((int(code[5]) + 1) % 10))
    step = session.enter_code(code)
    assert step.code is CodeCheck.MATCH and not step.done


def test_typing_slip_is_asked_again_without_counting():
    session, step, code = with_code()
    for slip in ("12345", "abc", ""):
        step = session.enter_code(slip)
        assert step.code is CodeCheck.MALFORMED and not step.done
    assert session.enter_code(code).code is CodeCheck.MATCH


def test_the_code_is_single_use():
    session, step, code = with_code()
    session.enter_code(code)
    step = session.enter_code(code)
    assert step.code is None  # nothing pending: a second entry does nothing


def test_the_code_never_reaches_the_snapshot_in_the_clear_and_dies_with_the_session():
    session, step, code = with_code()
    snapshot = json.dumps(session.to_dict())
    assert code not in snapshot and session.to_dict()["secret"]["code"] is not None
    resumed = VerificationSession.from_dict(json.loads(snapshot), Clock(), session.plan())
    assert resumed.enter_code(code).code is CodeCheck.MATCH  # a restart keeps what it needs to check it
    session.cancel()
    assert session.to_dict()["secret"] == {}


def test_the_code_expires_with_the_session():
    session, step, code = with_code()
    session._clock.now += Policy().session_timeout + timedelta(seconds=1)  # noqa: SLF001 - the test's clock
    step = session.enter_code(code)
    assert step.decision.outcome is Outcome.TIMED_OUT


def test_caller_who_cannot_see_the_code_goes_on_with_questions_alone():
    session, step, code = with_code()
    step = session.decline_code()
    assert step.prompt is not None and not step.awaiting
    decision = answer_truthfully_until_decided(session, step)
    assert decision.outcome is Outcome.VERIFIED and decision.factors == (Factor.KNOWLEDGE,)
    assert decision.questions_asked >= 3


def test_code_not_delivered_leaves_questions_alone():
    session, step, _ = started(available=CODE)
    session.issue_code()
    step = session.requested(Factor.POSSESSION, delivered=False)
    assert step.prompt is not None and not step.awaiting


def sending_code(**kw):
    """A session that asked for the code while its send is still on its way; (session, step, the code)."""
    session, step, clock = started(available=CODE, **kw)
    code = session.issue_code()
    return session, session.requested(Factor.POSSESSION, None), code


def test_a_code_on_its_way_is_awaited_and_checked_as_one_delivered():
    session, step, code = sending_code()
    assert step.awaiting == CODE and step.prompt is None
    assert session.enter_code(code).code is CodeCheck.MATCH  # a right code proves it was shown, whatever the send said


def test_a_code_learned_undelivered_is_out_and_costs_the_caller_nothing():
    session, step, code = sending_code()
    step = session.delivery(Factor.POSSESSION, False)
    assert step.prompt is not None and not step.awaiting and session.undelivered == CODE
    assert session.transcript == ()
    assert session.enter_code(code).code is None  # nothing left to check against


def test_they_cant_see_a_code_is_the_callers_only_once_it_is_known_to_have_been_shown():
    unknown, _, _ = sending_code()
    unknown.decline_code()  # still on its way, or its sender was killed: taken as not delivered
    assert unknown.transcript == () and unknown.undelivered == CODE
    shown, _, _ = sending_code()
    shown.delivery(Factor.POSSESSION, True)
    shown.decline_code()
    assert [(t.kind, t.result) for t in shown.transcript] == [("possession.code", "skipped")]
    assert shown.undelivered == frozenset()


def test_delivery_outcomes_survive_the_snapshot():
    session, step, _ = sending_code()
    session.delivery(Factor.POSSESSION, True)
    resumed = VerificationSession.from_dict(json.loads(json.dumps(session.to_dict())), Clock(), session.plan())
    resumed.decline_code()
    assert [t.result for t in resumed.transcript] == ["skipped"]


def test_a_send_that_never_says_how_it_ended_is_overdue_only_after_the_given_time_and_survives_the_snapshot():
    session, step, clock = started(available=MANAGER, policy=Policy(manager_attestation=ManagerMode.ALWAYS))
    session.requested(Factor.MANAGER, None)
    assert session.sends_overdue(timedelta(minutes=2)) == frozenset()
    clock.now += timedelta(minutes=3)
    resumed = VerificationSession.from_dict(json.loads(json.dumps(session.to_dict())), clock, session.plan())
    assert resumed.sends_overdue(timedelta(minutes=2)) == MANAGER
    resumed.delivery(Factor.MANAGER, True)  # it said, late: no longer overdue
    assert resumed.sends_overdue(timedelta(minutes=2)) == frozenset()


def test_a_send_known_to_have_ended_is_never_overdue():
    session, step, clock = started(available=MANAGER, policy=Policy(manager_attestation=ManagerMode.ALWAYS))
    session.requested(Factor.MANAGER, True)
    clock.now += timedelta(minutes=3)
    assert session.sends_overdue(timedelta(minutes=2)) == frozenset()


def test_no_code_when_the_policy_turns_it_off():
    session, step, _ = started(available=CODE, policy=Policy(possession_code=False))
    assert step.prompt is not None and not step.offer


# --- "not me" -----------------------------------------------------------------------------------------------------
def test_not_me_stops_at_once_whatever_was_held():
    session, step, code = with_code()
    session.enter_code(code)
    step = session.deny()
    assert step.decision.outcome is Outcome.NOT_VERIFIED and step.decision.alert
    assert Flag.USER_DENIED.value in step.decision.flags


# --- the manager --------------------------------------------------------------------------------------------------
def test_manager_is_offered_at_once_when_questions_alone_cannot_reach_the_bar():
    session, step, _ = started(available=MANAGER, context=thin_context())
    assert step.offer == MANAGER and step.prompt is None


def test_manager_is_not_bothered_when_questions_can_do_it():
    session, step, _ = started(available=MANAGER)
    assert not step.offer and step.prompt is not None


def test_manager_always_asked_when_the_policy_says_so():
    session, step, _ = started(available=MANAGER, policy=Policy(manager_attestation=ManagerMode.ALWAYS))
    assert step.offer == MANAGER


def test_thin_data_with_a_manager_who_confirms_verifies():
    session, step, _ = started(available=MANAGER, context=thin_context())
    step = session.requested(Factor.MANAGER)
    assert step.prompt is not None and step.awaiting == MANAGER
    earned = 0.0
    while step.prompt is not None:
        step = session.answer(truthful(session))
        earned = step.bits_earned
    assert not step.done and step.awaiting == MANAGER  # questions done: waiting for the manager
    assert earned >= Policy().manager_required_bits
    step = session.attest(Attestation.CONFIRMED)
    assert step.decision.outcome is Outcome.VERIFIED
    assert Factor.MANAGER in step.decision.factors


def test_thin_data_without_any_strong_factor_cannot_be_verified_this_way():
    _, step, _ = started(context=thin_context())
    assert step.decision.outcome is Outcome.NOT_ENOUGH_QUESTIONS


def test_manager_who_denies_stops_and_alerts():
    session, step, _ = started(available=MANAGER, context=thin_context())
    session.requested(Factor.MANAGER)
    step = session.attest(Attestation.DENIED)
    assert step.decision.outcome is Outcome.NOT_VERIFIED and step.decision.alert
    assert Flag.MANAGER_DENIED.value in step.decision.flags


def test_manager_who_does_not_know_counts_for_nothing():
    session, step, _ = started(available=MANAGER, context=thin_context())
    session.requested(Factor.MANAGER)
    step = session.attest(Attestation.UNSURE)
    assert not step.decision or not step.decision.verified
    while not step.done:
        step = session.answer(truthful(session))
    assert step.decision.outcome is Outcome.NOT_VERIFIED and not step.decision.alert


def test_manager_confirmation_mid_question_carries_on_with_that_question():
    session, step, _ = started(available=MANAGER, policy=Policy(manager_attestation=ManagerMode.ALWAYS))
    step = session.requested(Factor.MANAGER)
    asked = step.prompt.question_id
    step = session.attest(Attestation.CONFIRMED)
    assert step.prompt is not None and step.prompt.question_id == asked


def test_manager_offered_when_dont_knows_leave_questions_short():
    session, step, _ = started(available=MANAGER, policy=Policy(max_questions=4))
    while not step.offer and not step.done:
        step = session.skip()
    assert step.offer == MANAGER and not step.done


# --- the attempt limit --------------------------------------------------------------------------------------------
def test_after_the_limit_a_strong_factor_is_required_instead_of_a_refusal():
    session, step, code = with_code(attempts=3)
    assert not step.done
    session.decline_code()
    step = session.check()
    assert step.done and step.decision.outcome is Outcome.NOT_VERIFIED  # questions alone no longer do


def test_after_the_limit_the_code_and_an_answer_still_verify():
    session, step, code = with_code(attempts=3)
    step = session.enter_code(code)
    decision = answer_truthfully_until_decided(session, step)
    assert decision.outcome is Outcome.VERIFIED and Flag.AFTER_LIMIT.value in decision.flags


def test_after_the_limit_with_no_strong_factor_it_is_locked_out():
    _, step, _ = started(attempts=3)
    assert step.decision.outcome is Outcome.LOCKED_OUT and "code" in step.decision.reason


def test_after_the_limit_refused_outright_when_the_policy_says_so():
    _, step, _ = started(available=BOTH, attempts=3, policy=Policy(strong_factor_after_limit=False))
    assert step.decision.outcome is Outcome.LOCKED_OUT


# --- what the decision shows --------------------------------------------------------------------------------------
def test_not_verified_decision_never_names_knowledge_even_after_right_answers():
    session, step, _ = started()
    session.answer(truthful(session))
    step = session.cancel()
    assert step.decision.factors == ()


def test_snapshot_round_trip_keeps_factor_progress():
    session, step, _ = started(available=MANAGER, context=thin_context())
    session.requested(Factor.MANAGER)
    resumed = VerificationSession.from_dict(json.loads(json.dumps(session.to_dict())), Clock(), session.plan())
    assert resumed.check().awaiting == MANAGER
    assert resumed.attest(Attestation.DENIED).decision.alert


def test_no_code_said_before_the_code_arrived_leaves_the_policy_demanding_what_it_demands_after_a_skip():
    """"They can't see a code" while the code is on its way leaves no "skipped" entry (a send that fails is not the
    caller's doing), but an impostor who says it fast gains nothing else: the possession factor is out either way,
    and the same questions, bits and factors are asked of them."""
    early, _, _ = sending_code()
    early_step = early.decline_code()
    late, _, _ = sending_code()
    late.delivery(Factor.POSSESSION, True)
    late_step = late.decline_code()
    assert [t.result for t in late.transcript] == ["skipped"] and early.transcript == ()
    assert early_step.offer == late_step.offer and early_step.awaiting == late_step.awaiting == frozenset()
    assert early_step.prompt == late_step.prompt and early_step.bits_required == late_step.bits_required
    for session in (early, late):
        while session.check().prompt is not None:
            session.answer(truthful(session))
    assert early.decision.outcome == late.decision.outcome and early.decision.factors == late.decision.factors


def test_no_code_said_before_the_code_arrived_after_the_attempts_limit_still_leaves_questions_alone_short():
    session, _, _ = sending_code(attempts=3)
    session.decline_code()  # on its way: costs no "skipped" entry, and proves nothing either
    step = session.check()
    assert step.done and step.decision.outcome is Outcome.NOT_VERIFIED  # as after a skip: questions alone don't do
