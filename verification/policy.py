"""The knobs of a verification, with defaults a security reviewer can defend."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from verification.context import Source
from verification.factors import Factor, ManagerMode, Rule

QUESTION_SOURCES = frozenset({Source.MEETINGS, Source.GROUPS, Source.HIERARCHY, Source.CHATS, Source.CONTACTS,
                              Source.MAIL, Source.ROLES})


@dataclass(frozen=True, slots=True)
class Policy:
    # Following NIST SP 800-63A-3's guidance for knowledge-based verification (s. 5.3.2: KBV questions must
    # not be answerable from public or easily found data, and attempts are limited) with the 20-bit
    # strength NIST has long used for knowledge secrets (SP 800-63-2 pre-registered knowledge tokens).
    # The 20 bits are measured against an INFORMED impostor who knows the public org chart, not a random one.
    required_bits: float = 20.0
    max_questions: int = 8
    max_wrong: int = 2  # the second wrong answer ends the session
    session_timeout: timedelta = timedelta(minutes=10)
    # Fair limits: only failed and abandoned verifications of a person count (and open ones, which may yet fail),
    # never Verified ones, ones the agent cancelled, or ones Watchword ended itself; reaching this many in 24 h
    # locks the person out for `lockout_duration` (an admin can lift it in the console), and the count restarts.
    max_attempts_per_day: int = 3
    lockout_duration: timedelta = timedelta(hours=24)
    sources: frozenset[Source] = QUESTION_SOURCES
    # How many tries the agent gives per free-recall question. Bits are computed for this many impostor
    # guesses, so a second try costs about one bit per question but forgives a genuine slip.
    guesses_per_question: int = 2
    allow_multiple_choice: bool = True
    multiple_choice_options: int = 5  # at most log2(5) = 2.32 bits each
    # Multiple-choice questions per source (versions with different right answers and disjoint options, so
    # each is an independent 1-in-k pick for the impostor). All three versions a source builds: a person whose
    # only private facts are one source's (mail they recognise but cannot recall) needs the third to reach the
    # code's bits after a "don't know"; each version still costs an impostor a fresh 1-in-k guess.
    multiple_choice_per_source: int = 3
    # Multiple-choice questions per session, all sources together. A run of them is a run of 1-in-k guesses: five
    # (11.6 bits) stay under the manager's 12, so a fooled manager and lucky picks never verify on their own, while
    # three reach the code's 6. Versions of a source add up (the outsiders' ones too): without a cap the plan holds
    # more of them than a session should ask.
    max_choice_questions: int = 5
    show_subjects: bool = False  # meeting/mail subjects are private content: off unless the tenant opts in
    # Unmodelled knowledge (LinkedIn, social media, gossip) means no single free-recall answer proves more.
    max_bits_per_question: float = 8.0
    min_bits_per_question: float = 1.0  # below this a question is public knowledge: never asked
    partial_credit: float = 0.5  # share of a question's bits earned by a partial answer
    # Factors (verification/factors.py): a caller is verified when any way of passing holds. Questions alone
    # need `required_bits`; with the code shown in the person's own Teams, `code_required_bits` (about one good
    # answer: the code already rules out everyone who does not hold their signed-in Teams); with their manager's
    # confirmation, `manager_required_bits` (a manager vouches for a voice, which a confident impostor can fake,
    # so it replaces fewer bits than the code); with both, `code_and_manager_required_bits`.
    possession_code: bool = True
    code_required_bits: float = 6.0
    manager_attestation: ManagerMode = ManagerMode.WHEN_NEEDED
    manager_required_bits: float = 12.0
    code_and_manager_required_bits: float = 3.0
    # After `max_attempts_per_day`, questions alone no longer verify: the code or the manager must hold too
    # (instead of refusing the real employee outright). False refuses, as before.
    strong_factor_after_limit: bool = True
    security_contact_id: str = ""  # Entra object id told in Teams of every alert (a wrong code, a "not me")
    # Risk: what the sign-in signals do.
    block_on_high_risk: bool = True
    medium_risk_extra_bits: float = 8.0
    low_risk_extra_bits: float = 0.0
    sign_ins_unavailable_extra_bits: float = 4.0
    refuse_when_roles_unknown: bool = True  # cannot rule out an administrator -> treat as privileged
    failed_burst_count: int = 5
    failed_burst_window: timedelta = timedelta(minutes=15)
    risk_lookback: timedelta = timedelta(hours=24)
    history_window: timedelta = timedelta(days=30)
    impossible_travel_kmh: float = 900.0
    recent_password_change: timedelta = timedelta(hours=24)
    # Question sources.
    meeting_lookback: timedelta = timedelta(days=14)
    meeting_lookahead: timedelta = timedelta(days=3)
    max_meeting_attendees: int = 15  # bigger meetings are all-hands: anybody could claim them
    chat_window: timedelta = timedelta(days=7)
    max_chat_members: int = 12
    mail_window: timedelta = timedelta(days=3)
    max_group_members: int = 50
    tenant_wide_share: float = 0.5  # a group holding this share of the tenant is public knowledge

    def rules(self) -> tuple[Rule, ...]:
        """The ways of passing, before sign-in risk (see verification/factors.py)."""
        code = frozenset({Factor.POSSESSION})
        manager = frozenset({Factor.MANAGER})
        out = [Rule(frozenset(), self.required_bits)]
        if self.possession_code:
            out.append(Rule(code, self.code_required_bits))
        if self.manager_attestation is not ManagerMode.OFF:
            out.append(Rule(manager, self.manager_required_bits))
            if self.possession_code:
                out.append(Rule(code | manager, self.code_and_manager_required_bits))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # Shallow on purpose: the fields are scalars, timedeltas and frozensets, and asdict()'s recursive copy
        # showed up in every answer turn's profile (the policy travels in the session's progress).
        for key, value in ((f.name, getattr(self, f.name)) for f in fields(self)):
            if isinstance(value, timedelta):
                out[key] = {"seconds": value.total_seconds()}
            elif isinstance(value, frozenset):
                out[key] = sorted(str(v) for v in value)
            else:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        kwargs: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            if f.name not in d:
                continue
            value, default = d[f.name], getattr(defaults, f.name)
            if isinstance(default, timedelta):
                kwargs[f.name] = timedelta(seconds=value["seconds"])
            elif f.name == "manager_attestation":
                kwargs[f.name] = ManagerMode(value)
            elif f.name == "sources":
                kwargs[f.name] = frozenset(Source(v) for v in value)
            elif isinstance(default, frozenset):
                kwargs[f.name] = frozenset(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)
