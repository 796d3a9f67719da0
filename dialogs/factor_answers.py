"""What the person and their manager answered in their own Teams, applied to the verification session."""

from __future__ import annotations

from microsoft_agents.hosting.core import TurnContext

from dialogs.ports import Messenger, VerificationRecords
from verification import Step, VerificationSession
from verification.factors import Factor

TAKEN = "watchword.factor_answers_taken"  # turn_state: the sessions whose factors' answers this turn took


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
    if answers.denied:
        current = session.deny()
    elif answers.manager is not None and Factor.MANAGER in current.awaiting:
        current = session.attest(answers.manager)
    if len(session.transcript) != before:
        earned = current.bits_earned
        for i, entry in enumerate(session.transcript[before:], before):
            await records.record_answer(session.id, entry, earned, index=i)
    return current
