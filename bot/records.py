"""`StoreRecords`: the dialogs' `VerificationRecords` over store/ (sessions, attempts, lockouts, audit,
protected users, the tenant's policy).

Nothing secret goes in: the transcript entries carry kind, source, bits and result; audit details carry
ids, counts and outcomes (store/ refuses secret-looking keys anyway, so a bug fails loudly).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dialogs.ports import Actor, AuditNote, Protection, StartChecks
from observability.metrics import Metrics
from store import AuditEvent, LockoutRule, ProtectedUser, SessionClosedError, Store, StoredPolicy
from verification import Decision, Outcome, Policy, RiskAssessment, TranscriptEntry
from verification.clock import Clock

log = logging.getLogger(__name__)


async def tenant_policy(store: Store, tenant_id: str) -> tuple[Policy, bool]:
    """The tenant's policy and whether self-service is on: the one place that reads them.
    (The admin console saves them; a tenant that never saved one gets Policy()'s defaults, self-service off.)"""
    return _policy_of(await store.policies.get_stored(tenant_id))


def _policy_of(stored: StoredPolicy | None) -> tuple[Policy, bool]:
    if stored is None:
        return Policy(), False
    return stored.policy, bool(stored.access.self_service)


def _protection(synced: bool, user: ProtectedUser | None) -> tuple[Protection, str]:
    """Whether the user may be verified, and a plain reason when not, as the tenant's directory sync stored them."""
    # Until the tenant's first directory sync stores any protected user, everyone is protected: refusing
    # everybody would leave the helpdesk with no check at all, which is worse than checking everyone.
    if not synced:
        return Protection.PROTECTED, ""
    if user is None or not user.in_scope:
        return Protection.NOT_PROTECTED, "outside the scope your admin chose"
    reasons = set(user.not_resettable_reasons)
    if reasons & {"privileged_admin", "role_assignable_group"}:
        return Protection.PRIVILEGED, "privileged administrator"
    if "federated" in reasons:
        return Protection.FEDERATED, "password managed on-premises"
    if "guest" in reasons:
        return Protection.GUEST, "a guest from another organisation"
    if "account_disabled" in reasons:
        return Protection.DISABLED, "a disabled account"
    return Protection.PROTECTED, ""


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    """The knobs that decide a session, for the session row (named so store/'s secret guard lets them by)."""
    return {"required_bits": policy.required_bits, "max_questions": policy.max_questions,
            "max_wrong": policy.max_wrong, "session_timeout_s": policy.session_timeout.total_seconds(),
            "max_attempts_per_day": policy.max_attempts_per_day,
            "lockout_duration_s": policy.lockout_duration.total_seconds(),
            "code_required_bits": policy.code_required_bits,
            "manager_required_bits": policy.manager_required_bits,
            "block_on_high_risk": policy.block_on_high_risk, "allow_multiple_choice": policy.allow_multiple_choice}


def actor_name(actor: Actor) -> str:
    return f"teams:{actor.user_id}"


class StoreRecords:
    def __init__(self, store: Store, clock: Clock, metrics: Metrics | None = None) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics or Metrics()

    async def self_service_enabled(self, tenant_id: str) -> bool:
        return (await tenant_policy(self._store, tenant_id))[1]

    async def start_checks(self, tenant_id: str, user_id: str) -> StartChecks:
        # One unit of work for the three reads: each hop to the store's thread (and each transaction) costs more
        # than its one small SELECT, and every start (an agent's or self-service) and every help card makes them.
        steps = (self._store.policies.reading_stored(tenant_id),
                 self._store.protected_users.reading_lookup(tenant_id, user_id),
                 self._store.lockouts.reading_active(tenant_id, user_id))
        stored, (synced, user), lockout = await self._store.units.read(lambda conn: [step(conn) for step in steps])
        return StartChecks(*_policy_of(stored), *_protection(synced, user),
                           lockout.locked_until if lockout is not None else None)

    async def admit(self, *, session_id: str, actor: Actor, target_id: str, self_service: bool, policy: Policy,
                    risk: RiskAssessment, expires_at: datetime, chat: tuple[str, str] | None = None) -> int:
        admission = await self._store.sessions.admit(
            tenant_id=actor.tenant_id, target_user_id=target_id, agent_id=None if self_service else actor.user_id,
            required_bits=math.ceil(policy.required_bits + risk.extra_bits_required), expires_at=expires_at,
            risk_summary=risk.to_dict(), policy_snapshot=policy_snapshot(policy), session_id=session_id, chat=chat)
        return admission.counted_before

    async def open_session(self, *, session_id: str, actor: Actor, target_id: str, self_service: bool,
                           policy: Policy, risk: RiskAssessment, required_bits: float, expires_at: datetime,
                           sealed_plan: str | None = None) -> None:
        started = AuditEvent(action="verification.started", outcome="in_progress", actor=actor_name(actor),
                             subject=target_id, tenant_id=actor.tenant_id,
                             details={"session_id": session_id, "self_service": self_service,
                                      "risk_level": risk.level.value, "required_bits": required_bits})
        self._metrics.verification_started(self_service=self_service)
        if sealed_plan is None:  # decided at once: the decision closes it next
            await self._store.audit.append_event(started)
            return
        await self._store.sessions.attach_plan(session_id, sealed_plan, required_bits=math.ceil(required_bits),
                                               audit=started)

    async def sealed_plan(self, session_id: str) -> str | None:
        return await self._store.sessions.sealed_plan(session_id)

    async def stored_outcome(self, session_id: str) -> Outcome | None:
        try:
            session = await self._store.sessions.get(session_id)
        except ValueError:  # not a session id at all
            return None
        return session.outcome if session is not None else None

    async def keep_final_risk(self, session_id: str, risk: RiskAssessment) -> None:
        await self._store.sessions.keep_final_risk(session_id, risk.to_dict())

    async def final_risk(self, session_id: str) -> RiskAssessment | None:
        kept = await self._store.sessions.final_risk(session_id)
        return RiskAssessment.from_dict(dict(kept)) if kept is not None else None

    async def own_resets(self, tenant_id: str, user_id: str, *, since: datetime) -> list[tuple[datetime, datetime]]:
        return await self._store.sessions.own_resets(tenant_id, user_id, since=since)

    async def record_answer(self, session_id: str, entry: TranscriptEntry, earned_bits: float,
                            audit: AuditNote | None = None, *, index: int | None = None) -> bool:
        event = None
        if audit is not None:
            event = AuditEvent(action=audit.action, outcome=audit.outcome, actor=actor_name(audit.actor),
                               subject=audit.subject, tenant_id=audit.actor.tenant_id, details=audit.details)
        try:
            await self._store.sessions.add_entry(session_id, entry, earned_bits=earned_bits, audit=event, index=index)
        except SessionClosedError:
            if event is not None:
                await self._store.audit.append_event(event)
            return False
        return True

    async def close_session(self, session_id: str, decision: Decision, *, actor: Actor, target_id: str,
                            policy: Policy) -> bool:
        details = {"session_id": session_id, "questions": decision.questions_asked,
                   "bits_earned": decision.bits_earned, "bits_required": decision.bits_required,
                   "risk_level": decision.risk.level.value, "flags": list(decision.flags)}
        decided = AuditEvent(action="verification.decided", outcome=decision.outcome.value, actor=actor_name(actor),
                             subject=target_id, tenant_id=actor.tenant_id, details=details)
        lockout = LockoutRule(max_failed=policy.max_attempts_per_day, duration=policy.lockout_duration,
                              actor=actor_name(actor))
        closed = True
        try:  # the outcome, its audit row and a lockout it brings about are written together
            await self._store.sessions.finish(session_id, decision.outcome, earned_bits=decision.bits_earned,
                                              audit=decided, lockout=lockout)
        except SessionClosedError:
            closed = False  # already ended elsewhere (the person said "not me", or the expiry sweep)
            await self._store.audit.append_event(decided)
            await self._store.lockouts.apply(actor.tenant_id, target_id, lockout, session_id=session_id)
        if closed:
            self._metrics.verification_ended(decision.outcome.value)
        log.info("verification %s of user %s in tenant %s decided: %s after %d questions", session_id, target_id,
                 actor.tenant_id, decision.outcome.value, decision.questions_asked)
        return closed

    async def audit(self, action: str, outcome: str, *, actor: Actor, subject: str | None,
                    details: Mapping[str, Any] | None = None) -> None:
        await self._store.audit.append(action=action, outcome=outcome, actor=actor_name(actor), subject=subject,
                                       tenant_id=actor.tenant_id, details=details)
