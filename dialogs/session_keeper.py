"""Where a verification session lives between turns.

A session has two parts (verification/session.py). Its question plan, every question with its accepted
answers, is tens to hundreds of KB and never changes: it is sealed once when the session starts, stored with
the session's row, and kept here encoded (bytes, bounded by their total size), decoded each turn. Its progress
(score, transcript, which question is being asked) is a few hundred bytes that change every turn: it is sealed
into the dialog's state, which the SDK saves with the conversation. So a turn moves the progress only; a
process that does not hold the plan (it restarted, or another instance took the conversation) reads it once
from the store.

Sign-in logs arrive seconds after the rest (graph/context_loader.py), and under a burst of starts they queue for
the tenant's reports budget (5 reads per 10 s): a session begins on the policy's "sign-ins unavailable" rule with
its risk pending, the real risk is weighed in the background as soon as the logs arrive (and kept with the
session's row, for an instance that takes a later turn without having read the logs), and `open` hands it to the
session. `open` never waits for it: a session whose questions are done while its risk is still unknown is left
awaiting it (the dialog says so at once, and `risk_settled` tells it when to look again: when the risk is known,
or at RISK_DEADLINE after the start, when the provisional rule stands).

Starts are the costly part of Watchword (Graph reads, then choosing questions: hundreds of ms of CPU in a large
organisation); answer turns are cheap. So a start takes a turn (`starting`: at most `StartLimits.at_once` at a
time, each waiting at most `StartLimits.wait` for its turn, else `StartBusy` and the agent is told to try again in
a few seconds, before anything was read or counted against the person), and its CPU work runs in a small pool of
worker threads, off the event loop, so the answer turns of other conversations go on while it runs. Threads share
the GIL: a thread that wants it gets it from the running one after `sys.getswitchinterval()` (5 ms by default), and
the event loop wants it back after every wait (a database read, a message sent), so an answer turn of a few steps
lost 5 ms per step to a start's worker. Serving sets the interval to SWITCH_INTERVAL_S (bot/hosting.py): a
measured burst of starts at 12,000 people took answer turns' p99 from 10.7 s (generation on the loop) to 0.37 s
(in a thread, 5 ms) and 0.13 s (1 ms).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from microsoft_agents.hosting.core import TurnContext

from dialogs.ports import Actor, Sealer, SealError, VerificationRecords
from graph.directory import LoadedContext
from verification import Policy, Question, RiskAssessment, Step, VerificationSession, assess_risk, risk_inputs
from verification.clock import Clock
from verification.context import OrgKnowledge
from verification.factors import Factor
from verification.plan import decode_plan, encode_plan

log = logging.getLogger(__name__)
T = TypeVar("T")

OPEN_SESSION = "watchword.open_session"  # turn_state: the session this turn sealed or opened last
BEGUN = "watchword.session_begun"  # turn_state: this turn began a session (the bot times its first question)
# Open sessions' plans held in memory, as their compact bytes (verification/plan.py: ~10-30 KB each), up to this
# many bytes (setting WATCHWORD_PLAN_MEMORY_MB); the least recently used are read back from the store when needed.
PLAN_MEMORY_BYTES = 64 * 1024 * 1024
RISKS_KEPT = 512  # sessions whose sign-in risk is being read in the background
# After the start: past it, the "sign-ins unavailable" rule decides. The sign-in read's own budget
# (graph/context_loader.py SIGN_IN_DEADLINE_S) is as long: a read queued behind other starts' for the tenant's
# reports budget goes on waiting while the caller answers, and nothing waits for it before the questions are done.
RISK_DEADLINE = timedelta(seconds=60)
RISK_CLOCK_MARGIN_S = 0.05  # risk_settled returns this long after the deadline (timers may fire a little early)
RISK_POLL_S = 0.25  # how often an instance without the sign-ins' read looks for the risk another one kept
START_WORKERS = 2  # threads choosing questions: the GIL runs one at a time, a second is ready as the first ends
SWITCH_INTERVAL_S = 0.001  # how soon the event loop gets the GIL back from a worker (see the module doc)


@dataclass(frozen=True)
class StartLimits:
    """How many starts run at once (reading Graph, choosing questions) and how long one may wait for its turn
    (settings: WATCHWORD_STARTS_AT_ONCE, WATCHWORD_START_WAIT_S)."""

    at_once: int = 16
    wait: timedelta = timedelta(seconds=5)


class StartBusy(Exception):
    """No turn to start within the wait (too many starts at once): nothing was read, nothing counted."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"no turn to start within {waited_s:.1f} s")
        self.waited_s = waited_s


