"""What the cards say: the risk in plain words, what the policy asks, each outcome and the next step.

Pure functions from the domain's values to the values a card template takes; no SDK, no I/O.
"""

from __future__ import annotations

import math
from typing import Any

from verification import Decision, Flag, Outcome, Person, Policy, RiskAssessment, RiskLevel, Step
from verification.factors import Factor
from verification.session import FACTOR_QUESTION_ID

RISK_COLOR = {RiskLevel.NONE: "Good", RiskLevel.LOW: "Default", RiskLevel.MEDIUM: "Warning",
              RiskLevel.HIGH: "Attention"}
RISK_WORDS = {RiskLevel.NONE: "nothing unusual", RiskLevel.LOW: "low", RiskLevel.MEDIUM: "medium",
              RiskLevel.HIGH: "high"}

OUTCOME_TITLE = {
    Outcome.VERIFIED: ("Verified", "Good"),
    Outcome.NOT_VERIFIED: ("Not verified", "Attention"),
    Outcome.NOT_ENOUGH_QUESTIONS: ("Can't verify this way", "Warning"),
    Outcome.TIMED_OUT: ("Timed out", "Warning"),
    Outcome.LOCKED_OUT: ("Locked out", "Attention"),
    Outcome.BLOCKED_BY_RISK: ("Blocked: risky sign-ins", "Attention"),
    Outcome.PRIVILEGED: ("Refused: privileged administrator", "Attention"),
    Outcome.CANCELLED: ("Cancelled", "Default"),
}

NEXT_STEPS = {
    Outcome.VERIFIED: ["The caller gave enough proof that they are the account holder.",
                       "You may reset their password: choose Reset password. The temporary password is shown "
                       "to you once, here."],
    Outcome.NOT_VERIFIED: ["Do not reset the password or change anything on the account.",
                           "Tell the caller you can't verify them by phone, and offer a video call with photo ID "
                           "or a visit to the service desk. If anything felt wrong, report the call to security."],
    Outcome.NOT_ENOUGH_QUESTIONS: ["Their Microsoft 365 activity is too thin to ask enough questions.",
                                   "Verify them another way: call them back on the number in the directory, "
                                   "or a video call with photo ID."],
    Outcome.TIMED_OUT: ["Nothing was changed. If the caller is still there, start again with verify and "
                        "their name."],
    Outcome.LOCKED_OUT: ["Do not try again today and do not reset the password.",
                         "Escalate to the security team: repeated attempts can mean someone is targeting "
                         "this account."],
    Outcome.BLOCKED_BY_RISK: ["Do not reset the password over the phone.",
                              "Escalate to the security team now: the account's sign-ins look like an attack "
                              "in progress."],
    Outcome.PRIVILEGED: ["Privileged administrator accounts are never reset through the helpdesk.",
                         "Escalate to the identity team."],
    Outcome.CANCELLED: ["Nothing was changed."],
}

DENIED_STEPS = ["The account holder said in Teams that this is NOT them on the call.",
                "Treat the call as an attack: do not reset anything, end the call, and report it to security "
                "now."]

MANAGER_DENIED_STEPS = ["Their manager said in Teams that they are NOT on the phone with the helpdesk.",
                        "Treat the call as an attack: do not reset anything, end the call, and report it to "
                        "security now. Security has been told."]
CODE_MISMATCH_STEPS = ["The code the caller read out is not the one shown in the account holder's Teams.",
                       "Treat the call as an attack: do not reset anything, end the call, and report it to security "
                       "now. Security has been told."]
FACTOR_HELD = {
    Factor.POSSESSION: "✓ Read out the code shown in their own Teams",
    Factor.MANAGER: "✓ Their manager confirmed in Teams that they are on the call",
    Factor.KNOWLEDGE: "✓ Answered questions only they should know",
}

GROUP_CHAT_STEP = ("To reset the password, open a 1:1 chat with Watchword and verify them there: passwords "
                   "are never shown in group chats or channels.")


def questions_put(decision: Decision) -> int:
    """Questions the caller was asked and answered (or said they don't know), as the summary counts them: not the
    one on screen when the verification ended (a cancel before any answer is "0 questions asked"), and not the
    code or the manager's answer, which are factors, not questions."""
    return sum(1 for t in decision.transcript if t.question_id != FACTOR_QUESTION_ID)


def person_view(person: Person) -> dict[str, str]:
    details = " · ".join(x for x in (person.job_title, person.department, person.upn or person.mail) if x)
    name = person.display_name or person.upn or person.id
    return {"id": person.id, "name": name, "details": details}


