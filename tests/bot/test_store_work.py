"""What a verification's start and an answer cost the store, in transactions and statements (issue #11).

Each transaction is a hop to the store's thread (or a pooled connection) and back, and each statement SQLAlchemy's
and the driver's work: a start ran ~20 transactions, and the SQLite thread's CPU was ~30% of the start turn's. These
pin the counts, so a read added on the start's path is a decision, not a drift. Counted with store/work_count.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot import turn_state
from store import UserSnapshot
from store.work_count import StoreWork, counting
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Chat, Teams, open_teams, truthful_answer
from tests.store.support import FakeClock, StoreTarget

# A start whose search finds one person (no picker turn), in a tenant whose directory sync stored them: the turn's
# claim with its state read ahead, the search's audit row and one more, the policy with the person's protection and
# lockout, whether they can get a code, Watchword's own resets of them, the admission, the plan with its audit row,
# the state saved with the turn's end.
START_TRANSACTIONS, START_STATEMENTS = 9, 30
# The same start when the person talked to Watchword before, so it shows them a code in their own Teams, counted
# until that send ends too: the start's own (the person's reference, read to know the code can be asked, is not read
# again by the send the turn starts), the session's out-of-band record opened and the code card noted on it, and the
# code's audit row with whether the session is still open.
CODE_START_TRANSACTIONS, CODE_START_STATEMENTS = START_TRANSACTIONS + 4, START_STATEMENTS + 7
# An answer: the turn's claim with its state read ahead, the answer with its audit row, the state saved with the
# turn's end.
ANSWER_TRANSACTIONS, ANSWER_STATEMENTS = 3, 12
# The answer that decides, when nobody was asked in their own Teams: an answer's, and the session closed with its
# audit row (no code card to close, no "not me" to look for).
DECIDING_TRANSACTIONS, DECIDING_STATEMENTS = ANSWER_TRANSACTIONS + 1, ANSWER_STATEMENTS + 6


@pytest.fixture
async def teams(store_target: StoreTarget, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Teams]:
    # A turn slower than RENEW_EVERY (a loaded test machine) renews its leases: not what is counted here.
    monkeypatch.setattr(turn_state, "RENEW_EVERY", timedelta(hours=1))
    async with open_teams(store_target, FakeClock()) as opened:
        synced = opened.store.protected_users  # as a tenant has it once its first directory sync ran
        await synced.begin_sync(TENANT)
        await synced.apply_sync_page(TENANT, upserts=[UserSnapshot(ALAN.id, "alan@contoso.test", ALAN.display_name)],
                                     delta_link="https://graph/delta?d=1")
        yield opened


async def started(teams: Teams, first_asks: str = "Question 1") -> tuple[Chat, StoreWork]:
    agent = teams.chat(MARGARET)
    await agent.say("help")  # the chat's first turn (its reference kept) is not the start's cost
    with counting(teams.store) as work:
        await agent.say("verify alan turing")
        await teams.agent.messenger.settle()
    assert first_asks in agent.text()
    return agent, work


async def test_a_verification_start_costs_the_store_a_fixed_number_of_transactions(teams: Teams) -> None:
    _, work = await started(teams)
    assert (work.transactions, len(work.statements)) == (START_TRANSACTIONS, START_STATEMENTS), work.summary()


async def test_a_start_that_shows_the_person_a_code_costs_the_store_a_fixed_number_of_transactions(
        teams: Teams) -> None:
    await teams.chat(ALAN).say("hi")  # Alan has talked to Watchword before, so it can reach him
    _, work = await started(teams, first_asks="6-digit code in their own Teams")
    assert (work.transactions, len(work.statements)) == (CODE_START_TRANSACTIONS, CODE_START_STATEMENTS), \
        work.summary()


async def test_an_answer_costs_the_store_a_fixed_number_of_transactions(teams: Teams) -> None:
    agent, _ = await started(teams)
    answer = await truthful_answer(teams, agent, ALAN)
    with counting(teams.store) as work:
        await agent.say(answer)
        await teams.agent.messenger.settle()
    assert "Question 2" in agent.text()
    assert (work.transactions, len(work.statements)) == (ANSWER_TRANSACTIONS, ANSWER_STATEMENTS), work.summary()


async def test_the_answer_that_decides_costs_the_store_a_fixed_number_of_transactions(teams: Teams) -> None:
    agent, _ = await started(teams)
    for _ in range(5):
        answer = await truthful_answer(teams, agent, ALAN)
        with counting(teams.store) as work:
            await agent.say(answer)
            await teams.agent.messenger.settle()
        if "Verified" in agent.text():
            break
    assert "[Reset password]" in agent.text()
    assert (work.transactions, len(work.statements)) == (DECIDING_TRANSACTIONS, DECIDING_STATEMENTS), work.summary()
