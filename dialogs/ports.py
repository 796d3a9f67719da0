"""What the dialogs need from the rest of Watchword, as interfaces passed into their constructors.

bot/ implements them (over store/, the Agents SDK's proactive messaging, and Fernet); tests pass the same
implementations over a SQLite store, or fakes. Nothing here imports SQL, msgraph or the SDK's hosting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext

from verification import Decision, Outcome, Policy, RiskAssessment, TranscriptEntry
from verification.factors import Attestation, Factor
from verification.reset import ResetClaimResult, ResetOutcome, Settled


class CardRenderer(Protocol):
    """templates/cards/<name>.json.j2 as an Adaptive Card, and a message carrying one."""

    def render(self, name: str, **values: Any) -> dict[str, Any]: ...

    def activity(self, card: Mapping[str, Any], summary: str) -> Activity: ...


class Sealer(Protocol):
    """Keeps a verification's accepted answers encrypted while they are stored: the question plan whole
    (`encrypt`), and the "secret" part of the session's progress (`seal`)."""

    def encrypt(self, data: bytes) -> str: ...

    def choice_key(self, tenant_id: str) -> bytes:
        """The tenant's secret key for multiple-choice draws (OrgKnowledge.choice_key): the same on every call and
        every instance sharing the state key, unknown to anyone without it."""
        ...

    def decrypt(self, token: str) -> bytes:
        """Raises SealError when the token cannot be opened (another key, tampering)."""
        ...

    def seal(self, session: Mapping[str, Any]) -> dict[str, Any]: ...

    def unseal(self, sealed: Mapping[str, Any]) -> dict[str, Any]:
        """Raises SealError when the sealed part cannot be opened (another key, tampering)."""
        ...


class SealError(Exception):
    """A stored verification cannot be decrypted (the key changed, or the state was tampered with)."""


class Protection(StrEnum):
    """Whether Watchword may verify (and reset) this person."""

    PROTECTED = "protected"
    NOT_PROTECTED = "not_protected"  # outside the scope the tenant's admin chose
    PRIVILEGED = "privileged_admin"
    FEDERATED = "federated"
    GUEST = "guest"  # a B2B guest from another organisation
    DISABLED = "account_disabled"


@dataclass(frozen=True)
class Actor:
    """Who acts in this conversation (an agent, or an end user for self-service)."""

    tenant_id: str
    user_id: str  # Entra object id
    name: str
    personal_chat: bool  # a 1:1 chat with the bot: the only place a password may be shown

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "user_id": self.user_id, "name": self.name,
                "personal_chat": self.personal_chat}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Actor:
        return cls(str(d["tenant_id"]), str(d["user_id"]), str(d.get("name") or ""), bool(d["personal_chat"]))


@dataclass(frozen=True)
class AuditNote:
    """An audit event a dialog records along with something else (see VerificationRecords.record_answer)."""

    action: str
    outcome: str
    actor: Actor
    subject: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class StartChecks:
    """What a start reads before anything about the person (VerificationRecords.start_checks)."""

    policy: Policy  # the tenant's
    self_service: bool  # whether the tenant turned self-service on
    protection: Protection  # whether the person may be verified...
    reason: str  # ...and a plain reason when not
    locked_until: datetime | None  # the end of the person's lockout, if they are locked out now


