"""Where a verification session lives between turns.

A session has two parts (verification/session.py). Its question plan, every question with its accepted
answers, is tens to hundreds of KB and never changes: it is sealed once when the session starts, stored with
the session's row, and kept parsed in memory here. Its progress (score, transcript, which question is being
asked) is a few hundred bytes that change every turn: it is sealed into the dialog's state, which the SDK
saves with the conversation. So a turn moves the progress only; a process that does not hold the plan (it
restarted, or another instance took the conversation) reads it once from the store.

Sign-in logs arrive seconds after the rest (graph/context_loader.py): a session begins on the policy's
"sign-ins unavailable" rule with its risk pending, the real risk is weighed in the background as soon as the
logs arrive, and `open` hands it to the session; when the session is ready to decide and the risk is still
not there, `open` waits for it until RISK_DEADLINE after the start, then the provisional rule stands.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from microsoft_agents.hosting.core import TurnContext

from dialogs.ports import Actor, Sealer, SealError, VerificationRecords
from graph.directory import LoadedContext
from verification import Policy, Question, RiskAssessment, Step, VerificationSession, assess_risk
from verification.clock import Clock
from verification.factors import Factor

OPEN_SESSION = "watchword.open_session"  # turn_state: the session this turn sealed or opened last
BEGUN = "watchword.session_begun"  # turn_state: this turn began a session (the bot times its first question)
PLANS_KEPT = 512  # open sessions whose plans stay parsed in memory (a few MB); others are read back when needed
RISK_DEADLINE = timedelta(seconds=20)  # after the start: past it, the "sign-ins unavailable" rule decides


@dataclass(frozen=True)
class Started:
    """A verification just begun: the session, its first step (a question, or already a decision), the sign-in
    risk it weighed, and its progress sealed for the dialog's state."""

    session: VerificationSession
    first: Step
    risk: RiskAssessment
    sealed: dict[str, Any]


