"""SessionKeeper: the plan sealed once into the records, kept parsed in memory, read back when evicted or gone."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.sealing import FernetSealer
from dialogs.ports import Actor, SealError
from dialogs.session_keeper import SessionKeeper, StartBusy, StartLimits
from graph.directory import SIGN_INS_PENDING, LoadedContext, SignInRead
from tests.dialogs.fakes import TENANT, alan_context
from tests.verification import builders as b
from verification import Policy, VerificationSession, assess_risk
from verification import session as session_module
from verification.context import OrgKnowledge, SignIn, Source, UserContext

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
    return SimpleNamespace(turn_state={}, activity=None)  # all SessionKeeper touches of a TurnContext


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
                           plan_memory_bytes=1)
    first, sealed = await started(keeper)
    await started(keeper)  # evicts the first session's plan
    opened, _ = await keeper.open(turn(), sealed)
    assert records.reads == 1 and opened.check().prompt == first.check().prompt


async def test_a_session_whose_plan_is_gone_comes_back_asking_nothing() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           plan_memory_bytes=1)
    first, sealed = await started(keeper)
    await started(keeper)
    records.plans[first.id] = None  # the session ended elsewhere: the store dropped its plan
    opened, _ = await keeper.open(turn(), sealed)
    assert opened.asking is None and opened.decision is None


async def test_a_plan_sealed_with_another_key_cannot_be_opened() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           plan_memory_bytes=1)
    first, sealed = await started(keeper)
    await started(keeper)
    records.plans[first.id] = FernetSealer(FernetSealer.generate_key()).encrypt(b"[]")
    with pytest.raises(SealError):
        await keeper.open(turn(), sealed)


async def test_plans_held_in_memory_are_bounded_by_bytes_and_the_evicted_are_read_back() -> None:
    records = PlanRecords()
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW)  # type: ignore[arg-type]
    first, sealed = await started(keeper)
    one_plan = keeper.plan_bytes
    assert 0 < one_plan < 64_000
    budget = 3 * one_plan + one_plan // 2  # room for three plans of this size
    keeper = SessionKeeper(records, FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           plan_memory_bytes=budget)
    first, sealed = await started(keeper)
    for _ in range(5):
        await started(keeper)
        assert keeper.plan_bytes <= budget
    assert records.reads == 0
    opened, _ = await keeper.open(turn(), sealed)  # the first was evicted long ago
    assert records.reads == 1 and opened.check().prompt == first.check().prompt
    assert keeper.plan_bytes <= budget


async def test_a_decided_session_gives_its_plans_memory_back() -> None:
    keeper = SessionKeeper(PlanRecords(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW)  # type: ignore[arg-type]
    session, sealed = await started(keeper)
    opened, _ = await keeper.open(turn(), sealed)
    opened.cancel()
    keeper.seal(turn(), opened)
    assert keeper.plan_bytes == 0


async def test_question_generation_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a start chooses its questions, the event loop still runs other conversations' work: here a trivial
    task that the generation itself waits for (on the loop, generation would wait in vain)."""
    loop_ran = threading.Event()
    seen: list[bool] = []
    real = session_module.generate_questions

    def generation_that_waits_for_the_loop(*args: Any, **kwargs: Any) -> Any:
        seen.append(loop_ran.wait(timeout=30))  # a safety net only: set at once when the loop is free
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "generate_questions", generation_that_waits_for_the_loop)
    context = alan_context(b.NOW)
    loaded = LoadedContext(context, b.org(), 1, 1, 0.0)

    async def trivial() -> None:
        loop_ran.set()

    class Records(PlanRecords):
        async def own_resets(self, *_: Any, **__: Any) -> list[Any]:
            return []

        async def admit(self, **_: Any) -> int:
            return 0

    keeper = SessionKeeper(Records(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW)  # type: ignore[arg-type]
    begin = asyncio.create_task(keeper.begin(turn(), loaded, Policy(), actor=AGENT, target_id=context.profile.id,
                                             self_service=False))
    await asyncio.sleep(0)  # the start runs up to its first wait: on the loop, that would be the whole generation
    await asyncio.create_task(trivial())
    started_ = await begin
    keeper.close()
    assert seen == [True] and started_.first.prompt is not None


async def test_a_start_beyond_the_limit_waits_its_turn_then_is_told_busy() -> None:
    keeper = SessionKeeper(PlanRecords(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           limits=StartLimits(at_once=1, wait=timedelta(milliseconds=50)))
    order: list[str] = []
    async with keeper.starting():
        with pytest.raises(StartBusy):
            async with keeper.starting():
                order.append("second ran")
    async with keeper.starting():  # the turn came back
        order.append("third ran")
    assert order == ["third ran"]


async def test_a_waiting_start_gets_the_turn_handed_back_by_the_one_before() -> None:
    keeper = SessionKeeper(PlanRecords(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           limits=StartLimits(at_once=1, wait=timedelta(seconds=30)))
    order: list[str] = []
    first_in = asyncio.Event()

    async def first() -> None:
        async with keeper.starting():
            first_in.set()
            order.append("first")
            await asyncio.sleep(0)

    async def second() -> None:
        await first_in.wait()
        async with keeper.starting():
            order.append("second")

    await asyncio.gather(first(), second())
    assert order == ["first", "second"]


async def test_a_verification_waiting_for_its_sign_ins_holds_none_of_the_persons_data() -> None:
    """The sign-in logs can take their whole deadline (a burst of starts queues for the reports API): meanwhile the
    open verification holds what its risk is weighed on, not the person's mail, meetings and colleagues, nor the
    organisation's data; the risk still arrives when the logs do."""
    arrived: asyncio.Future[SignInRead] = asyncio.get_running_loop().create_future()
    context = replace(alan_context(b.NOW), sign_ins=(), unavailable={Source.SIGN_INS.value: SIGN_INS_PENDING})
    loaded = LoadedContext(context, b.org(), 1, 1, 0.0, sign_ins_later=lambda: asyncio.shield(arrived))

    class Records(PlanRecords):
        async def own_resets(self, *_: Any, **__: Any) -> list[Any]:
            return []

        async def admit(self, **_: Any) -> int:
            return 0

        async def keep_final_risk(self, *_: Any) -> None:
            return None

    keeper = SessionKeeper(Records(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW)  # type: ignore[arg-type]
    started_ = await keeper.begin(turn(), loaded, Policy(), actor=AGENT, target_id=context.profile.id,
                                  self_service=False)
    assert started_.first.prompt is not None and started_.session.risk_pending
    del context, loaded
    await asyncio.sleep(0)
    gc.collect()
    held = [o for o in gc.get_objects() if isinstance(o, UserContext | OrgKnowledge)]
    assert all(not (o.mail or o.meetings or o.peers) for o in held if isinstance(o, UserContext))
    assert all(not (o.department_members or o.others or o.groups) for o in held if isinstance(o, OrgKnowledge))
    risky = tuple(SignIn(b.NOW - timedelta(minutes=m), "203.0.113.9", "Lagos", "NG", error_code=50126)
                  for m in range(1, 7))
    arrived.set_result(SignInRead(risky + b.sign_ins()))
    await asyncio.sleep(0.05)
    session, _ = await keeper.open(turn(), keeper.seal(turn(), started_.session)[0])
    keeper.close()
    assert not session.risk_pending
    assert session.check().bits_required > started_.first.bits_required  # the failures' burst asks for more


async def test_a_start_whose_person_was_found_is_handed_the_next_turn_before_new_searches() -> None:
    keeper = SessionKeeper(PlanRecords(), FernetSealer(FernetSealer.generate_key()), lambda: b.NOW,  # type: ignore[arg-type]
                           limits=StartLimits(at_once=1, wait=timedelta(seconds=30)))
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with keeper.starting():
            await release.wait()

    async def waiter(name: str, ahead: bool) -> None:
        async with keeper.starting(ahead=ahead):
            order.append(name)

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    searches = [asyncio.create_task(waiter(f"search {i}", False)) for i in range(2)]
    await asyncio.sleep(0)
    start = asyncio.create_task(waiter("start", True))  # came last, its search already done
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, start, *searches)
    keeper.close()
    assert order == ["start", "search 0", "search 1"]