class VerificationRecords(Protocol):
    """Policies, protection, attempts, lockouts, the sessions' transcript and the audit log."""

    async def start_checks(self, tenant_id: str, user_id: str) -> StartChecks:
        """The tenant's policy, the user's protection and lockout, read together (one transaction)."""
        ...

    async def self_service_enabled(self, tenant_id: str) -> bool: ...

    async def admit(self, *, session_id: str, actor: Actor, target_id: str, self_service: bool, policy: Policy,
                    risk: RiskAssessment, expires_at: datetime, chat: tuple[str, str] | None = None) -> int:
        """Record the session (in progress, so it counts while open) and return how many attempts counted against
        the target before it (failed or abandoned in the last 24 h, or still open), both in one step that
        concurrent verifications of the same person, on any instance, cannot race. `chat`: (channel id,
        conversation id) it starts in; the same actor's session of the person left open there (a killed turn's,
        which the chat's state never knew of) is cancelled in that step, not counted."""
        ...

    async def open_session(self, *, session_id: str, actor: Actor, target_id: str, self_service: bool,
                           policy: Policy, risk: RiskAssessment, required_bits: float, expires_at: datetime,
                           sealed_plan: str | None = None) -> None:
        """The admitted session has started: store its sealed question plan (None: it decided at once) and audit
        its start."""
        ...

    async def sealed_plan(self, session_id: str) -> str | None:
        """The open session's sealed question plan (None once it ended)."""
        ...

    async def stored_outcome(self, session_id: str) -> Outcome | None:
        """The session's outcome as the store has it, None if there is no such session: for a turn whose
        conversation state is older than the store (a kill after the decision)."""
        ...

    async def keep_final_risk(self, session_id: str, risk: RiskAssessment) -> None:
        """Keep the sign-in risk weighed once the logs arrived, for whichever instance decides the session."""
        ...

    async def final_risk(self, session_id: str) -> RiskAssessment | None:
        """The sign-in risk some instance kept for the session (keep_final_risk); None while it has not arrived."""
        ...

    async def own_resets(self, tenant_id: str, user_id: str, *, since: datetime) -> list[tuple[datetime, datetime]]:
        """When Watchword itself reset (or may have reset) the person's password since `since`, as (from, to)."""
        ...

    async def record_answer(self, session_id: str, entry: TranscriptEntry, earned_bits: float,
                            audit: AuditNote | None = None, *, index: int | None = None) -> bool:
        """Add one transcript entry, and `audit` in the same transaction; False when the session was already
        closed (e.g. the user said No): `audit` is then recorded alone. `index`: the entry's place in the
        session's transcript, so a redelivered turn (killed before its state was saved) does not record it twice."""
        ...

    async def close_session(self, session_id: str, decision: Decision, *, actor: Actor, target_id: str,
                            policy: Policy) -> bool:
        """Record the outcome and audit it; when the outcome counts (failed, abandoned) and the policy's count is
        reached, lock the target out in the same step. False if it was already closed."""
        ...

    async def audit(self, action: str, outcome: str, *, actor: Actor, subject: str | None,
                    details: Mapping[str, Any] | None = None) -> None: ...


class ResetLedger(Protocol):
    """The reset's record on the verified session (store/): the one place that guards a reset. Written ahead:
    `claim` records the intent before Graph is asked, `settle` the outcome after (verification/reset.py)."""

    async def claim(self, session_id: str, *, actor: Actor) -> ResetClaimResult:
        """Compare-and-set a new reset attempt for `actor` on the session, audited as `password_reset/started`
        (or `refused_<why>`) in the same step."""
        ...

    async def fence(self, session_id: str, attempt: int) -> bool:
        """Just before Graph's PATCH: prove the attempt is still this process's claim (compare-and-set), and count a
        take-over of it from now. False: it was taken over, and the PATCH must not be sent."""
        ...

    async def holds(self, session_id: str, attempt: int) -> bool:
        """Whether the attempt is still the session's latest (no later attempt took its claim over)."""
        ...

    async def settle(self, session_id: str, attempt: int, outcome: ResetOutcome, *, actor: Actor, target_id: str,
                     audit_outcome: str, details: Mapping[str, Any] | None = None, blocked: bool = False) -> Settled:
        """Record how the attempt ended, with its audit row, in one step; retried briefly when the database
        does not answer. UNRECORDED when it still could not be recorded (the caller must then say so); SUPERSEDED
        when a later attempt had taken the claim over (audited so; the record is that attempt's)."""
        ...

    async def block(self, session_id: str) -> None:
        """The person said "not me": no (further) reset for this session. A reset already done stays done."""
        ...


class Notice(StrEnum):
    """How the person was told their password was reset."""

    DELIVERED = "delivered"  # in their chat with Watchword
    INSTALLED = "installed"  # Watchword was installed for them first (they had no chat with it)
    NOT_REACHED = "not_reached"  # no chat, and none could be made: the agent must tell them another way


@dataclass(frozen=True)
class FactorAnswers:
    """What the people asked in their own Teams said: the person ("not me"), their manager; and how the sends that
    asked them ended, as far as is known (a factor in neither set: still on its way, or its sender was killed)."""

    denied: bool = False
    manager: Attestation | None = None
    delivered: frozenset[Factor] = frozenset()
    undelivered: frozenset[Factor] = frozenset()


