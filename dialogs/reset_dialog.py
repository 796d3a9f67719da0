"""ResetPasswordDialog: confirm, reset once, show the temporary password once, then remove it from the chat.

Only after a verified session, only in a 1:1 chat with the bot, and at most once per session (the
`ResetLedger` compare-and-set makes a second click, a replayed turn or another instance reset nothing).
The password is sent on a card and never kept: not in dialog state, logs, audit or store. "I've passed it
on" replaces the card (update_activity) with one that has no password; so does cancelling the dialog.

Options: {"session_id": str, "actor": Actor.to_dict(), "target": {"id", "name", ...}}.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

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
from dialogs.ports import Actor, CardRenderer, Clock, Messenger, ResetClaim, ResetLedger, VerificationRecords
from dialogs.times import clock_time, zone_of
from dialogs.wording import GROUP_CHAT_STEP
from graph.directory import Directory, GraphUnavailable, ResetRefused

log = logging.getLogger(__name__)

CLAIM_TEXT = {
    ResetClaim.DONE: "This password was already reset{at}. Nothing more was done.",
    ResetClaim.BUSY: "This password is being reset already. Nothing more was done.",
    ResetClaim.BLOCKED: "This reset is blocked. Nothing was done.",
    ResetClaim.UNKNOWN: "There is no verified session that allows this reset. Verify the caller first.",
}


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
            return await self._end(step, "No reset", f"Nothing was changed for {target['name']}.")
        self._replace(step.context, "Resetting…")
        if not actor.personal_chat:
            return await self._end(step, "Not in this chat", GROUP_CHAT_STEP)
        claim, at = await self._ledger.claim(session_id)
        if claim is not ResetClaim.CLAIMED:
            await self._records.audit("password_reset", f"refused_{claim.value}", actor=actor, subject=target["id"],
                                      details={"session_id": session_id})
            when = f" at {clock_time(at, zone_of(step.context.activity))}" if at else ""
            return await self._end(step, "Nothing to do", CLAIM_TEXT[claim].format(at=when))
        if await self._messenger.out_of_band_answer(session_id) is False:
            await self._ledger.settle(session_id, done=False, blocked=True)
            await self._records.audit("password_reset", "blocked_user_denied", actor=actor, subject=target["id"],
                                      details={"session_id": session_id})
            return await self._end(step, "Stop: the account holder says it is not them",
                                   "No password was reset. Treat the call as an attack and report it to security.")
        try:
            password = await self._directory.reset_password(actor.tenant_id, target["id"])
        except ResetRefused as err:
            await self._ledger.settle(session_id, done=False, blocked=True)
            await self._records.audit("password_reset", "refused", actor=actor, subject=target["id"],
                                      details={"session_id": session_id, "reason": err.reason.value})
            return await self._end(step, "Microsoft 365 refused the reset", str(err))
        except GraphUnavailable as err:
            unknown = "may or may not" in err.reason
            await self._ledger.settle(session_id, done=False, blocked=unknown)
            await self._records.audit("password_reset", "unknown" if unknown else "failed", actor=actor,
                                      subject=target["id"], details={"session_id": session_id})
            advice = ("The password may or may not have changed: check the account in the Entra admin center "
                      "before trying again." if unknown else "Nothing was changed. Try again in a minute.")
            return await self._end(step, "The reset did not go through", str(err), advice)
        await self._ledger.settle(session_id, done=True, at=password.set_at)
        await self._records.audit("password_reset", "success", actor=actor, subject=target["id"],
                                  details={"session_id": session_id, "change_at_next_sign_in": True})
        ref = uuid.uuid4().hex[:12]
        card = self._cards.render("password", person_name=target["name"], password=password.reveal(),
                                  redacted=False, data={"ref": ref})
        sent = await step.context.send_activity(self._cards.activity(card, "Temporary password (shown once)"))
        del password, card
        step.values["password_card_id"] = sent.id if sent is not None else None
        step.values["set_at"] = self._clock().strftime("%H:%M")
        if target["id"].lower() != actor.user_id.lower():
            await self._messenger.notify_password_reset(step.context, tenant_id=actor.tenant_id,
                                                        target_id=target["id"], at=self._clock())
        return await step.prompt(CardPrompt.__name__, prompt_options(
            None, "Choose “I've passed it on” on the password card once you have read it out.",
            verbs=["passed_on"], ref=ref, words={"done": "passed_on", "passed on": "passed_on"}))

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
        card = self._cards.render("notice", title=title, lines=list(lines), tone=None)
        await step.context.send_activity(self._cards.activity(card, title))
        return await step.end_dialog()

    def _replace(self, context: TurnContext, text: str) -> None:
        context.turn_state[REPLACEMENT_CARD] = self._cards.render("notice", title=text, lines=[], tone=None)
