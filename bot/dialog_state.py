"""The dialog stack as plain JSON in conversation state, so it survives a restart and a second instance.

The SDK's dialogs keep `DialogState`/`DialogInstance` dataclasses, `PromptOptions` and `Activity` objects in
the state they hand to a `StatePropertyAccessor`; `MemoryStorage` stores those objects by reference, but
store/'s `SqlStorage` writes JSON and refuses them. `DialogStateProperty` is the accessor the `DialogSet`
uses instead: it decodes the stored JSON into those objects once per turn, the dialogs work on them, and
`flush()` (called by the bot at the end of the turn, before the SDK saves state) encodes them back.
Anything else that is not JSON fails loudly on encoding rather than being stored half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.state import AgentState
from microsoft_agents.hosting.dialogs import DialogInstance, DialogState, PromptOptions

TYPE = "$type"
LIVE = "watchword.dialog_state.live"  # turn_state key of this turn's decoded stack
CONVERSATION = "watchword.conversation_state"  # turn_state key of this turn's ConversationState


_PLAIN = frozenset({str, bool, int, float, type(None)})  # JSON's scalars, as their exact types


def encode(value: Any) -> Any:
    """JSON for dialog state; raises TypeError naming the first value that has no JSON form."""
    kind = type(value)  # exact types first: most of the state is plain JSON (a sealed session), walked every turn
    if kind in _PLAIN:
        return value
    if kind is dict:
        if TYPE in value:
            raise TypeError(f"dialog state key {TYPE!r} is reserved")
        return {k if type(k) is str else str(k): encode(v) for k, v in value.items()}
    if kind is list:
        return [encode(v) for v in value]
    return _encode_other(value)


def _encode_other(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, DialogState):
        return {TYPE: "DialogState", "stack": [encode(i) for i in value.dialog_stack]}
    if isinstance(value, DialogInstance):
        return {TYPE: "DialogInstance", "id": value.id, "state": encode(value.state)}
    if isinstance(value, PromptOptions):
        if value.choices:
            raise TypeError("PromptOptions.choices are not stored: Watchword's prompts are cards")
        return {TYPE: "PromptOptions", "prompt": encode(value.prompt), "retry_prompt": encode(value.retry_prompt),
                "validations": encode(value.validations), "number_of_attempts": value.number_of_attempts,
                "style": encode(value.style)}
    if isinstance(value, Activity):
        return {TYPE: "Activity", "value": value.model_dump(mode="json", by_alias=True, exclude_none=True)}
    if isinstance(value, Enum):
        return encode(value.value)
    if isinstance(value, dict):
        if TYPE in value:
            raise TypeError(f"dialog state key {TYPE!r} is reserved")
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(f"cannot keep a {type(value).__name__} in dialog state")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TYPE)
    if kind is None:
        return {k: decode(v) for k, v in value.items()}
    if kind == "DialogState":
        return DialogState([decode(i) for i in value["stack"]])
    if kind == "DialogInstance":
        return DialogInstance(id=value["id"], state=decode(value["state"]))
    if kind == "PromptOptions":
        return PromptOptions(prompt=decode(value["prompt"]), retry_prompt=decode(value["retry_prompt"]),
                             validations=decode(value["validations"]),
                             number_of_attempts=int(value.get("number_of_attempts") or 0),
                             style=value.get("style"))
    if kind == "Activity":
        return Activity.model_validate(value["value"])
    raise ValueError(f"unknown dialog state type {kind!r}")


class DialogStateProperty:
    """A `StatePropertyAccessor` for `DialogSet`, over this turn's ConversationState (see the module doc)."""

    def __init__(self, name: str = "dialog_stack") -> None:
        self._name = name

    @staticmethod
    def bind(context: TurnContext, conversation: AgentState) -> None:
        """Tell the accessor which ConversationState this turn loaded (call before running dialogs)."""
        context.turn_state[CONVERSATION] = conversation
        context.turn_state.pop(LIVE, None)

    @staticmethod
    def _conversation(context: TurnContext) -> AgentState:
        conversation = context.turn_state.get(CONVERSATION)
        if conversation is None:
            raise RuntimeError("DialogStateProperty.bind() was not called for this turn")
        return conversation

    async def get(self, turn_context: TurnContext, default_value_or_factory: Callable[[], Any] | Any = None,
                  *, target_cls: type | None = None) -> Any:
        live = turn_context.turn_state.get(LIVE)
        if live is not None:
            return live
        conversation = self._conversation(turn_context)
        await conversation.load(turn_context)
        stored = conversation.get_value(self._name)
        if stored:
            live = decode(stored)
        elif callable(default_value_or_factory):
            live = default_value_or_factory()
        else:
            live = default_value_or_factory
        turn_context.turn_state[LIVE] = live
        return live

    async def set(self, turn_context: TurnContext, value: Any) -> None:
        turn_context.turn_state[LIVE] = value

    async def delete(self, turn_context: TurnContext) -> None:
        turn_context.turn_state.pop(LIVE, None)
        self._conversation(turn_context).delete_value(self._name)

    def flush(self, turn_context: TurnContext) -> None:
        """Write this turn's stack back as JSON (an empty stack is removed)."""
        live = turn_context.turn_state.get(LIVE)
        conversation = turn_context.turn_state.get(CONVERSATION)
        if live is None or conversation is None:
            return
        if isinstance(live, DialogState) and not live.dialog_stack:
            conversation.delete_value(self._name)
        else:
            conversation.set_value(self._name, encode(live))