class Messenger(Protocol):
    """Messages to people other than the one in this conversation (proactive), and their answers."""

    async def can_reach(self, tenant_id: str, user_id: str) -> bool:
        """Whether Watchword has a 1:1 chat with the user (they installed it, or it was installed for them)."""
        ...

    async def can_ask_manager(self, tenant_id: str, manager_id: str) -> bool:
        """Whether the manager can be asked in Teams: they have a chat with Watchword, or Watchword may install itself
        for them (`ask_manager` then does)."""
        ...

    async def show_code(self, context: TurnContext, *, session_id: str, actor: Actor, target_id: str, code: str,
                        security_contact_id: str = "") -> bool:
        """Show the one-time code (and "not me") in the person's own chat with Watchword; False if not delivered.
        Either outcome is kept with the session's answers (`factor_answers`) before it is returned, for whichever
        instance takes the conversation's next turn; an exception leaves it unknown."""
        ...

    async def ask_manager(self, context: TurnContext, *, session_id: str, actor: Actor, target: Mapping[str, str],
                          manager_id: str, security_contact_id: str = "", self_service: bool = False) -> bool:
        """Ask the manager "is <name> on the phone with the helpdesk now?" (self-service: "resetting their own
        password in Teams now?") in their chat with Watchword, installing Watchword for them first when they have
        none and the tenant allows it; False if not delivered (kept as `show_code`'s is)."""
        ...

    def send_in_background(self, context: TurnContext, send: Callable[[], Awaitable[bool]], *,
                           tell: Callable[[bool], Activity | None] | None = None, card_id: str | None = None,
                           value: dict[str, Any] | None = None, key: str | None = None) -> None:
        """Run `send()` (`show_code`, `ask_manager`: Graph and Teams round trips) after this turn, not in it, in a task
        the messenger tracks (stopping the process ends it). Once it returns whether it was delivered: send
        `tell(delivered)` into this conversation when that gives a message, and when not delivered and `value` is
        given, continue this conversation as `continue_when` does (the card `card_id` clicked with `value`). An
        exception is logged: the outcome stays unknown, as if the process had been killed mid-send. `key` names it
        for `continue_if_undelivered` while it runs. Never raises."""
        ...

    async def close_code_card(self, context: TurnContext, session_id: str) -> bool:
        """Take the code off the person's code card (the verification ended, or the code was used); False if there
        was none to replace or replacing it failed (logged, never raised)."""
        ...

    async def note_agent_card(self, session_id: str, card_id: str) -> None:
        """Keep the id of the agent's open card (when the person or manager was asked in Teams), so a "not me"
        can close it."""
        ...

    async def factor_answers(self, session_id: str) -> FactorAnswers: ...

    def continue_when(self, context: TurnContext, ready: Callable[[], Awaitable[bool | None]], *,
                      card_id: str | None, value: dict[str, Any]) -> None:
        """Once `ready()` returns (anything but False, which says there is nothing to continue for), continue this
        conversation as if the card `card_id` had been clicked with `value` (a `{"verb": ..., "ref": ...}` its prompt
        accepts): the turn runs as any other (one at a time per conversation), and is dropped silently when that card
        no longer waits for it. Never raises."""
        ...

    def continue_if_undelivered(self, context: TurnContext, key: str, *, card_id: str | None,
                                value: dict[str, Any]) -> None:
        """When the send started with `key` (send_in_background) still runs in this process, continue this
        conversation as `continue_when` does should it end undelivered. Otherwise nothing: its outcome is known
        already, or it runs elsewhere or died with its process, and the conversation's next turn learns it."""
        ...

    async def out_of_band_answer(self, session_id: str) -> bool | None:
        """False when the person said "not me"; None otherwise (there is no "yes" any more)."""
        ...

    async def alert_security(self, context: TurnContext, *, tenant_id: str, security_contact_id: str, title: str,
                             lines: list[str], subject: str, session_id: str) -> bool:
        """Tell the tenant's security contact in Teams, and audit it whether or not it could be delivered."""
        ...

    async def notify_password_reset(self, context: TurnContext, *, tenant_id: str, target_id: str,
                                    at: datetime, outcome: ResetOutcome = ResetOutcome.DONE) -> Notice:
        """Tell the person in Teams that their password was reset (`outcome` done), or that a reset was requested
        and may have changed it (unknown): in their chat with Watchword, or in one made by installing Watchword for
        them (when the tenant allows it). Never raises."""
        ...
