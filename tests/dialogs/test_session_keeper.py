"""SessionKeeper: the plan sealed once into the records, kept parsed in memory, read back when evicted or gone."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from bot.sealing import FernetSealer
from dialogs.ports import Actor, SealError
from dialogs.session_keeper import SessionKeeper
from tests.dialogs.fakes import TENANT, alan_context
from tests.verification import builders as b
from verification import Policy, VerificationSession, assess_risk

AGENT = Actor(TENANT, "aaaaaaaa-0000-4000-8000-000000000005", "Margaret", personal_chat=True)


class PlanRecords:
    """Just the records SessionKeeper uses: the sealed plan per session, and how often it was read."""

    def __init__(self) -> None:
        self.plans: dict[str, str | None] = {}
        self.reads = 0

    async def open_session(self, *, session_id: str, sealed_plan: str | None, **_: Any) -> None:
        self.plans[session_id] = sealed_plan

    async def sealed_plan(self, session_id: str) -> str | None:
        self.reads += 1
        return self.plans.get(session_id)


def turn() -> Any:
    return SimpleNamespace(turn_state={})  # all SessionKeeper touches of a TurnContext


async def started(keeper: SessionKeeper) -> tuple[VerificationSession, dict[str, Any]]:
    context = alan_context(b.NOW)
    session = VerificationSession(lambda: b.NOW)
    first = session.start(context, b.org(), Policy(), assess_risk(context, Policy()), 0)
    sealed = await keeper.start(turn(), session, actor=AGENT, target_id=context.profile.id, self_service=False,
                                policy=Policy(), risk=assess_risk(context, Policy()),
                                required_bits=first.bits_required, expires_at=datetime.max)
    return session, sealed


async def test_the_plan_is_sealed_once_and_kept_in_memory() -> None:
    records, sealer = PlanRecords(), FernetSealer(FernetSealer.generate_key())
    keeper = SessionKeeper(records, sealer, lambda: b.NOW)  # type: ignore[arg-type]
    session, sealed = await started(keeper)
    token = records.plans[session.id]
    assert token is not None and b.TIM.display_name not in token + json.dumps(sealed)
    opened, _ = await keeper.open(turn(), sealed)
    assert records.reads == 0 and opened.check().prompt == session.check().prompt


async def test_an_evicted_plan_is_read_back_from_the_records() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           capacity=1)
    first, sealed = await started(keeper)
    await started(keeper)  # evicts the first session's plan
    opened, _ = await keeper.open(turn(), sealed)
    assert records.reads == 1 and opened.check().prompt == first.check().prompt


async def test_a_session_whose_plan_is_gone_comes_back_asking_nothing() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           capacity=1)
    first, sealed = await started(keeper)
    await started(keeper)
    records.plans[first.id] = None  # the session ended elsewhere: the store dropped its plan
    opened, _ = await keeper.open(turn(), sealed)
    assert opened.asking is None and opened.decision is None


async def test_a_plan_sealed_with_another_key_cannot_be_opened() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           capacity=1)
    first, sealed = await started(keeper)
    await started(keeper)
    records.plans[first.id] = FernetSealer(FernetSealer.generate_key()).encrypt(b"[]")
    with pytest.raises(SealError):
        await keeper.open(turn(), sealed)
