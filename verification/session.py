"""The verification session: a pure, synchronous state machine with an injected clock.

    session = VerificationSession(clock=lambda: datetime.now(UTC))
    step = session.start(context, org, policy, risk, attempts_in_last_24h=0)
    while not step.done:
        step = session.answer(read_caller_answer(step.prompt))   # or session.skip()
    step.decision.outcome   # Outcome.VERIFIED -> graph/ resets the password

Decisions before any question, in this order: privileged (never reset through the helpdesk), locked out
(too many attempts in 24 h), blocked by risk, not enough questions (the data cannot reach the bits).
Then questions, highest expected bits first with variety of sources (never contacts first: few people remember
whom they saved), until a way of passing holds (verification/factors.py).

Nothing the agent sees depends on whether an answer was right, only on what the agent did (answered, skipped)
and on the strong factors they saw happen: each question is asked once, and which question comes next, when a
factor is offered and when the questions run out are worked out from the bits the answers so far WOULD have earned
had all been right (`offered`), never from the bits earned. A session with `max_wrong` wrong answers can no longer
pass, but it carries on to the same end as any other (stopping would tell the agent an answer was wrong). After a
"don't know" the plan moves to another source; it ends only when no question left could reach the requirement.

Resume: a session persists in two parts. `plan()` is every question chosen at the start, accepted answers
included: fixed for the session's life, so it is stored once (encrypted) and kept in memory. `to_dict()` is
the rest, a few hundred bytes of JSON that change each turn (score, transcript, which planned questions are
left, which is being asked). `from_dict(data, clock, plan)` restores the session exactly. The plan is
stored rather than re-derived from a seed and a re-read context: by the time a crashed process restarts,
new mail and chats have arrived and meetings have moved, so re-derived questions would differ from the
ones already asked; and re-reading sign-in logs (5 requests / 10 s per tenant) to resume is exactly what
throttling punishes. The plan and the "secret" part of `to_dict()` (keys already credited, a half-given
name) must be encrypted at rest; both die the moment the session decides, and never appear in the
transcript, the decision, the audit or repr().
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from verification import factors as f
from verification.clock import Clock
from verification.context import OrgKnowledge, Source, UserContext
from verification.factors import STRONG, Attestation, CodeCheck, Factor, Rule, SealedCode
from verification.guessability import bits_for
from verification.matching import MatchResult, is_bare_name, match_answer, with_full_name
from verification.policy import Policy
from verification.questions import AnswerType, Form, Question, generate_questions
from verification.risk import RiskAssessment

FORMAT_VERSION = 2  # 2: the plan apart from the progress (1 carried the plan in every snapshot)
FULL_NAME_PROMPT = "Could you give me their full name, first name and surname?"
NOT_NAMED_ALREADY = "Someone you haven't named already."
SHORTFALL = "The caller's answers were not enough to verify them."
PEOPLE_SOURCES = frozenset({Source.MEETINGS.value, Source.CHATS.value, Source.MAIL.value, Source.CONTACTS.value,
                            Source.HIERARCHY.value})


class Outcome(StrEnum):
    IN_PROGRESS = "in_progress"
    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"
    NOT_ENOUGH_QUESTIONS = "not_enough_questions"
    TIMED_OUT = "timed_out"
    LOCKED_OUT = "locked_out"
    BLOCKED_BY_RISK = "blocked_by_risk"
    PRIVILEGED = "privileged"
    CANCELLED = "cancelled"


class Flag(StrEnum):
    USER_DENIED = "user_denied_out_of_band"  # the real user said "No, it's not me": alert security
    MANAGER_DENIED = "manager_denied"  # their manager said they are not on the phone: alert security
    CODE_MISMATCH = "code_mismatch"  # the caller read out a wrong code: alert security
    AFTER_LIMIT = "after_attempt_limit"  # the day's attempts are used up: only the code or the manager verify
    FEDERATED = "federated_account"  # verified, but the password lives on-premises: no cloud reset


ALERT_FLAGS = frozenset({Flag.USER_DENIED.value, Flag.MANAGER_DENIED.value, Flag.CODE_MISMATCH.value})
FACTOR_QUESTION_ID = "out_of_band"  # transcript entries of the code and the manager, apart from questions
FACTOR_RESULTS = {"confirmed": MatchResult.CORRECT, "denied": MatchResult.WRONG}  # a factor's results, as answers'


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One asked question (or out-of-band event). Never the accepted answers, never the caller's text."""

    question_id: str
    kind: str
    source: str
    form: str
    bits_offered: float
    bits_earned: float
    result: str  # MatchResult value, or "confirmed"/"denied" for out-of-band
    tries: int
    asked_at: datetime
    answered_at: datetime
    reason: str = ""

    @property
    def match_result(self) -> MatchResult:
        """`result` as a MatchResult, as the store keeps it: a factor confirmed counts as correct, denied as wrong."""
        return FACTOR_RESULTS.get(self.result) or MatchResult(self.result)

    def to_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "kind": self.kind, "source": self.source, "form": self.form,
                "bits_offered": self.bits_offered, "bits_earned": self.bits_earned, "result": self.result,
                "tries": self.tries, "asked_at": self.asked_at.isoformat(),
                "answered_at": self.answered_at.isoformat(), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TranscriptEntry:
        return cls(d["question_id"], d["kind"], d["source"], d["form"], float(d["bits_offered"]),
                   float(d["bits_earned"]), d["result"], int(d["tries"]), datetime.fromisoformat(d["asked_at"]),
                   datetime.fromisoformat(d["answered_at"]), d.get("reason", ""))


