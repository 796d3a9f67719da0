"""Watchword's domain: questions only the real employee can answer, measured in bits against an
informed impostor, combined with sign-in risk into a decision. Pure: no I/O, no SDK types.

graph/ builds `UserContext` and `OrgKnowledge`; dialogs/ drives a `VerificationSession`.
"""

from verification.context import (
    Attendee,
    Chat,
    ChatType,
    Contact,
    Group,
    GroupKind,
    MailMessage,
    Meeting,
    OrgKnowledge,
    Party,
    Person,
    ResponseStatus,
    Role,
    RoleUsage,
    Sensitivity,
    SignIn,
    Source,
    UserContext,
)
from verification.matching import Match, MatchResult, is_skip, match_answer
from verification.policy import Policy
from verification.questions import AnswerType, Candidate, Form, Question, generate_questions
from verification.risk import NO_RISK, RiskAssessment, RiskLevel, RiskSignal, assess_risk, risk_inputs
from verification.session import Decision, Flag, Outcome, Prompt, Step, TranscriptEntry, VerificationSession

__all__ = [
    "NO_RISK", "AnswerType", "Attendee", "Candidate", "Chat", "ChatType", "Contact", "Decision", "Flag", "Form",
    "Group", "GroupKind", "MailMessage", "Match", "MatchResult", "Meeting", "OrgKnowledge", "Outcome", "Party",
    "Person", "Policy", "Prompt", "Question", "ResponseStatus", "RiskAssessment", "RiskLevel", "RiskSignal", "Role",
    "RoleUsage", "Sensitivity", "SignIn", "Source", "Step", "TranscriptEntry", "UserContext", "VerificationSession",
    "assess_risk", "risk_inputs", "generate_questions", "is_skip", "match_answer",
]
