"""ResetPasswordDialog: confirm, reset, show the temporary password once, then remove it from the chat.

Only after a verified session, only in a 1:1 chat with the bot, and written ahead (verification/reset.py): the
`ResetLedger` records the intent on the session's row before Graph is asked (a compare-and-set, so a second
click, a replayed turn or another instance claims nothing) and the outcome after. Outcomes are typed, never
read from an error's wording:
- done: the password card is sent (retried a few times) and the person told; a card that never arrives turns
  the outcome into unknown for the agent;
- failed (nothing changed) or unknown (the password may have changed; timed out, connection dropped, card
  undeliverable): the agent is told which, and asked whether to reset again, for a new password, while the
  verification's window lasts;
- a claim left by a killed turn blocks only until it expires (CLAIM_EXPIRY), or, once its process's heartbeat
  says it is dead, until DEAD_OWNER_TAKEOVER after its fence; then the next click may reset;
- fenced: just before the PATCH the claim is proved this turn's own (compare-and-set) and the PATCH is sent within
  FENCE_GRACE or not at all; before the password card, the attempt is checked to be still the latest; and its
  outcome is recorded only on the attempt it names. So a turn whose process stalled long enough to be taken for dead
  neither resets a second time after a take-over nor shows a password a later attempt replaced (if the take-over
  comes between the check and the card, the card is taken back and the agent told).
The password is sent on a card and never kept: not in dialog state, logs, audit or store. "I've passed it
on" replaces the card (update_activity) with one that has no password; so does cancelling the dialog.

Options: {"session_id": str, "actor": Actor.to_dict(), "target": {"id", "name", ...}} (whose password is reset
comes from the store's record of the verified session, never from these options).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import (
    ComponentDialog,
    DialogInstance,
    DialogReason,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)

from dialogs.card_prompt import REPLACEMENT_CARD, CardPrompt, prompt_options, waterfall_frames
from dialogs.ports import Actor, CardRenderer, Messenger, Notice, ResetLedger, VerificationRecords
from dialogs.times import clock_time, zone_of
from dialogs.wording import GROUP_CHAT_STEP
from graph.directory import Directory, DirectoryError, ResetOutcomeUnknown, ResetRefused, TemporaryPassword
from verification.clock import Clock
from verification.reset import FENCE_GRACE, ResetClaim, ResetClaimLost, ResetClaimResult, ResetOutcome, Settled

log = logging.getLogger(__name__)

# Pauses between tries of the password card (the channel may refuse one with a 5xx); then it counts as undelivered.
CARD_RETRY_DELAYS = (0.5, 2.0)
AGAIN = "Choose Yes, reset it to set a new password, or Cancel."
# turn_state: this turn changed an account's password, so whatever fails after must not say "nothing happened".
ACCOUNT_CHANGED = "watchword.account_changed"
UNKNOWN_LINES = ("The password may have been changed, and nobody has the new one.",
                 "Reset again to set a new one and see it.")
TAKEN_OVER = "Another reset took over"
TAKEN_OVER_LINE = ("This reset stalled and a later one of this password took over from it: that one's result is the "
                   "one that counts.")


def _told_of_request(notice: Notice, name: str) -> str:
    """The agent's line on whether the person knows a reset was requested (its outcome unknown)."""
    if notice is Notice.NOT_REACHED:
        return f"I couldn't tell {name} in Teams that a reset was requested: tell them another way."
    return f"{name} was told in Teams that a reset was requested and may have changed their password."