@dataclass(frozen=True)
class Started:
    """A verification just begun: the session, its first step (a question, or already a decision), the sign-in
    risk it weighed, and its progress sealed for the dialog's state."""

    session: VerificationSession
    first: Step
    risk: RiskAssessment
    sealed: dict[str, Any]


class SessionKeeper:
    def __init__(self, records: VerificationRecords, sealer: Sealer, clock: Clock,
                 plan_memory_bytes: int = PLAN_MEMORY_BYTES, *, limits: StartLimits = StartLimits()) -> None:
        self._records = records
        self._sealer = sealer
        self._clock = clock
        self._plan_memory = plan_memory_bytes
        self._plan_bytes = 0  # held now, the sum of len() of _plans' values
        self._limits = limits
        self._turns = _Turns(limits.at_once)
        self._workers = ThreadPoolExecutor(START_WORKERS, thread_name_prefix="watchword-start")
        self._plans: OrderedDict[str, bytes] = OrderedDict()  # session id -> its plan, encoded (encode_plan)
        self._risks: OrderedDict[str, asyncio.Future[RiskAssessment]] = OrderedDict()  # session id -> final risk
        # session id -> its sign-in read's (hurry, drop) while the read waits for the tenant's reports budget
        self._reads: dict[str, tuple[Callable[[], None] | None, Callable[[], None] | None]] = {}

    def close(self) -> None:
        """Stop the worker threads (a start still choosing its questions finishes; none begins)."""
        self._workers.shutdown(wait=False, cancel_futures=True)

    @asynccontextmanager
    async def starting(self, *, ahead: bool = False) -> AsyncIterator[None]:
        """A turn to start a verification: wait for one of `at_once`, at most `wait`; else StartBusy. `ahead`: a
        start whose person was already found (the agent's search took a turn before): it is handed the next turn
        before any new search waiting, so that under load the work already done for a verification is not thrown
        away for one that has just begun, and fewer agents see "busy" after their search succeeded."""
        began = time.monotonic()
        if not await self._turns.take(self._limits.wait.total_seconds(), ahead=ahead):
            raise StartBusy(time.monotonic() - began)
        try:
            yield
        finally:
            self._turns.give_back()

    async def off_loop(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(*args, **kwargs)` in a worker thread: CPU-heavy steps of a start, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, lambda: work(*args, **kwargs))

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
                                             expires_at=expires_at, chat=_chat_of(context))
        if after_limit:  # locked out, yet let through for the strong factors (verify_dialog): the session knows
            attempts = max(attempts, policy.max_attempts_per_day)
        pending = loaded.sign_ins_later is not None
        org = replace(loaded.org, choice_key=self._sealer.choice_key(actor.tenant_id))
        first = await self.off_loop(session.start, loaded.context, org, policy, risk, attempts, available,
                                    risk_pending=pending)
        if pending and first.decision is None:
            # The sign-ins can take their whole deadline (the reports API allows 5 reads per 10 s per tenant, so a
            # burst of starts queues): meanwhile only what the risk is weighed on is held, not the person's data.
            waiting = replace(loaded, context=risk_inputs(loaded.context), org=OrgKnowledge(loaded.org.population))
            self._remember_risk(session.id, asyncio.ensure_future(self._weigh_and_keep(session.id, waiting, policy,
                                                                                        own)))
            self._reads[session.id] = (loaded.hurry_sign_ins, loaded.drop_sign_ins)
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
        encoded, sealed_plan = await self.off_loop(self._seal_plan, plan) if plan else (b"", None)
        await self._records.open_session(session_id=session.id, actor=actor, target_id=target_id,
                                         self_service=self_service, policy=policy, risk=risk,
                                         required_bits=required_bits, expires_at=expires_at,
                                         sealed_plan=sealed_plan)
        self._keep(session.id, encoded)
        return self.seal(context, session)[0]

    def _seal_plan(self, plan: tuple[Question, ...]) -> tuple[bytes, str]:
        encoded = encode_plan(plan)
        return encoded, self._sealer.encrypt(encoded)

    def seal(self, context: TurnContext, session: VerificationSession) -> tuple[dict[str, Any], dict[str, Any]]:
        """(sealed, snapshot): the session's progress sealed for the dialog's state, and its `to_dict()`.
        Remembered for this turn, so a later step of the same turn that opens it gets this session back."""
        snapshot = session.to_dict()
        sealed = self._sealer.seal(snapshot)
        context.turn_state[OPEN_SESSION] = (sealed, session, snapshot)
        if session.decision is not None:
            self._forget(session.id)  # its secrets die with it (the store drops its copy on close)
            self._give_up_read(session.id)
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
        """Give the session its sign-in risk when it has arrived (here, or kept in the store by the instance that
        read it); past RISK_DEADLINE after the start, the provisional "sign-ins unavailable" risk stands. Never
        waits: a session ready to decide without it stays awaiting it (`risk_settled` says when to look again)."""
        if session.decision is not None or not session.risk_pending:
            self._risks.pop(session.id, None)
            return
        future = self._risks.get(session.id)
        if future is not None and future.done():
            session.update_risk(None if future.cancelled() or future.exception() else future.result())
        elif future is None and (kept := await self._kept_risk(session.id)) is not None:
            session.update_risk(kept)  # another instance read the sign-ins
        elif self._clock() >= session.started_at + RISK_DEADLINE:
            session.update_risk(None)  # its budget is spent: the provisional rule decides
        if not session.risk_pending:
            self._risks.pop(session.id, None)
            self._reads.pop(session.id, None)

    def _give_up_read(self, session_id: str) -> None:
        """The session decided: a sign-in read of its still waiting for the reports budget is of no use any more
        (the slot goes to another verification's), nor is weighing its risk."""
        hurry_drop = self._reads.pop(session_id, None)
        future = self._risks.pop(session_id, None)
        if future is not None and not future.done():
            future.cancel()
            if hurry_drop is not None and hurry_drop[1] is not None:
                hurry_drop[1]()

    async def risk_settled(self, session_id: str, started_at: datetime) -> None:
        """Return when the session's sign-in risk is known (read here, or kept in the store by the instance that
        read it) or RISK_DEADLINE after its start has passed: the moment its decision can be taken."""
        deadline = started_at + RISK_DEADLINE
        future = self._risks.get(session_id)
        hurry = self._reads.get(session_id, (None, None))[0]
        if hurry is not None and future is not None and not future.done():
            hurry()  # a decision waits for it now: ahead of the reads no decision waits for yet
        if future is None:  # read by another instance (or not at all): it keeps the risk in the store
            left = (deadline - self._clock()).total_seconds()
            if left > 0:
                await self._poll_kept_risk(session_id, left + RISK_CLOCK_MARGIN_S)
            return
        # Its outcome (a risk, or a failure) is for _settle_risk to take. Looked at every second against the
        # session's clock, and a little past the deadline, so that the turn this wakes finds the deadline passed.
        while not future.done() and (left := (deadline - self._clock()).total_seconds()) > -RISK_CLOCK_MARGIN_S:
            await asyncio.wait({future}, timeout=min(left + RISK_CLOCK_MARGIN_S, 1.0))

    async def _weigh_and_keep(self, session_id: str, loaded: LoadedContext, policy: Policy,
                              own_resets: list[tuple[datetime, datetime]]) -> RiskAssessment:
        """The final risk, kept in the store too, for an instance that takes the deciding turn without this future
        (several instances, no sticky sessions)."""
        risk = await _final_risk(loaded, policy, own_resets)
        try:
            await self._records.keep_final_risk(session_id, risk)
        except Exception:  # this instance decides on it all the same; another would apply the provisional rule
            log.warning("could not keep the sign-in risk of session %s", session_id, exc_info=True)
        return risk

    async def _kept_risk(self, session_id: str) -> RiskAssessment | None:
        try:
            return await self._records.final_risk(session_id)
        except Exception:  # the store is failing: as if it had not arrived (the deadline's rule stands)
            log.warning("could not read the sign-in risk of session %s", session_id, exc_info=True)
            return None

    async def _poll_kept_risk(self, session_id: str, left_s: float) -> RiskAssessment | None:
        """The risk another instance keeps for the session, read every RISK_POLL_S for at most `left_s` seconds."""
        until = time.monotonic() + left_s
        while (wait := until - time.monotonic()) > 0:
            await asyncio.sleep(min(RISK_POLL_S, wait))
            if (risk := await self._kept_risk(session_id)) is not None:
                return risk
        return None

    def _remember_risk(self, session_id: str, future: asyncio.Future[RiskAssessment]) -> None:
        self._risks[session_id] = future
        while len(self._risks) > RISKS_KEPT:
            oldest, dropped = self._risks.popitem(last=False)
            dropped.cancel()
            self._reads.pop(oldest, None)

    async def _plan(self, session_id: str) -> tuple[Question, ...] | None:
        encoded = self._plans.get(session_id)
        if encoded is not None:
            self._plans.move_to_end(session_id)
            return _decoded(encoded)
        token = await self._records.sealed_plan(session_id)
        if token is None:
            return None
        encoded = self._sealer.decrypt(token)
        plan = _decoded(encoded)
        self._keep(session_id, encoded)
        return plan

    def _keep(self, session_id: str, encoded: bytes) -> None:
        """Hold the plan, forgetting the least recently used ones beyond the memory budget."""
        if not encoded:
            return
        self._forget(session_id)
        self._plans[session_id] = encoded
        self._plan_bytes += len(encoded)
        while self._plan_bytes > self._plan_memory and len(self._plans) > 1:
            self._plan_bytes -= len(self._plans.popitem(last=False)[1])

    def _forget(self, session_id: str) -> None:
        self._plan_bytes -= len(self._plans.pop(session_id, b""))

    @property
    def plan_bytes(self) -> int:
        """Bytes of plans held in memory now."""
        return self._plan_bytes

    @property
    def plans_held(self) -> int:
        """Plans held in memory now (open verifications this process answered recently)."""
        return len(self._plans)


def _decoded(encoded: bytes) -> tuple[Question, ...]:
    """The plan `encode_plan` wrote; a plan stored before it (a list of `Question.to_dict()`) still opens, so
    verifications in progress survive the upgrade."""
    try:
        if encoded.startswith(b"["):
            return tuple(Question.from_dict(q) for q in json.loads(encoded))
        return decode_plan(encoded)
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise SealError(f"the verification's plan cannot be read: {err}") from None


class _Turns:
    """At most `count` holders; a waiter gives up after its timeout. (A semaphore under asyncio.wait_for can be
    acquired just as the wait times out, and its turn is then lost; here a turn handed over is always taken.)
    Waiters `ahead` are handed turns before the others, each kind first come first served."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._ahead: deque[asyncio.Future[None]] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self, timeout_s: float, *, ahead: bool = False) -> bool:
        if self._free > 0 and not self._waiters and not self._ahead:
            self._free -= 1
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._ahead if ahead else self._waiters).append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), timeout_s)
        except TimeoutError:
            if turn.done():
                return True  # handed a turn just as the wait ran out: take it
            self._drop(turn)
            return False
        except asyncio.CancelledError:
            if turn.done():
                self.give_back()
            else:
                self._drop(turn)
            raise
        return True

    def _drop(self, turn: asyncio.Future[None]) -> None:
        turn.cancel()
        for queue in (self._ahead, self._waiters):
            if turn in queue:
                queue.remove(turn)

    def give_back(self) -> None:
        for queue in (self._ahead, self._waiters):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._free += 1


async def _final_risk(loaded: LoadedContext, policy: Policy,
                      own_resets: list[tuple[datetime, datetime]]) -> RiskAssessment:
    """The risk weighed on the sign-ins once they arrive (or on why they could not be read); a password change
    inside one of Watchword's own resets of the person is not counted against them."""
    complete = await loaded.with_sign_ins()
    return assess_risk(complete.context, policy, own_resets=own_resets)


def _chat_of(context: TurnContext) -> tuple[str, str] | None:
    """(channel id, conversation id) of the turn's chat, when it has one."""
    activity = context.activity
    conversation = activity.conversation if activity is not None else None
    if activity is None or conversation is None or not conversation.id:
        return None
    return str(activity.channel_id or ""), str(conversation.id)