def risk_view(risk: RiskAssessment) -> dict[str, Any]:
    lines = [s.description for s in risk.signals] or ["No unusual sign-ins in the last 24 hours."]
    if risk.extra_bits_required:
        lines.append("Because of this, the caller needs to answer more questions than usual.")
    if risk.block:
        lines.append("Too risky to reset over the phone.")
    return {"level": RISK_WORDS[risk.level], "color": RISK_COLOR[risk.level], "lines": lines}


def risk_summary(risk: RiskAssessment) -> str:
    """One line on the sign-in risk a decision weighed: its level, or why it could not be read."""
    unread = next((s for s in risk.signals if s.code == "sign_ins_unavailable"), None)
    if unread is not None:
        return unread.description
    return f"Sign-in risk weighed: {RISK_WORDS[risk.level]}."


def requirement_lines(policy: Policy, first: Step, available: frozenset[Factor]) -> list[str]:
    """What the agent needs to know before the first question: the ways of passing this verification can use, how
    long it may take and how to ask. Never bits, never a count of right or wrong answers (an agent who knows the
    score can coach, or be coached)."""
    # A typical free-recall answer is worth 5-8 bits: the usual number of questions, right or wrong.
    usual = max(1, math.ceil(first.bits_required / 7))
    minutes = policy.session_timeout.total_seconds() / 60
    lines = []
    if Factor.POSSESSION in available and policy.possession_code:
        lines.append("I'm showing them a 6-digit code in their own Teams: ask them to read it out. With the right "
                     "code, one or two questions are usually enough. A wrong code stops the verification.")
    lines += [
        f"{'Without the code, usually' if lines else 'Usually'} {usual} to {min(policy.max_questions, usual + 2)} "
        f"questions, at most {policy.max_questions}, within {minutes:.0f} minutes.",
        "Read each question as written and type what the caller says. You won't see whether an answer was "
        "right, and every answer is followed the same way, so there is nothing to hint at.",
    ]
    if Factor.MANAGER in available:
        lines.append("If the questions can't get there, I'll ask their manager in Teams to confirm it's them.")
    return lines


def progress(number: int, most: int) -> str:
    """'▰▰▱▱▱▱' for question 2 of at most 6: how far along, never how well."""
    number = max(1, min(number, most))
    return "▰" * number + "▱" * (most - number)


def recovered_view(person_name: str) -> dict[str, Any]:
    """The decision card for a verification the store has as verified, though this conversation lost the turn
    that decided it (the process stopped before saving it): the reset is still offered."""
    title, color = OUTCOME_TITLE[Outcome.VERIFIED]
    return {"title": title, "color": color, "person_name": person_name,
            "reason": "This verification was already decided: the caller was verified.", "factors": [],
            "next_steps": list(NEXT_STEPS[Outcome.VERIFIED]), "summary": "Recovered after an interruption.",
            "can_reset": True}


def decision_view(decision: Decision, person_name: str, *, can_reset: bool, personal_chat: bool,
                  denied: bool = False, risk: RiskAssessment | None = None) -> dict[str, Any]:
    """`denied`: the person said "not me" in Teams (in the decision's flags, or after it was made). The card says
    which factors held, never which answers were right nor how many bits were earned; and the sign-in risk the
    decision weighed (`risk`), or that the sign-in logs could not be read."""
    title, color = OUTCOME_TITLE[decision.outcome]
    steps = list(NEXT_STEPS[decision.outcome])
    reason = decision.reason
    if decision.outcome is Outcome.NOT_VERIFIED and not decision.alert:
        reason = "The caller did not give enough proof that they are the account holder."
    if denied or Flag.USER_DENIED.value in decision.flags:
        title, color, steps = "Stop: the account holder says it is not them", "Attention", list(DENIED_STEPS)
    elif Flag.MANAGER_DENIED.value in decision.flags:
        title, color, steps = "Stop: their manager says it is not them", "Attention", list(MANAGER_DENIED_STEPS)
    elif Flag.CODE_MISMATCH.value in decision.flags:
        title, color, steps = "Stop: wrong code", "Attention", list(CODE_MISMATCH_STEPS)
    elif decision.outcome is Outcome.VERIFIED and not personal_chat:
        steps = [steps[0], GROUP_CHAT_STEP]
    elif decision.outcome is Outcome.VERIFIED and not can_reset:
        steps = [steps[0], "Watchword cannot reset this account's password."]
    questions = questions_put(decision)
    summary = f"{questions} question{'s' if questions != 1 else ''} asked."
    return {"title": title, "color": color, "person_name": person_name, "reason": reason,
            "factors": [FACTOR_HELD[x] for x in decision.factors], "next_steps": steps, "summary": summary,
            "can_reset": can_reset, "risk_line": risk_summary(risk) if risk is not None else None}
