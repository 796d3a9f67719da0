"""What the person and their manager answered in their own Teams, applied to the verification session."""

from __future__ import annotations

from dialogs.ports import Messenger, VerificationRecords
from verification import Step, VerificationSession
from verification.factors import Factor


async def take_factor_answers(messenger: Messenger, records: VerificationRecords,
                              session: VerificationSession) -> Step:
    """Apply the person's "not me" and their manager's answer, given since the last turn; the current step (which
    may now be decided). Looked for only once someone was asked, which spares a store read per turn otherwise."""
    current = session.check()
    if current.decision is not None or not session.factors_asked:
        return current
    answers = await messenger.factor_answers(session.id)
    before = len(session.transcript)
    if answers.denied:
        current = session.deny()
    elif answers.manager is not None and Factor.MANAGER in current.awaiting:
        current = session.attest(answers.manager)
    if len(session.transcript) != before:
        earned = current.bits_earned
        for i, entry in enumerate(session.transcript[before:], before):
            await records.record_answer(session.id, entry, earned, index=i)
    return current