class SessionKeeper:
    def __init__(self, records: VerificationRecords, sealer: Sealer, clock: Clock, capacity: int = PLANS_KEPT) -> None:
        self._records = records
        self._sealer = sealer
        self._clock = clock
        self._capacity = capacity
        self._plans: OrderedDict[str, tuple[Question, ...]] = OrderedDict()
        self._risks: OrderedDict[str, asyncio.Future[RiskAssessment]] = OrderedDict()  # session id -> final risk

    async def begin(self, context: TurnContext, loaded: LoadedContext, policy: Policy, *, actor: Actor,
                    target_id: str, self_service: bool, available: frozenset[Factor] = frozenset(),
                    after_limit: bool = False) -> Started:
        """Begin verifying `target_id` on the Microsoft 365 data just read: weigh the sign-in risk, admit the session
        (counting the attempts against the person), choose the questions (or decide at once), and record its
        sealed plan. `available`: the strong factors that can be asked (see VerificationSession.start). Sign-ins
        still on their way: the risk weighed now applies the "unavailable" rule and the real one follows."""
        own = await self._records.own_resets(actor.tenant_id, target_id,
                                             since=self._clock() - policy.recent_password_change)
        risk = assess_risk(loaded.context, policy, own_resets=own)
        session = VerificationSession(self._clock)
        expires_at = self._clock() + policy.session_timeout
        # Admitted (and counted) before it starts, in one step concurrent verifications cannot race: the count is
        # what the session decides the day's limit on.
        attempts = await self._records.admit(session_id=session.id, actor=actor, target_id=target_id,
                                             self_service=self_service, policy=policy, risk=risk,
                                             expires_at=expires_at)
        if after_limit:  # locked out, yet let through for the strong factors (verify_dialog): the session knows
            attempts = max(attempts, policy.max_attempts_per_day)
        pending = loaded.sign_ins_later is not None
        first = session.start(loaded.context, loaded.org, policy, risk, attempts, available, risk_pending=pending)
        if pending and first.decision is None:
            self._remember_risk(session.id, asyncio.ensure_future(_final_risk(loaded, policy, own)))
        sealed = await self.start(context, session, actor=actor, target_id=target_id, self_service=self_service,
                                  policy=policy, risk=risk, required_bits=first.bits_required,
                                  expires_at=expires_at)
        context.turn_state[BEGUN] = session.id
        return Started(session, first, risk, sealed)

    async def start(self, context: TurnContext, session: VerificationSession, *, actor: Actor, target_id: str,
                    self_service: bool, policy: Policy, risk: RiskAssessment, required_bits: float,
                    expires_at: datetime) -> dict[str, Any]:
        """Record the new session with its sealed plan (see VerificationRecords.open_session); its sealed
        progress, for the dialog's state."""
        plan = session.plan()
        sealed_plan = None
        if plan:
            encoded = json.dumps([q.to_dict() for q in plan], separators=(",", ":")).encode("utf-8")
            sealed_plan = self._sealer.encrypt(encoded)
        await self._records.open_session(session_id=session.id, actor=actor, target_id=target_id,
                                         self_service=self_service, policy=policy, risk=risk,
                                         required_bits=required_bits, expires_at=expires_at,
                                         sealed_plan=sealed_plan)
        self._keep(session.id, plan)
        return self.seal(context, session)[0]

    def seal(self, context: TurnContext, session: VerificationSession) -> tuple[dict[str, Any], dict[str, Any]]:
        """(sealed, snapshot): the session's progress sealed for the dialog's state, and its `to_dict()`.
        Remembered for this turn, so a later step of the same turn that opens it gets this session back."""
        snapshot = session.to_dict()
        sealed = self._sealer.seal(snapshot)
        context.turn_state[OPEN_SESSION] = (sealed, session, snapshot)
        if session.decision is not None:
            self._plans.pop(session.id, None)  # its secrets die with it (the store drops its copy on close)
        return sealed, snapshot

    async def open(self, context: TurnContext, sealed: dict[str, Any]) -> tuple[VerificationSession, dict[str, Any]]:
        """(session, snapshot as sealed). A session whose plan is gone (it was ended elsewhere: the person said
        "not me", or it expired) comes back asking nothing (`asking` is None) for the dialog to settle. Raises
        SealError when it cannot be opened: sealed with another key, or tampered with."""
        known = context.turn_state.get(OPEN_SESSION)
        if known is not None and known[0] is sealed:
            await self._settle_risk(known[1])
            return known[1], known[2]
        snapshot = self._sealer.unseal(sealed)
        plan: tuple[Question, ...] | None = ()
        if snapshot.get("secret"):  # still undecided: it needs its plan (None: ended elsewhere, which dropped it)
            plan = await self._plan(str(snapshot["id"]))
        try:
            session = VerificationSession.from_dict(snapshot, self._clock, plan)
        except (KeyError, ValueError) as err:
            raise SealError(f"the verification cannot be resumed: {err}") from None
        context.turn_state[OPEN_SESSION] = (sealed, session, snapshot)
        await self._settle_risk(session)
        return session, snapshot

    async def _settle_risk(self, session: VerificationSession) -> None:
        """Give the session its sign-in risk when it has arrived; when the session waits for it to decide, wait
        until RISK_DEADLINE after the start (another process, which never read it, waits for nothing): then the
        provisional "sign-ins unavailable" risk stands."""
        if session.decision is not None or not session.risk_pending:
            self._risks.pop(session.id, None)
            return
        future = self._risks.get(session.id)
        if future is not None and future.done():
            session.update_risk(None if future.cancelled() or future.exception() else future.result())
        elif session.check().awaiting_risk:
            left = (session.started_at + RISK_DEADLINE - self._clock()).total_seconds()
            risk = None
            if future is not None and left > 0:
                try:
                    risk = await asyncio.wait_for(asyncio.shield(future), left)
                except TimeoutError:
                    risk = None
            session.update_risk(risk)
        if not session.risk_pending:
            self._risks.pop(session.id, None)

    def _remember_risk(self, session_id: str, future: asyncio.Future[RiskAssessment]) -> None:
        self._risks[session_id] = future
        while len(self._risks) > self._capacity:
            self._risks.popitem(last=False)[1].cancel()

    async def _plan(self, session_id: str) -> tuple[Question, ...] | None:
        plan = self._plans.get(session_id)
        if plan is not None:
            self._plans.move_to_end(session_id)
            return plan
        token = await self._records.sealed_plan(session_id)
        if token is None:
            return None
        try:
            plan = tuple(Question.from_dict(q) for q in json.loads(self._sealer.decrypt(token)))
        except (KeyError, TypeError, ValueError) as err:
            raise SealError(f"the verification's plan cannot be read: {err}") from None
        self._keep(session_id, plan)
        return plan

    def _keep(self, session_id: str, plan: tuple[Question, ...]) -> None:
        if not plan:
            return
        self._plans[session_id] = plan
        self._plans.move_to_end(session_id)
        while len(self._plans) > self._capacity:
            self._plans.popitem(last=False)


async def _final_risk(loaded: LoadedContext, policy: Policy,
                      own_resets: list[tuple[datetime, datetime]]) -> RiskAssessment:
    """The risk weighed on the sign-ins once they arrive (or on why they could not be read); a password change
    inside one of Watchword's own resets of the person is not counted against them."""
    complete = await loaded.with_sign_ins()
    return assess_risk(complete.context, policy, own_resets=own_resets)
