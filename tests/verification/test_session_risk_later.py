"""Sign-in risk that arrives after the first question (issue 9 item 4): questions start at once, and the session
never decides VERIFIED without either the real risk or, past its deadline, the policy's "sign-ins unavailable"
rule."""

from __future__ import annotations

import random
from dataclasses import replace

from bench.callers import GenuineCaller
from tests.verification import builders as b
from verification import NO_RISK, Outcome, Policy, RiskLevel, VerificationSession, assess_risk
from verification.context import Source


def _pending_context():
    return b.context(sign_ins=(), unavailable={Source.SIGN_INS.value: "still being read"})


def _answer_until_waiting(session, step, now):
    caller = GenuineCaller(b.memory(), random.Random(0), forget=0.0, first_name_only=0.0, nickname=0.0, typo=0.0,
                           dont_know=0.0)
    while step.prompt is not None:
        step = session.answer(caller(step.prompt))
    return step


def _start(risk_pending: bool = True):
    now = [b.NOW]
    session = VerificationSession(lambda: now[0], seed="seed")
    context = _pending_context()
    provisional = assess_risk(context, Policy())
    step = session.start(context, b.org(), Policy(), provisional, 0, risk_pending=risk_pending)
    return session, step, now


def test_a_caller_who_earned_enough_waits_for_the_risk_instead_of_being_verified() -> None:
    session, step, now = _start()
    assert step.prompt is not None and step.bits_required == Policy().required_bits  # asked at once
    waiting = _answer_until_waiting(session, step, now)
    assert waiting.decision is None and waiting.awaiting_risk
    decided = session.update_risk(NO_RISK)
    assert decided.decision is not None and decided.decision.outcome is Outcome.VERIFIED
    assert decided.decision.risk == NO_RISK


def test_a_blocking_risk_that_arrives_late_still_blocks() -> None:
    session, step, now = _start()
    _answer_until_waiting(session, step, now)
    context = b.context(sign_ins=(replace(b.sign_ins()[0], at=b.NOW, risk_level="high"),))
    blocking = assess_risk(context, Policy())
    assert blocking.block
    decided = session.update_risk(blocking)
    assert decided.decision.outcome is Outcome.BLOCKED_BY_RISK and "high risk" in decided.decision.reason


def test_past_the_deadline_the_sign_ins_unavailable_rule_decides() -> None:
    session, step, now = _start()
    waiting = _answer_until_waiting(session, step, now)
    step = session.update_risk(None)  # the logs never came: the provisional risk stands
    extra = Policy().sign_ins_unavailable_extra_bits
    assert step.bits_required == Policy().required_bits + extra
    if extra and waiting.bits_earned < step.bits_required:
        assert step.decision is None and step.prompt is not None  # more proof asked for, not a pass
    else:
        assert step.decision is not None and step.decision.risk.level in (RiskLevel.LOW, RiskLevel.NONE)


def test_a_pending_risk_survives_a_restart() -> None:
    session, step, now = _start()
    waiting = _answer_until_waiting(session, step, now)
    restored = VerificationSession.from_dict(session.to_dict(), lambda: now[0], session.plan())
    assert restored.risk_pending and restored.check().awaiting_risk == waiting.awaiting_risk
    assert restored.update_risk(NO_RISK).decision.outcome is Outcome.VERIFIED


def test_without_a_pending_risk_nothing_changes() -> None:
    session, step, _ = _start(risk_pending=False)
    assert not session.risk_pending and not step.awaiting_risk
    assert session.update_risk(NO_RISK) == session.check()