@dataclass(frozen=True, slots=True)
class Decision:
    """The session's end. Safe to show the agent and to write to the audit log as `to_dict()`."""

    outcome: Outcome
    reason: str
    bits_earned: float
    bits_required: float
    questions_asked: int
    wrong_answers: int
    risk: RiskAssessment
    transcript: tuple[TranscriptEntry, ...]
    flags: tuple[str, ...]
    decided_at: datetime
    factors: tuple[Factor, ...] = ()  # the factors that held (verified) or had held when it ended

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    @property
    def alert(self) -> bool:
        """Someone said it is not the person (they, their manager, or a wrong code): security must hear of it."""
        return bool(ALERT_FLAGS & set(self.flags))

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reason": self.reason, "bits_earned": self.bits_earned,
                "bits_required": self.bits_required, "questions_asked": self.questions_asked,
                "wrong_answers": self.wrong_answers, "risk": self.risk.to_dict(),
                "transcript": [t.to_dict() for t in self.transcript], "flags": list(self.flags),
                "decided_at": self.decided_at.isoformat(), "factors": [x.value for x in self.factors]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        return cls(Outcome(d["outcome"]), d["reason"], float(d["bits_earned"]), float(d["bits_required"]),
                   int(d["questions_asked"]), int(d["wrong_answers"]), RiskAssessment.from_dict(d["risk"]),
                   tuple(TranscriptEntry.from_dict(t) for t in d["transcript"]), tuple(d["flags"]),
                   datetime.fromisoformat(d["decided_at"]), tuple(Factor(x) for x in d.get("factors", ())))


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the agent reads out. Multiple-choice `options` are shown; which one is right is not."""

    question_id: str
    kind: str
    source: Source
    form: Form
    text: str
    options: tuple[str, ...]
    bits: float  # for the engine's callers and the audit; never rendered


@dataclass(frozen=True, slots=True)
class Step:
    """Either the next prompt or the decision (or, with neither, a factor to ask or wait for).
    `clarify`: the caller gave a bare first name or surname; the prompt asks for the full name (asked for every
    bare name, right or wrong, so it reveals nothing). `bits_earned` is for the audit and the engine's callers,
    never for a card."""

    prompt: Prompt | None
    decision: Decision | None
    bits_earned: float
    bits_required: float
    clarify: bool = False
    # Strong factors (verification/factors.py). `offer`: ask these now (the dialog sends the code or the manager's
    # card, then calls `requested`). `awaiting`: asked and not answered yet; with no prompt, the session waits for
    # them (the code to be typed, the manager to answer). `code`: how the last typed code compared.
    offer: frozenset[Factor] = frozenset()
    awaiting: frozenset[Factor] = frozenset()
    code: CodeCheck | None = None
    # The sign-in risk is not known yet (`start(risk_pending=True)`). With no prompt and no decision, the caller
    # has earned enough for the base rules and the session waits for `update_risk` before deciding.
    awaiting_risk: bool = False

    @property
    def done(self) -> bool:
        return self.decision is not None


@dataclass
class _State:
    """Everything that survives a restart. `pool` and `current` are the secret part."""

    policy: Policy
    target_id: str
    started_at: datetime
    required_bits: float
    risk: RiskAssessment
    plan: tuple[Question, ...] = ()  # every question chosen at the start: the secret, immutable part
    pool: list[Question] = field(default_factory=list)  # the planned questions still to ask: secret
    current: Question | None = None
    current_asked_at: datetime | None = None
    earned: float = 0.0
    offered: float = 0.0  # what the answers so far would have earned had all been right: decides what comes next
    wrong: int = 0
    asked: int = 0
    used_sources: list[str] = field(default_factory=list)
    choice_started: bool = False
    credited: list[str] = field(default_factory=list)  # accepted keys already credited: secret
    pending_name: str | None = None  # a bare first name awaiting "their full name?": secret
    flags: list[str] = field(default_factory=list)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    decision: Decision | None = None
    # Strong factors, as Factor values: can be asked / asked and unanswered / held / no longer obtainable.
    available: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Of those asked, the ones known to have reached the person (their send said so) and those known not to have.
    delivered: list[str] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)
    sending_since: dict[str, datetime] = field(default_factory=dict)  # asked with its delivery unknown: since when
    near_misses: int = 0
    code: SealedCode | None = None  # the possession code's salted HMAC: secret
    risk_pending: bool = False  # `risk` is provisional (sign-ins still being read): see update_risk


class VerificationSession:
    """One helpdesk verification of one target. Not thread-safe; one per conversation."""

    def __init__(self, clock: Clock, session_id: str | None = None, seed: str | None = None) -> None:
        self._clock = clock
        self.id = session_id or str(uuid.uuid4())
        # The seed only orders multiple-choice options and picks decoys; a secret so callers cannot predict it.
        self._seed = seed or secrets.token_hex(16)
        self._s: _State | None = None

    def __repr__(self) -> str:  # never the plan
        outcome = self.outcome.value if self._s else "not started"
        return f"VerificationSession(id={self.id!r}, outcome={outcome})"

    # --- public API --------------------------------------------------------------------------------

    def start(self, context: UserContext, org: OrgKnowledge, policy: Policy, risk: RiskAssessment,
              attempts_in_last_24h: int, available: frozenset[Factor] = frozenset(), *,
              risk_pending: bool = False) -> Step:
        """`available`: the strong factors that can be asked (POSSESSION when the person has a chat with Watchword
        and is not the requester; MANAGER when they have a manager Watchword can reach). The policy decides which
        of them are used. `risk_pending`: the sign-ins are still being read and `risk` is what the policy's
        "sign-ins unavailable" rule gives; questions start now, and the session never decides VERIFIED before
        `update_risk` (with the real risk, or with None when its deadline passed: then `risk` stands)."""
        if self._s is not None:
            raise RuntimeError("session already started")
        required = policy.required_bits + (0.0 if risk_pending else risk.extra_bits_required)
        self._s = s = _State(policy, context.profile.id, self._clock(), required, risk)
        s.risk_pending = risk_pending
        usable = {Factor.POSSESSION} if policy.possession_code else set()
        usable |= {Factor.MANAGER} if policy.manager_attestation is not f.ManagerMode.OFF else set()
        s.available = sorted(x.value for x in available & STRONG & usable)
        if context.is_federated:
            s.flags.append(Flag.FEDERATED.value)
        if attempts_in_last_24h >= policy.max_attempts_per_day and policy.strong_factor_after_limit:
            s.flags.append(Flag.AFTER_LIMIT.value)
        early = self._refusal(context, policy, risk, attempts_in_last_24h)
        if early is not None:
            return self._decide(*early)
        s.plan = generate_questions(context, org, policy, self._seed, asked_only=True)
        if len({q.id for q in s.plan}) != len(s.plan):
            raise RuntimeError("question ids must be unique within a plan")
        s.pool = list(s.plan)
        best = _capacity(s.pool, policy.max_questions, self._allowance, policy.max_choice_questions)
        if not f.reachable(self._rules(), 0.0, best, self._obtainable(with_available=True)):
            if Flag.AFTER_LIMIT.value in s.flags:
                return self._decide(Outcome.LOCKED_OUT, self._locked_reason(attempts_in_last_24h))
            return self._decide(Outcome.NOT_ENOUGH_QUESTIONS,
                                f"The account's Microsoft 365 data supports at most {best:.1f} of the "
                                f"{required:.0f} bits needed; verify this caller another way.")
        if Factor.POSSESSION.value in s.available:  # the code first: with it, one good answer is usually enough
            return self._step()
        return self._after_progress()

    # --- strong factors (the code, the manager) ---------------------------------------------------------------

    def requested(self, factor: Factor, delivered: bool | None = True) -> Step:
        """The dialog asked for `factor` (showed the code, sent the manager's card): `delivered` True when the send
        is known to have reached them, False when it is known not to have (as if never asked: nothing the caller
        did), None while it is still on its way (`delivery` tells the outcome once known)."""
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if factor.value not in s.available or factor.value in s.requested + s.held + s.failed:
            return self._step()
        s.requested.append(factor.value)
        if delivered is False:
            return self.delivery(factor, False)
        if delivered:
            s.delivered.append(factor.value)
        else:
            s.sending_since[factor.value] = self._clock()
        return self._after_progress()

    def delivery(self, factor: Factor, delivered: bool) -> Step:
        """How the send of a factor asked with `requested(factor, None)` ended, learned later. Not delivered: the
        factor is out, as if it had never been asked (no transcript entry: the caller did nothing, saw nothing).
        Delivered: noted, so that "they can't see a code" is then the caller's (`decline_code`). An outcome that never
        comes (the process sending it was killed) leaves the factor asked, its delivery unknown: see `decline_code`."""
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if factor.value not in s.requested or factor.value in s.delivered + s.undelivered:
            return self._step()
        s.sending_since.pop(factor.value, None)
        if delivered:
            s.delivered.append(factor.value)
            return self._step()
        s.requested.remove(factor.value)
        s.undelivered.append(factor.value)
        s.failed.append(factor.value)
        s.code = None if factor is Factor.POSSESSION else s.code
        return self._after_progress()

    def sends_overdue(self, longer_than: timedelta) -> frozenset[Factor]:
        """The factors asked whose send has not said how it ended for `longer_than`: far longer than any send takes,
        so its process died before it could say (see `delivery`)."""
        s = self._live()
        now = self._clock()
        return frozenset(Factor(x) for x, since in s.sending_since.items()
                         if x in s.requested and x not in s.delivered + s.undelivered and now - since > longer_than)

    def issue_code(self) -> str:
        """A fresh one-time code for the person's own Teams, returned once: the session keeps only its salted HMAC.
        Then call `requested(Factor.POSSESSION, delivered)`."""
        s = self._live()
        if s.decision is not None or Factor.POSSESSION.value not in s.available or s.code is not None \
                or Factor.POSSESSION.value in s.requested + s.held + s.failed:
            raise RuntimeError("no code can be issued for this session now")
        code, s.code = f.new_code()
        return code

    def enter_code(self, text: str) -> Step:
        """The code the caller read out, as the agent typed it."""
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if Factor.POSSESSION.value not in s.requested or s.code is None:
            return self._step()
        check = f.check_code(text, s.code)
        if check is CodeCheck.MALFORMED:
            return replace(self._step(), code=check)
        if check is CodeCheck.NEAR_MISS and s.near_misses == 0:
            s.near_misses += 1
            return replace(self._step(), code=check)
        matched = check is CodeCheck.MATCH
        self._factor_entry("possession.code", "correct" if matched else "wrong")
        s.requested.remove(Factor.POSSESSION.value)
        s.code = None  # single use
        if not matched:
            s.failed.append(Factor.POSSESSION.value)
            s.flags.append(Flag.CODE_MISMATCH.value)
            return replace(self._decide(Outcome.NOT_VERIFIED, "The code the caller read out does not match the one "
                                        "shown in the person's own Teams. Treat the call as an attack."),
                           code=CodeCheck.WRONG)
        s.held.append(Factor.POSSESSION.value)
        return replace(self._after_progress(), code=check)

    def decline_code(self) -> Step:
        """The caller cannot see the code (not at their computer, Teams signed out): carry on without it.

        Theirs (a "skipped" entry in the transcript) only when the code is known to have reached their Teams. While
        its delivery is unknown (still on its way, or the process sending it was killed before it could say), it is
        taken as not delivered, which costs them nothing: nothing shows that there was a code to see, and a send
        that fails is not the caller's doing. (A right code typed meanwhile still counts: it proves the card was
        shown, whatever became of the send's outcome.)"""
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if Factor.POSSESSION.value not in s.requested:
            return self._step()
        if Factor.POSSESSION.value not in s.delivered:
            return self.delivery(Factor.POSSESSION, False)
        self._factor_entry("possession.code", "skipped")
        s.requested.remove(Factor.POSSESSION.value)
        s.failed.append(Factor.POSSESSION.value)
        s.code = None
        return self._after_progress()

    def attest(self, answer: Attestation) -> Step:
        """Their manager's answer in Teams."""
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if Factor.MANAGER.value not in s.requested:
            return self._step()
        s.requested.remove(Factor.MANAGER.value)
        self._factor_entry("manager.attestation", {Attestation.CONFIRMED: "confirmed", Attestation.DENIED: "denied",
                                                   Attestation.UNSURE: "skipped"}[answer])
        if answer is Attestation.DENIED:
            s.failed.append(Factor.MANAGER.value)
            s.flags.append(Flag.MANAGER_DENIED.value)
            return self._decide(Outcome.NOT_VERIFIED, "Their manager said in Teams that they are NOT on the phone "
                                "with the helpdesk. Treat the call as an attack.")
        (s.held if answer is Attestation.CONFIRMED else s.failed).append(Factor.MANAGER.value)
        return self._after_progress()

    def deny(self) -> Step:
        """The person said "not me" in their own Teams: stop everything."""
        s = self._live()
        if s.decision is not None:
            return self._step()
        self._factor_entry("out_of_band.teams", "denied")
        s.flags.append(Flag.USER_DENIED.value)
        return self._decide(Outcome.NOT_VERIFIED, "The account holder said in Teams that this is NOT them. "
                            "Treat the call as an attack and tell the security team.")

    def answer(self, text: str) -> Step:
        s = self._live()
        if s.decision is not None or self._expired() or s.current is None:  # decided, or waiting for a factor
            return self._timeout_or_current()
        q = s.current
        if s.pending_name is not None:
            text, s.pending_name = with_full_name(s.pending_name, text), None
        elif q.answer_type is AnswerType.PERSON and q.form is Form.FREE_RECALL and is_bare_name(text):
            # Ask for the full name whatever the bare name matched, so asking reveals nothing.
            s.pending_name = text
            return self._step(clarify=True)
        match = match_answer(q, text)
        result, reason = match.result, match.reason
        fresh = [k for k in match.keys if k not in s.credited]
        if result in (MatchResult.CORRECT, MatchResult.PARTIAL) and not fresh:
            # One person (or group) proves one thing: naming again someone credited earlier earns nothing.
            result, reason = MatchResult.UNSCORED, "names only answers already credited in this session"
        credit = {MatchResult.CORRECT: 1.0, MatchResult.PARTIAL: s.policy.partial_credit}.get(result, 0.0)
        if credit:
            s.credited.extend(fresh)
        earned = round(q.bits * credit, 2)
        if result is MatchResult.PARTIAL and match.hit_chance:
            # A bare first name for an outsider proves what guessing first names is worth (the tries the question's
            # bits were measured with: a follow-up's impostor had spent the first question's too): a rare name more
            # than half credit, a common one never more.
            tries = q.guesses * (2 if q.follows else 1)
            earned = max(earned, bits_for(tries * match.hit_chance, q.bits))
        return self._record(q, result, earned, reason)

    def skip(self) -> Step:
        s = self._live()
        if s.decision is not None or self._expired():
            return self._timeout_or_current()
        if s.current is None:  # waiting for a factor: no question to skip
            return self._step()
        if s.pending_name is not None:  # gave a first name, cannot give the surname: judge what was said
            return self.answer("")
        return self._record(s.current, MatchResult.SKIPPED, 0.0, "skipped by the agent")

    def cancel(self, reason: str = "Cancelled by the agent.") -> Step:
        s = self._live()
        if s.decision is not None:
            return self._step()
        return self._decide(Outcome.CANCELLED, reason)

    def check(self) -> Step:
        """The current step; decides TIMED_OUT if the session has expired."""
        return self._timeout_or_current()

    @property
    def risk_pending(self) -> bool:
        return self._live().risk_pending

    @property
    def started_at(self) -> datetime:
        return self._live().started_at

    @property
    def policy(self) -> Policy:
        """The policy the session started under (as sealed in its progress)."""
        return self._live().policy

    def _awaiting_risk(self) -> bool:
        """Enough for the base rules, nothing being asked: only the pending sign-in risk stands in the way."""
        s = self._live()
        return (s.decision is None and s.risk_pending and s.current is None and s.wrong < s.policy.max_wrong
                and f.met(self._rules(), s.earned, self._held()) is not None)

    def update_risk(self, risk: RiskAssessment | None) -> Step:
        """The sign-in risk arrived (`risk`), or its deadline passed (None: the provisional risk given to `start`,
        the policy's "sign-ins unavailable" rule, stands). The requirement becomes final: a blocking risk decides
        BLOCKED_BY_RISK, more bits mean more questions, enough bits decide."""
        s = self._live()
        if not s.risk_pending or s.decision is not None:
            return self._step()
        s.risk_pending = False
        s.risk = risk or s.risk
        s.required_bits = s.policy.required_bits + s.risk.extra_bits_required
        if s.risk.block:
            return self._decide(Outcome.BLOCKED_BY_RISK, "Sign-in risk is too high to reset this password over the "
                                "phone: " + " ".join(sig.description for sig in s.risk.signals))
        return self._after_progress()

    @property
    def outcome(self) -> Outcome:
        s = self._live()
        return s.decision.outcome if s.decision else Outcome.IN_PROGRESS

    @property
    def decision(self) -> Decision | None:
        return self._live().decision

    @property
    def transcript(self) -> tuple[TranscriptEntry, ...]:
        return tuple(self._live().transcript)

    @property
    def undelivered(self) -> frozenset[Factor]:
        """The strong factors asked whose send is known not to have reached the person (or manager)."""
        return frozenset(Factor(x) for x in self._live().undelivered)

    @property
    def factors_asked(self) -> bool:
        """Whether the code was shown or the manager asked (their answers are worth looking for)."""
        s = self._live()
        return bool(s.requested or s.held or s.failed)

    @property
    def can_still_pass(self) -> bool:
        """False once the outcome can no longer be VERIFIED (decided otherwise, or `max_wrong` wrong answers) although
        the session carries on for the agent. For benchmarks that play many impostors and need not hear the rest;
        never rendered (the agent must not learn that an answer was wrong)."""
        s = self._live()
        if s.decision is not None:
            return s.decision.verified
        return s.wrong < s.policy.max_wrong

    @property
    def asking(self) -> Question | None:
        """The question being asked, accepted answers included: for the engine's tests and benchmarks (the
        simulated genuine caller). Never rendered, never persisted apart from the plan."""
        return self._live().current

    # --- choosing questions ------------------------------------------------------------------------

    def _refusal(self, context: UserContext, policy: Policy, risk: RiskAssessment,
                 attempts: int) -> tuple[Outcome, str] | None:
        active = list(dict.fromkeys(r.display_name for r in context.roles if r.is_privileged and not r.eligible))
        eligible = list(dict.fromkeys(r.display_name for r in context.roles if r.is_privileged and r.eligible))
        if active or any(g.is_role_assignable for g in context.groups):
            what = ", ".join(active) or "a role-assignable group"
            return Outcome.PRIVILEGED, (f"This account is a privileged administrator ({what}). Its password is "
                                        "never reset through the helpdesk: escalate to the identity team.")
        if eligible:
            return Outcome.PRIVILEGED, (f"This account is eligible for a privileged administrator role through PIM "
                                        f"({', '.join(eligible)}) and can activate it at any time. Its password is "
                                        "never reset through the helpdesk: escalate to the identity team.")
        if not context.is_available(Source.ROLES) and policy.refuse_when_roles_unknown:
            return Outcome.PRIVILEGED, ("Admin roles could not be read "
                                        f"({context.unavailable[Source.ROLES.value]}), so this account cannot be "
                                        "ruled out as an administrator: escalate to the identity team.")
        strong_possible = policy.strong_factor_after_limit and bool(self._live().available)
        if attempts >= policy.max_attempts_per_day and not strong_possible:
            return Outcome.LOCKED_OUT, self._locked_reason(attempts)
        if risk.block:
            return Outcome.BLOCKED_BY_RISK, ("Sign-in risk is too high to reset this password over the phone: "
                                             + " ".join(sig.description for sig in risk.signals))
        return None

    def _locked_reason(self, attempts: int) -> str:
        s = self._live()
        reason = (f"{attempts} verification attempts for this person in the last 24 hours (limit "
                  f"{s.policy.max_attempts_per_day}).")
        if s.policy.strong_factor_after_limit:
            return reason + (" Only the code in their own Teams or their manager's confirmation could verify them "
                             "now, and neither can be asked. Escalate.")
        return reason + " Try again tomorrow or escalate."

    def _eligible(self, possible: bool = False) -> list[Question]:
        """Free recall first; once a multiple-choice question has shown real names as options, no free
        recall follows (the options would hand the impostor answers). A follow-up waits for its first
        question to be answered right; `possible` also counts follow-ups whose first is still unasked
        (for "can the rest still reach the bits?")."""
        s = self._live()
        answered = {t.kind for t in s.transcript if t.result != MatchResult.SKIPPED.value}
        waiting = {q.kind for q in s.pool} if possible else set()
        pool = [q for q in s.pool if q.follows is None or q.follows in answered or q.follows in waiting]
        free = [q for q in pool if q.form is Form.FREE_RECALL]
        choice = [q for q in pool if q.form is Form.MULTIPLE_CHOICE and s.policy.allow_multiple_choice
                  and self._choices_left() > 0]
        return choice if s.choice_started or not free else free + choice

    def _pick(self) -> Question | None:
        s = self._live()
        eligible = self._eligible()
        free = [q for q in eligible if q.form is Form.FREE_RECALL] or eligible
        fresh = [q for q in free if q.source.value not in s.used_sources] or free
        if not s.asked:  # contacts are hard to recall: never the first question while another source is there
            fresh = [q for q in fresh if q.source is not Source.CONTACTS] or fresh
        if not fresh:
            return None
        need = self._need()
        finishers = [q for q in fresh if q.bits >= need]
        if finishers:  # one more right answer would do: ask the one the genuine user finds easiest
            return max(finishers, key=lambda q: (q.ease, q.bits))
        return max(fresh, key=lambda q: (q.expected_bits, q.bits))

    def _next(self) -> Step:
        s = self._live()
        q = self._pick()
        if q is None:
            return self._out_of_questions()
        q = self._unspent_version(q)
        s.pool.remove(q)
        if self._allowance(q.kind) <= 1:  # its other versions go too
            s.pool = [other for other in s.pool if other.kind != q.kind]
        s.current, s.current_asked_at = q, self._clock()
        s.asked += 1
        s.used_sources.append(q.source.value)
        s.choice_started = s.choice_started or q.form is Form.MULTIPLE_CHOICE
        return self._step()

    def _unspent_version(self, q: Question) -> Question:
        """Of a multiple-choice kind's versions, one whose right answer was not credited already (else the real
        person would pick a true option for nothing). Invisible to the agent: every version looks alike."""
        s = self._live()
        if q.form is not Form.MULTIPLE_CHOICE or not {c.key for c in q.accepted} & set(s.credited):
            return q
        return next((o for o in s.pool if o.kind == q.kind and not {c.key for c in o.accepted} & set(s.credited)), q)

    def _record(self, q: Question, result: MatchResult, earned: float, reason: str) -> Step:
        s = self._live()
        assert s.current_asked_at is not None
        s.transcript.append(TranscriptEntry(q.id, q.kind, q.source.value, q.form.value, q.bits, earned,
                                            result.value, 1, s.current_asked_at, self._clock(), reason))
        s.earned = round(s.earned + earned, 2)
        if result is not MatchResult.SKIPPED:
            s.offered = round(s.offered + q.bits, 2)
        if result is MatchResult.WRONG:
            s.wrong += 1
        s.current = s.current_asked_at = None
        return self._after_progress()

    def _after_progress(self) -> Step:
        s = self._live()
        # max_wrong wrong answers: no way of passing holds any more, but the session goes on as any other would.
        rule = f.met(self._rules(), s.earned, self._held()) if s.wrong < s.policy.max_wrong else None
        if rule is not None and s.risk_pending:
            return self._step()  # enough for now: the decision waits for the sign-in risk (update_risk)
        if rule is not None:
            held = f.held_factors(rule.bits, rule.strong)
            return self._decide(Outcome.VERIFIED, "Verified by " + " and ".join(x.label for x in held) + ".", held)
        if s.current is not None:  # a factor answered mid-question: carry on with it
            return self._step()
        if self._awaiting_code():  # the code comes before any question
            return self._step()
        more = self._more_bits()
        if more <= 0:
            return self._out_of_questions()
        if not f.reachable(self._rules(), s.offered, more, self._obtainable()):
            if self._offer():  # a factor not asked yet could still make it: the dialog asks, then `requested`
                return self._step()
            return self._decide(Outcome.NOT_VERIFIED, self._shortfall())
        return self._next()

    def _out_of_questions(self) -> Step:
        """No question left to ask: wait for a factor that was asked and could still finish it, ask one that
        could, or decide."""
        s = self._live()
        pending = frozenset(Factor(x) for x in s.requested)
        if pending and f.reachable(self._rules(), s.offered, 0.0, self._held() | pending):
            return self._step()
        if self._offer():
            return self._step()
        return self._decide(Outcome.NOT_VERIFIED, self._shortfall())

    def _rules(self) -> tuple[Rule, ...]:
        s = self._live()
        rules = f.with_risk(s.policy.rules(), 0.0 if s.risk_pending else s.risk.extra_bits_required)
        return f.strong_only(rules) if Flag.AFTER_LIMIT.value in s.flags else rules

    def _held(self) -> frozenset[Factor]:
        return frozenset(Factor(x) for x in self._live().held)

    def _obtainable(self, with_available: bool = False) -> frozenset[Factor]:
        """Held or asked and unanswered; `with_available`: also those that could still be asked."""
        s = self._live()
        names = set(s.held) | set(s.requested)
        if with_available:
            names |= set(s.available) - set(s.failed)
        return frozenset(Factor(x) for x in names)

    def _more_bits(self) -> float:
        s = self._live()
        left = s.policy.max_questions - s.asked
        return (_capacity(self._eligible(possible=True), left, self._allowance, self._choices_left())
                if left > 0 else 0.0)

    def _choices_left(self) -> int:
        """Multiple-choice questions the session may still ask (`Policy.max_choice_questions`)."""
        s = self._live()
        return s.policy.max_choice_questions - sum(1 for t in s.transcript if t.form == Form.MULTIPLE_CHOICE.value)

    def _offer(self) -> frozenset[Factor]:
        """Strong factors to ask now. The code: at the start, whenever it is available. The manager: at the start
        when the policy says always; otherwise once no way of passing is reachable without them."""
        s = self._live()
        if s.decision is not None:
            return frozenset()
        candidates = frozenset(Factor(x) for x in s.available if x not in s.requested + s.held + s.failed)
        if Factor.POSSESSION in candidates and s.asked == 0:
            return frozenset({Factor.POSSESSION})
        if Factor.MANAGER not in candidates:
            return frozenset()
        if s.policy.manager_attestation is f.ManagerMode.ALWAYS:
            return frozenset({Factor.MANAGER})
        more = self._more_bits()
        if f.reachable(self._rules(), s.offered, more, self._obtainable()):
            return frozenset()
        obtainable = self._held() | self._obtainable()
        return f.useful(self._rules(), s.offered, more, obtainable, candidates) & {Factor.MANAGER}

    def _awaiting_code(self) -> bool:
        s = self._live()
        return Factor.POSSESSION.value in s.requested or (Factor.POSSESSION in self._offer())

    def _need(self) -> float:
        """The fewest bits still to earn in some way of passing that can still hold, counting every answer so far as
        right (what comes next must not depend on whether they were)."""
        s = self._live()
        obtainable = self._obtainable()
        needs = [r.bits - s.offered for r in self._rules() if r.strong <= obtainable]
        return max(0.0, min(needs)) if needs else s.required_bits - s.offered

    def _factor_entry(self, kind: str, result: str) -> None:
        now = self._clock()
        self._live().transcript.append(TranscriptEntry(FACTOR_QUESTION_ID, kind, "teams", "factor", 0.0, 0.0,
                                                       result, 1, now, now))

    def _allowance(self, kind: str) -> int:
        """How many more questions of this kind may be asked: one of each free-recall kind (there is only one);
        up to `multiple_choice_per_source` versions of a multiple-choice one."""
        s = self._live()
        versions = max(1, s.policy.multiple_choice_per_source)
        return versions - sum(1 for t in s.transcript if t.kind == kind)

    def _shortfall(self) -> str:
        return SHORTFALL

    # --- plumbing ----------------------------------------------------------------------------------

    def _live(self) -> _State:
        if self._s is None:
            raise RuntimeError("session not started")
        return self._s

    def _expired(self) -> bool:
        s = self._live()
        return self._clock() - s.started_at > s.policy.session_timeout

    def _timeout_or_current(self) -> Step:
        s = self._live()
        if s.decision is None and self._expired():
            minutes = s.policy.session_timeout.total_seconds() / 60
            return self._decide(Outcome.TIMED_OUT, f"The verification took longer than {minutes:.0f} minutes.")
        return self._step()

    def _decide(self, outcome: Outcome, reason: str, factors: tuple[Factor, ...] | None = None) -> Step:
        """`factors`: those that verified the caller. Otherwise only the strong factors that held are named, which
        the agent saw happen (they typed the code, the manager's answer was shown them): never whether any answer
        to a question was right."""
        s = self._live()
        held = factors if factors is not None else f.held_factors(0.0, self._held())
        s.decision = Decision(outcome, reason, s.earned, s.required_bits, s.asked, s.wrong, s.risk,
                              tuple(s.transcript), tuple(s.flags), self._clock(), held)
        s.plan, s.pool, s.current, s.current_asked_at = (), [], None, None  # the secrets die with the session
        s.credited, s.pending_name, s.code = [], None, None
        return self._step()

    def _step(self, clarify: bool = False) -> Step:
        s = self._live()
        prompt = None
        if s.decision is None and s.current is not None:
            q = s.current
            text = FULL_NAME_PROMPT if s.pending_name is not None else self._wording(q)
            prompt = Prompt(q.id, q.kind, q.source, q.form, text, q.options, q.bits)
        offer = self._offer() if s.decision is None else frozenset()
        awaiting = frozenset(Factor(x) for x in s.requested) if s.decision is None else frozenset()
        return Step(prompt, s.decision, s.earned, s.required_bits, clarify or s.pending_name is not None,
                    offer, awaiting, awaiting_risk=self._awaiting_risk())

    def _wording(self, q: Question) -> str:
        """The question as read out. Once any person has been asked for, a person question says "someone you
        haven't named already" whatever the earlier answers were (it used to follow only a right one)."""
        s = self._live()
        asked_for_people = any(t.source in PEOPLE_SOURCES for t in s.transcript)
        if q.answer_type is AnswerType.PERSON and q.form is Form.FREE_RECALL and asked_for_people:
            return f"{q.prompt} {NOT_NAMED_ALREADY}"
        return q.prompt

    # --- persistence -------------------------------------------------------------------------------

    def plan(self) -> tuple[Question, ...]:
        """Every question chosen at the start, accepted answers included (empty once decided). Fixed for the
        session's life: store it once, encrypted, and pass it back to `from_dict`."""
        return self._live().plan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, small, without the plan. The "secret" part (keys already credited, a half-given name, the
        seed that orders options) is emptied when the session decides; encrypt it at rest."""
        s = self._live()
        return {
            "version": FORMAT_VERSION, "id": self.id, "target_id": s.target_id, "policy": s.policy.to_dict(),
            "started_at": s.started_at.isoformat(), "required_bits": s.required_bits, "risk": s.risk.to_dict(),
            "earned": s.earned, "offered": s.offered, "wrong": s.wrong, "asked": s.asked,
            "risk_pending": s.risk_pending,
            "used_sources": list(s.used_sources), "choice_started": s.choice_started, "flags": list(s.flags),
            "transcript": [t.to_dict() for t in s.transcript],
            "decision": s.decision.to_dict() if s.decision else None,
            "factors": {"available": list(s.available), "requested": list(s.requested), "held": list(s.held),
                        "failed": list(s.failed), "near_misses": s.near_misses, "delivered": list(s.delivered),
                        "undelivered": list(s.undelivered),
                        "sending_since": {x: since.isoformat() for x, since in s.sending_since.items()}},
            "secret": {} if s.decision else {
                "seed": self._seed, "credited": list(s.credited), "pending_name": s.pending_name,
                "code": s.code.to_dict() if s.code else None,
                "pool": [q.id for q in s.pool],
                "current": s.current.id if s.current else None,
                "current_asked_at": s.current_asked_at.isoformat() if s.current_asked_at else None,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], clock: Clock,
                  plan: Sequence[Question] | None = ()) -> VerificationSession:
        """The session `to_dict()` described, over the `plan()` it started with (not needed once decided).
        `plan=None` says the plan is gone (the session was ended elsewhere, which drops it): the session comes
        back asking nothing, so only what needs no plan can still decide it (expiry, the person's "not me").
        Raises ValueError on another format, or when the plan lacks a question the progress names."""
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported session format {data.get('version')!r}")
        secret = data.get("secret") or {}
        session = cls(clock, session_id=data["id"], seed=secret.get("seed"))
        s = _State(Policy.from_dict(data["policy"]), data["target_id"], datetime.fromisoformat(data["started_at"]),
                   float(data["required_bits"]), RiskAssessment.from_dict(data["risk"]))
        s.risk_pending = bool(data.get("risk_pending", False))
        s.credited = list(secret.get("credited", []))
        s.pending_name = secret.get("pending_name")
        if secret and plan is not None:
            s.plan = tuple(plan)
            s.pool = _planned(s.plan, secret.get("pool", []))
            s.current = _planned(s.plan, [secret["current"]])[0] if secret.get("current") else None
        asked_at = secret.get("current_asked_at")
        s.current_asked_at = datetime.fromisoformat(asked_at) if asked_at else None
        s.earned, s.offered = float(data["earned"]), float(data.get("offered", data["earned"]))
        s.wrong, s.asked = int(data["wrong"]), int(data["asked"])
        s.used_sources, s.flags = list(data["used_sources"]), list(data["flags"])
        s.choice_started = bool(data["choice_started"])
        s.transcript = [TranscriptEntry.from_dict(t) for t in data["transcript"]]
        s.decision = Decision.from_dict(data["decision"]) if data.get("decision") else None
        factors = data.get("factors") or {}
        s.available, s.requested = list(factors.get("available", [])), list(factors.get("requested", []))
        s.held, s.failed = list(factors.get("held", [])), list(factors.get("failed", []))
        s.near_misses = int(factors.get("near_misses", 0))
        # Progress sealed before deliveries were tracked asked a factor only once its send had reached the person.
        s.delivered = list(factors.get("delivered", s.requested))
        s.undelivered = list(factors.get("undelivered", []))
        sending = factors.get("sending_since") or {}
        s.sending_since = {x: datetime.fromisoformat(since) for x, since in sending.items()}
        s.code = SealedCode.from_dict(secret["code"]) if secret.get("code") else None
        session._s = s
        return session


def _planned(plan: Sequence[Question], ids: Sequence[str]) -> list[Question]:
    """The planned questions named by `ids`."""
    by_id = {q.id: q for q in plan}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"the question plan lacks {len(missing)} question(s) the session refers to")
    return [by_id[i] for i in ids]


def _capacity(questions: Sequence[Question], count: int, allowance: Callable[[str], int], choices: int) -> float:
    """The most bits `count` of these questions could still earn, at most `allowance(kind)` of each kind and at most
    `choices` multiple-choice ones."""
    by_kind: dict[str, list[float]] = {}
    forms: dict[str, Form] = {}
    for q in questions:
        by_kind.setdefault(q.kind, []).append(q.bits)
        forms[q.kind] = q.form
    best = sorted(((b, forms[kind] is Form.MULTIPLE_CHOICE) for kind, values in by_kind.items()
                   for b in sorted(values, reverse=True)[:max(0, allowance(kind))]), reverse=True)
    total, taken, choices = 0.0, 0, max(0, choices)
    for bits, is_choice in best:
        if taken == count:
            break
        if is_choice:
            if not choices:
                continue
            choices -= 1
        total += bits
        taken += 1
    return total
