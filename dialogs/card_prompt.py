"""CardPrompt: waits for a button on an Adaptive Card, or for typed text where the card allows it.

A button arrives two ways and both end here the same: `Action.Execute` sends an `invoke` named
`adaptiveCard/action` (value.action.verb/data), its `Action.Submit` fallback a `message` whose `value`
is the data plus the card's inputs. The SDK's prompts only listen to messages, so `continue_dialog`
also lets that invoke through.

The result is a plain dict (it may be kept in dialog state): {"verb", "data", "text", "card_id"}.
`PromptOptions.validations` says what this prompt accepts:
    {"verbs": [...], "ref": "...", "text_verb": "answer" | None, "words": {"cancel": "cancel"}}
`ref` ties buttons to the card that asked, so a click on an older card is refused instead of being
taken as the answer to a newer question.

The prompt activity is sent and then forgotten (only the retry prompt is kept in dialog state): a card
may show something that must not be stored, such as a temporary password.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from microsoft_agents.activity import Activity, ActivityTypes, InputHints
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import (
    Dialog,
    DialogContext,
    DialogInstance,
    DialogState,
    DialogTurnResult,
    Prompt,
    PromptOptions,
    PromptRecognizerResult,
    PromptValidatorContext,
)

CARD_ACTION_INVOKE = "adaptiveCard/action"
# turn_state keys: the card that replaces the one clicked, and "the click was refused"
REPLACEMENT_CARD = "watchword.replacement_card"
REJECTED_CLICK = "watchword.rejected_click"
# channelData key of the turn Watchword runs itself when something a card waits for has arrived (dialogs/ports.py
# Messenger.continue_when): a click on the agent's behalf, dropped silently when that card no longer waits.
CONTINUATION = "watchwordContinuation"
MAX_TEXT = 500


def waterfall_frames(instance: DialogInstance, inner_key: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(values, options) of each waterfall step frame on a ComponentDialog's inner stack (prompt frames skipped):
    what a dialog cancelled from outside reads to clean up after itself."""
    inner = instance.state.get(inner_key)
    for frame in inner.dialog_stack if isinstance(inner, DialogState) else []:
        values, options = frame.state.get("values"), frame.state.get("options")
        if isinstance(values, dict) and isinstance(options, dict):
            yield values, options


def card_action(activity: Activity) -> tuple[str | None, dict[str, Any]] | None:
    """(verb, data) of a card button in this activity, or None when it is not one."""
    if activity.type == ActivityTypes.invoke and activity.name == CARD_ACTION_INVOKE:
        value = activity.value if isinstance(activity.value, dict) else {}
        action = value.get("action") if isinstance(value.get("action"), dict) else {}
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        verb = action.get("verb") or data.get("verb")
        return (str(verb) if verb else None), dict(data)
    if activity.type == ActivityTypes.message and isinstance(activity.value, dict):
        verb = activity.value.get("verb")
        return (str(verb) if verb else None), dict(activity.value)
    return None


def is_continuation(activity: Activity) -> bool:
    """The turn Watchword runs itself (Messenger.continue_when), not one the agent sent."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    return data.get(CONTINUATION) is True


def prompt_options(prompt: Activity | None, retry: str, *, verbs: list[str], ref: str | None = None,
                   text_verb: str | None = None, words: dict[str, str] | None = None) -> PromptOptions:
    """Options for a CardPrompt: the card to send, a plain-text retry prompt, and what it accepts."""
    retry_prompt = Activity(type=ActivityTypes.message, text=retry, input_hint=InputHints.expecting_input)
    return PromptOptions(prompt=prompt, retry_prompt=retry_prompt, validations={
        "verbs": list(verbs), "ref": ref, "text_verb": text_verb, "words": dict(words or {})})


class CardPrompt(Prompt):
    def __init__(self, dialog_id: str | None = None) -> None:
        super().__init__(dialog_id or CardPrompt.__name__, CardPrompt.accepts)

    @staticmethod
    async def accepts(prompt: PromptValidatorContext) -> bool:
        """The verb is one this card offers, from this card (ref), with an answer where one is needed."""
        value = prompt.recognized.value if prompt.recognized.succeeded else None
        rules = prompt.options.validations if isinstance(prompt.options.validations, dict) else {}
        if not isinstance(value, dict) or value.get("verb") not in rules.get("verbs", ()):
            return False
        if value.get("text") is None and rules.get("ref") and value["data"].get("ref") != rules["ref"]:
            return False
        answer = value["data"].get("answer")
        return value["verb"] != "answer" or (isinstance(answer, str) and bool(answer.strip()))

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        activity = dialog_context.context.activity
        is_card_invoke = activity.type == ActivityTypes.invoke and activity.name == CARD_ACTION_INVOKE
        if activity.type != ActivityTypes.message and not is_card_invoke:
            return Dialog.end_of_turn
        instance = dialog_context.active_dialog
        assert instance is not None
        state = cast(dict[str, object], instance.state[self.persisted_state])
        options = cast(PromptOptions, instance.state[self.persisted_options])
        recognized = await self.on_recognize(dialog_context.context, state, options)
        state[self.ATTEMPT_COUNT_KEY] = int(cast(int, state.get(self.ATTEMPT_COUNT_KEY, 0))) + 1
        if await CardPrompt.accepts(PromptValidatorContext(dialog_context.context, recognized, state, options)):
            return await dialog_context.end_dialog(recognized.value)
        if is_continuation(activity):  # the card it was for was answered meanwhile: nothing to say
            return Dialog.end_of_turn
        if card_action(activity) is not None:
            dialog_context.context.turn_state[REJECTED_CLICK] = True
        await self.on_prompt(dialog_context.context, state, options, True)
        return Dialog.end_of_turn

    async def on_prompt(self, turn_context: TurnContext, state: dict[str, object], options: PromptOptions,
                        is_retry: bool) -> None:
        if is_retry:
            if options.retry_prompt is not None:
                await turn_context.send_activity(options.retry_prompt)
            return
        if options.prompt is not None:
            sent = await turn_context.send_activity(options.prompt)
            state["card_id"] = sent.id if sent is not None else None
            options.prompt = None  # sent: not kept in dialog state

    async def on_recognize(self, turn_context: TurnContext, state: dict[str, object],
                           options: PromptOptions) -> PromptRecognizerResult:
        rules = options.validations if isinstance(options.validations, dict) else {}
        card_id = state.get("card_id")
        action = card_action(turn_context.activity)
        if action is not None:
            verb, data = action
            return PromptRecognizerResult(True, {"verb": verb, "data": data, "text": None, "card_id": card_id})
        text = " ".join((turn_context.activity.text or "").split())[:MAX_TEXT]
        if not text:
            return PromptRecognizerResult(False, None)
        word = rules.get("words", {}).get(text.lower())
        verb = word or rules.get("text_verb")
        data = {"answer": text} if verb == "answer" else {}
        return PromptRecognizerResult(verb is not None, {"verb": verb, "data": data, "text": text, "card_id": card_id})