class ResetPasswordDialog(ComponentDialog):
    def __init__(self, directory: Directory, records: VerificationRecords, messenger: Messenger,
                 ledger: ResetLedger, cards: CardRenderer, clock: Clock) -> None:
        super().__init__(ResetPasswordDialog.__name__)
        self._directory = directory
        self._records = records
        self._messenger = messenger
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self.add_dialog(WaterfallDialog(f"{ResetPasswordDialog.__name__}.steps", [
            self.confirm_step, self.reset_step, self.redact_step]))
        self.add_dialog(CardPrompt())
        self.initial_dialog_id = f"{ResetPasswordDialog.__name__}.steps"

    async def confirm_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        target = step.options["target"]
        ref = uuid.uuid4().hex[:12]
        card = self._cards.render("reset_confirm", person_name=target["name"], data={"ref": ref})
        return await step.prompt(CardPrompt.__name__, prompt_options(
            self._cards.activity(card, f"Reset the password of {target['name']}?"),
            "Choose Yes, reset it or Cancel on the card.", verbs=["reset_confirm", "reset_cancel"], ref=ref,
            words={"cancel": "reset_cancel", "yes": "reset_confirm", "no": "reset_cancel"}))

    async def reset_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        target: dict[str, str] = step.options["target"]
        session_id: str = step.options["session_id"]
        if step.result["verb"] != "reset_confirm":
            self._replace(step.context, "Reset cancelled.")
            await self._records.audit("password_reset", "cancelled", actor=actor, subject=target["id"],
                                      details={"session_id": session_id})
            if step.options.get("before") == ResetOutcome.UNKNOWN.value:  # an earlier attempt may have changed it
                return await self._end(step, "No new reset", *UNKNOWN_LINES[:1],
                                       "If the caller cannot sign in, verify them again and reset.")
            return await self._end(step, "No reset", f"Nothing was changed for {target['name']}.")
        self._replace(step.context, "Resetting…")
        if not actor.personal_chat:
            return await self._end(step, "Not in this chat", GROUP_CHAT_STEP)
        claim = await self._ledger.claim(session_id, actor=actor)
        if claim.claim is not ResetClaim.CLAIMED or claim.target_id is None:
            return await self._refused(step, claim, target["name"])
        return await self._reset(step, actor, claim, target["name"])

    async def _reset(self, step: WaterfallStepContext, actor: Actor, claim: ResetClaimResult,
                     name: str) -> DialogTurnResult:
        """The claimed attempt: Graph, its outcome recorded, then the password card and the person's notice."""
        session_id, target_id = step.options["session_id"], str(claim.target_id)

        async def settle(outcome: ResetOutcome, audit: str, **details: Any) -> Settled:
            return await self._ledger.settle(session_id, claim.attempt, outcome, actor=actor, target_id=target_id,
                                             audit_outcome=audit, details=details,
                                             blocked=audit == "refused")

        loop = asyncio.get_running_loop()

        async def fence() -> None:  # right before the PATCH: the claim still ours, and the PATCH sent promptly
            started = loop.time()
            try:
                ours = await self._ledger.fence(session_id, claim.attempt)
            except Exception:  # the database did not answer: the claim cannot be proved, so no PATCH
                log.warning("could not prove reset attempt %d of session %s before the PATCH", claim.attempt,
                            session_id, exc_info=True)
                ours = False
            if not ours or loop.time() - started > FENCE_GRACE.total_seconds():
                raise ResetClaimLost()

        try:
            password = await self._directory.reset_password(actor.tenant_id, target_id, before_patch=fence)
        except ResetClaimLost:  # nothing was sent to Graph
            if await settle(ResetOutcome.FAILED, "failed", reason="claim_lost") is Settled.SUPERSEDED:
                return await self._end(step, TAKEN_OVER, TAKEN_OVER_LINE, "This one changed nothing.")
            return await self._again(step, "The reset did not go through", ResetOutcome.FAILED,
                                     "Watchword could not start it in time.", "Nothing was changed.")
        except ResetRefused as err:
            await settle(ResetOutcome.FAILED, "refused", reason=err.reason.value)
            return await self._end(step, "Microsoft 365 refused the reset", str(err))
        except ResetOutcomeUnknown as err:
            step.context.turn_state[ACCOUNT_CHANGED] = True  # maybe: the password may have changed
            await settle(ResetOutcome.UNKNOWN, "unknown", cause=err.cause.value)
            # The person is told too: if the reset went through, their password has stopped working.
            notice = await self._notify(step.context, actor, target_id, self._clock(), session_id,
                                        ResetOutcome.UNKNOWN)
            told = () if target_id.lower() == actor.user_id.lower() else (_told_of_request(notice, name),)
            return await self._again(step, "The reset's outcome is unknown", ResetOutcome.UNKNOWN, str(err),
                                     *UNKNOWN_LINES, *told)
        except DirectoryError as err:  # refused before anything was sent, or never sent: nothing changed
            await settle(ResetOutcome.FAILED, "failed")
            return await self._again(step, "The reset did not go through", ResetOutcome.FAILED, str(err),
                                     "Nothing was changed.")
        step.context.turn_state[ACCOUNT_CHANGED] = True
        # The person first (their Teams, or one made for them), so the card can say when they could not be told.
        notice = await self._notify(step.context, actor, target_id, password.set_at, session_id, ResetOutcome.DONE)
        notified = notice is not Notice.NOT_REACHED
        if not await self._ledger.holds(session_id, claim.attempt):  # taken over while this turn stalled
            del password
            await settle(ResetOutcome.DONE, "success", change_at_next_sign_in=True)  # audited as superseded
            return await self._end(step, TAKEN_OVER, TAKEN_OVER_LINE,
                                   "The password this one set was replaced, so it is not shown.")
        ref = uuid.uuid4().hex[:12]
        delivered, card_id = await self._show(step.context, password, name, ref, not_told=not notified)
        del password
        # Recorded done only once the card is sent: a turn killed before (telling the person takes Graph calls, so
        # seconds) leaves the attempt claimed and unsettled, and once the claim expires it is recorded unknown and
        # the agent can reset again with a password they see; recorded done first, the agent was told "already
        # reset. Nothing more was done" with a password nobody saw.
        recorded = await settle(ResetOutcome.DONE, "success", change_at_next_sign_in=True)
        if recorded is Settled.SUPERSEDED:  # taken over between the check and the card: take the password back
            if delivered:
                await self._redact(step.context, {"password_card_id": card_id}, name)
            return await self._end(step, TAKEN_OVER, TAKEN_OVER_LINE,
                                   "The password on the card above was replaced: do not use it.")
        if not delivered:
            await settle(ResetOutcome.UNKNOWN, "not_delivered", person_notified=notified)
            return await self._again(step, "The password could not be shown", ResetOutcome.UNKNOWN,
                                     "The password was changed, but Teams would not take the message that shows it.",
                                     *UNKNOWN_LINES)
        step.values["password_card_id"] = card_id
        if recorded is Settled.UNRECORDED:
            await self._notice(step.context, "The reset could not be recorded", "Warning",
                               "The password was changed, but Watchword's database did not take the record of it.",
                               "Tell your security team the time and whose password it was.")
        return await step.prompt(CardPrompt.__name__, prompt_options(
            None, "Choose “I've passed it on” on the password card once you have read it out.",
            verbs=["passed_on"], ref=ref, words={"done": "passed_on", "passed on": "passed_on"}))

    async def _show(self, context: TurnContext, password: TemporaryPassword, name: str,
                    ref: str, *, not_told: bool = False) -> tuple[bool, str | None]:
        """Send the password card, trying again when the channel refuses it: (delivered, its activity id).
        `not_told`: the person could not be told in Teams, so the card asks the agent to tell them another way."""
        card = self._cards.render("password", person_name=name, password=password.reveal(), redacted=False,
                                  not_told=not_told, data={"ref": ref})
        activity: Activity = self._cards.activity(card, "Temporary password (shown once)")
        del card
        for delay in (*CARD_RETRY_DELAYS, None):
            try:
                sent = await context.send_activity(activity)
                return True, sent.id if sent is not None else None
            except Exception:  # the channel's client raises its own errors: any of them means "not delivered"
                log.warning("the password card was not delivered%s", "; retrying" if delay is not None else "")
                if delay is None:
                    break
                await asyncio.sleep(delay)
        return False, None

    async def _notify(self, context: TurnContext, actor: Actor, target_id: str, at: datetime, session_id: str,
                      outcome: ResetOutcome) -> Notice:
        """Tell the person their password was reset (or may have been: `outcome` unknown), whatever happens to the
        card (not when they reset it themselves: they are the one reading it), and audit how they were told."""
        if target_id.lower() == actor.user_id.lower():
            return Notice.DELIVERED
        notice = await self._messenger.notify_password_reset(context, tenant_id=actor.tenant_id, target_id=target_id,
                                                             at=at, outcome=outcome)
        try:
            await self._records.audit("password_reset.notice", notice.value, actor=actor, subject=target_id,
                                      details={"session_id": session_id, "reset": outcome.value})
        except Exception:  # the database is failing: the password, already changed, must still be shown
            log.warning("could not audit how the person was told of reset %s", session_id, exc_info=True)
        return notice

    async def _refused(self, step: WaterfallStepContext, claim: ResetClaimResult, name: str) -> DialogTurnResult:
        zone = zone_of(step.context.activity)
        when = clock_time(claim.at, zone) if claim.at is not None else ""
        if claim.claim is ResetClaim.BUSY:
            # "after 04:48" must be true at 04:48: the minute it may be taken over in, rounded up
            after = claim.at + timedelta(seconds=59) if claim.at is not None else None
            when = clock_time(after.replace(second=0, microsecond=0), zone) if after is not None else ""
            return await self._again(step, "A reset of this password has not finished", ResetOutcome.UNKNOWN, (
                f"A reset started earlier and has not reported back. If no password appears, reset again after "
                f"{when}: the password may have been changed, and a new reset sets one you will see."
                if when else "Another reset of this password is running."))
        text = {
            ResetClaim.DONE: (f"This password was already reset{' at ' + when if when else ''}. "
                              "Nothing more was done."),
            ResetClaim.BLOCKED: "This reset is blocked. Nothing was done.",
            ResetClaim.EXPIRED: f"The verification of {name} is too old to reset from. Verify the caller again.",
            ResetClaim.NOT_ALLOWED: "There is no verified session of yours that allows this reset. "
                                    "Verify the caller first.",
        }[claim.claim]
        return await self._end(step, "Nothing to do", text)

    async def _again(self, step: WaterfallStepContext, title: str, before: ResetOutcome,
                     *lines: str) -> DialogTurnResult:
        """Say what happened, then offer the reset again (a new attempt, a new password) on a fresh card.
        `before` is what the password is now known to be: unchanged (failed) or maybe changed (unknown)."""
        await self._notice(step.context, title, "Warning", *lines)
        return await step.replace_dialog(self.initial_dialog_id, {**step.options, "before": before.value})

    async def redact_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        target: dict[str, str] = step.options["target"]
        redacted = await self._redact(step.context, step.values, target["name"])
        step.context.turn_state[REPLACEMENT_CARD] = redacted
        await self._records.audit("password_reset", "passed_on", actor=actor, subject=target["id"],
                                  details={"session_id": step.options["session_id"]})
        return await step.end_dialog()

    async def end_dialog(self, context: TurnContext, instance: DialogInstance, reason: DialogReason) -> None:
        if reason == DialogReason.CancelCalled:  # before the base class empties the inner stack
            await self._on_cancel(context, instance)
        await super().end_dialog(context, instance, reason)

    async def _on_cancel(self, context: TurnContext, instance: DialogInstance) -> None:
        """Cancelled while the password is on screen: take it off the chat all the same."""
        for values, options in waterfall_frames(instance, self.persisted_dialog_state):
            if values.get("password_card_id") and "target" in options:
                await self._redact(context, values, options["target"]["name"])

    async def _redact(self, context: TurnContext, values: dict[str, Any], name: str) -> dict[str, Any]:
        card = self._cards.render("password", person_name=name, redacted=True,
                                  redacted_at=clock_time(self._clock(), zone_of(context.activity)), data={})
        card_id = values.get("password_card_id")
        if card_id:
            update = self._cards.activity(card, "Temporary password (removed)")
            update.id = card_id
            try:
                await context.update_activity(update)
            except Exception:  # the channel refused the update: say so, the agent can delete the message
                log.warning("could not remove the temporary password card %s from the chat", card_id, exc_info=True)
                notice = self._cards.render("notice", title="Delete the password message", tone="Warning", lines=[
                    "I couldn't remove the temporary password from this chat. Delete that message yourself."])
                await context.send_activity(self._cards.activity(notice, "Delete the password message"))
            values["password_card_id"] = None
        return card

    async def _end(self, step: WaterfallStepContext, title: str, *lines: str) -> DialogTurnResult:
        await self._notice(step.context, title, None, *lines)
        return await step.end_dialog()

    async def _notice(self, context: TurnContext, title: str, tone: str | None, *lines: str) -> None:
        card = self._cards.render("notice", title=title, lines=list(lines), tone=tone)
        try:
            await context.send_activity(self._cards.activity(card, title))
        except Exception:  # the channel is refusing messages: what happened is in the audit log already
            log.warning("could not send the notice %r", title, exc_info=False)

    def _replace(self, context: TurnContext, text: str) -> None:
        context.turn_state[REPLACEMENT_CARD] = self._cards.render("notice", title=text, lines=[], tone=None)
