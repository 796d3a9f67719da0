"""What the person and their manager answered in their own Teams, applied to the verification session."""

from __future__ import annotations

from datetime import timedelta

from microsoft_agents.hosting.core import TurnContext

from dialogs.ports import Messenger, VerificationRecords
from verification import Step, VerificationSession
from verification.factors import Factor

TAKEN = "watchword.factor_answers_taken"  # turn_state: the sessions whose factors' answers this turn took
# A manager's card whose send has said nothing for this long died with the process sending it (killed between the
# turn that asked and the send's outcome): out, as if never sent, so "Waiting for <manager>" moves on. Far longer
# than any send takes: installing Watchword through Graph and each send to Teams are capped at 15 s, each done twice
# at most (a kept chat that is gone is installed again), about a minute with the store's writes.
SEND_DEADLINE = timedelta(minutes=2)


async def take_factor_answers(context: TurnContext, messenger: Messenger, records: VerificationRecords,
                              session: VerificationSession) -> Step:
    """Apply how the sends that asked them ended (a code or a manager's card that could not be delivered is out,
    as if never asked), the person's "not me" and their manager's answer, given since the last turn; the current
    step (which may now be decided). Looked for only once someone was asked, which spares a store read per turn
    otherwise, and once a turn: an answer turn passes here up to three times (the answer, the next question, the
    proof dialog's next step), milliseconds apart; an answer that arrives meanwhile is taken by the next turn."""
    current = session.check()
    if current.decision is not None or not session.factors_asked:
        return current
    taken: set[str] = context.turn_state.setdefault(TAKEN, set())
    if session.id in taken:
        return current
    taken.add(session.id)
    answers = await messenger.factor_answers(session.id)
    before = len(session.transcript)
    for factor in sorted((answers.delivered | answers.undelivered) & current.awaiting):  # asked, not yet answered
        current = session.delivery(factor, factor in answers.delivered)
    # Only the manager's: the code card does not wait for its send (the agent types the code or says there is none),
    # and a right code read out after a kill mid-send proves it was shown. A manager who answered got their card.
    if answers.manager is None and Factor.MANAGER in session.sends_overdue(SEND_DEADLINE) & current.awaiting:
        current = session.delivery(Factor.MANAGER, False)
    if answers.denied:
        current = session.deny()
    elif answers.manager is not None and Factor.MANAGER in current.awaiting:
        current = session.attest(answers.manager)
    if len(session.transcript) != before:
        earned = current.bits_earned
        for i, entry in enumerate(session.transcript[before:], before):
            await records.record_answer(session.id, entry, earned, index=i)
    return current
