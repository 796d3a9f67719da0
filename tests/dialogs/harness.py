"""Teams in a test: people chatting with one WatchwordAgent through microsoft-agents-testing's TestAdapter.

Each person has their own 1:1 chat (a TestAdapter on channel "msteams" with the tenant on the
conversation, as Teams sends it). Everything any adapter sends, proactive messages included, lands in one
outbox, so a test can read what each chat shows. Card buttons are pressed the two ways Teams sends them:
Action.Execute (an adaptiveCard/action invoke, answered with a replacement card) or its Action.Submit
fallback (a message whose value is the data plus the inputs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    ResourceResponse,
)
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.state.agent_state import CachedAgentState
from microsoft_agents.testing import TestAdapter

from bot.agent import WatchwordAgent
from bot.cards import card_of, card_text
from bot.hosting import auth_configuration
from bot.sealing import FernetSealer
from dialogs.session_keeper import StartLimits
from settings import Settings
from store import Store
from tests.dialogs.fakes import HELPDESK_GROUP, TENANT, FakeDirectory
from tests.store.support import FakeClock, StoreTarget
from verification import Person, VerificationSession
from verification.plan import decode_plan

CHECKING_SIGN_INS = "Questions complete: checking Microsoft's sign-in logs"  # dialogs/proof_dialog.py's interim card
BOT = ChannelAccount(id="28:watchword-bot", name="Watchword")
SERVICE_URL = "https://smba.test/teams/"
BOT_APP_ID = "0b07a9f1-0000-4000-8000-00000000b075"  # the app registration's client id (the Teams app derives from it)


@dataclass
class Outbox:
    sent: list[Activity] = field(default_factory=list)
    updates: list[Activity] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # card JSON -> id of the activity that first showed it

    def record(self, activities: list[Activity]) -> None:
        self.sent.extend(activities)
        for activity in activities:
            card = card_of(activity)
            if card is not None and activity.id:
                self.origins.setdefault(json.dumps(card, sort_keys=True), activity.id)


class TeamsAdapter(TestAdapter):
    """TestAdapter for one conversation, writing into the shared outbox and keeping updates."""

    __test__ = False

    def __init__(self, reference: ConversationReference, outbox: Outbox) -> None:
        super().__init__(conversation=reference)
        self.outbox = outbox
        self._prefix = reference.conversation.id
        self._run = uuid.uuid4().hex[:8]  # a second adapter on the same chat (a restart) never reuses an id

    def _gen_id(self) -> str:  # ids unique across chats and across restarts, as Teams' are
        return f"{self._prefix}#{self._run}.{super()._gen_id()}"

    async def send_activities(self, context: TurnContext, activities: list[Activity]) -> list[ResourceResponse]:
        responses = await super().send_activities(context, activities)
        self.outbox.record(activities)
        self.activity_queue.clear()
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> ResourceResponse:
        self.outbox.updates.append(activity)
        for i, sent in enumerate(self.outbox.sent):
            if sent.id == activity.id:
                self.outbox.sent[i] = activity
        return ResourceResponse(id=activity.id)


class Chat:
    """One person's conversation with the bot."""

    def __init__(self, teams: Teams, person: Person, *, conversation_type: str = "personal",
                 tenant_id: str = TENANT, conversation_id: str | None = None) -> None:
        self.teams = teams
        self.person = person
        self.user = ChannelAccount(id=f"29:{person.id}", name=person.display_name, aad_object_id=person.id)
        self.conversation_id = conversation_id or f"a:{conversation_type}-{person.id}"
        conversation = ConversationAccount(id=self.conversation_id, conversation_type=conversation_type,
                                           tenant_id=tenant_id, is_group=conversation_type != "personal")
        reference = ConversationReference(channel_id="msteams", service_url=SERVICE_URL, user=self.user,
                                          agent=BOT, conversation=conversation)
        self.adapter = TeamsAdapter(reference, teams.outbox)
        self.tenant_id = tenant_id
        self._seen = 0

    # --- sending -------------------------------------------------------------------------------------------
    async def send(self, activity: Activity) -> list[Activity]:
        """Send as this person; returns what the chat received since, once the sends the turn started to other
        people's Teams (the code, the manager's card) have ended too, as a moment later in Teams (unless the test
        turned `teams.wait_for_sends` off to see the chat before they end)."""
        activity.from_property = self.user
        activity.channel_data = {"tenant": {"id": self.tenant_id}}
        await self.adapter.process_activity(ClaimsIdentity({}), activity, self.teams.agent.on_turn)
        if self.teams.wait_for_sends:
            await self.teams.agent.messenger.sent()
        return self.new()

    async def say(self, text: str) -> list[Activity]:
        return await self.send(Activity(type=ActivityTypes.message, text=text))

    async def click(self, title: str, inputs: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None,
                    execute: bool = False) -> list[Activity]:
        """Press the button called `title` on `card` (default: the newest card in this chat that has it)."""
        if card is None:
            card = card_of(self._card_with(title))
        card_id = self.teams.outbox.origins.get(json.dumps(card, sort_keys=True))
        action = find_action(card, title)
        data = {**action["data"], **(inputs or {})}
        if execute:
            value = {"action": {"type": "Action.Execute", "verb": action["verb"], "data": data}, "trigger": "manual"}
            activity = Activity(type=ActivityTypes.invoke, name="adaptiveCard/action", value=value)
        else:
            activity = Activity(type=ActivityTypes.message, value=data)
            activity.reply_to_id = card_id
        return await self.send(activity)

    async def answer(self, text: str, *, execute: bool = False) -> list[Activity]:
        return await self.click("Submit answer", {"answer": text}, execute=execute)

    # --- reading -------------------------------------------------------------------------------------------
    def mine(self) -> list[Activity]:
        return [a for a in self.teams.outbox.sent
                if a.conversation is not None and a.conversation.id == self.conversation_id]

    def new(self) -> list[Activity]:
        """Activities this chat received since the last call."""
        everything = self.mine()
        fresh, self._seen = everything[self._seen:], len(everything)
        return fresh

    def cards(self) -> list[dict[str, Any]]:
        return [c for a in self.mine() if (c := card_of(a)) is not None]

    def last_card(self) -> dict[str, Any]:
        cards = self.cards()
        assert cards, "no card in this chat"
        return cards[-1]

    def text(self) -> str:
        """Everything this chat shows now (cards as text; updated cards as updated)."""
        return "\n".join(card_text(card_of(a)) or (a.text or "") for a in self.mine()
                         if a.type == ActivityTypes.message)

    def _card_with(self, title: str) -> Activity:
        for activity in reversed(self.mine()):
            card = card_of(activity)
            if card is not None and find_action(card, title, required=False) is not None:
                return activity
        raise AssertionError(f"no card with a {title!r} button in this chat:\n{self.text()}")


def find_action(card: Any, title: str, *, required: bool = True) -> dict[str, Any] | None:
    for action in iter_actions(card):
        if action.get("title") == title:
            return action
    if required:
        raise AssertionError(f"no {title!r} button on the card")
    return None


def iter_actions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            yield node
        for key, child in node.items():
            if key != "fallback":
                yield from iter_actions(child)
    elif isinstance(node, list):
        for child in node:
            yield from iter_actions(child)


def invoke_responses(activities: list[Activity]) -> list[dict[str, Any]]:
    """The bodies of invoke responses among `activities` (Action.Execute answers)."""
    out = []
    for a in activities:
        if a.type == ActivityTypes.invoke_response:
            value = a.value.model_dump() if hasattr(a.value, "model_dump") else a.value
            out.append(value)
    return out


class Teams:
    """The tenant's Teams: chats of several people with one bot (and the parts a test inspects)."""

    def __init__(self, agent: WatchwordAgent, sealer: FernetSealer, store: Store, directory: FakeDirectory,
                 clock: FakeClock) -> None:
        self.agent = agent
        self.sealer = sealer
        self.store = store
        self.directory = directory
        self.clock = clock
        self.outbox = Outbox()
        self.wait_for_sends = True  # Chat.send returns once the turn's sends to others' Teams have ended

    def chat(self, person: Person, **kwargs: Any) -> Chat:
        return Chat(self, person, **kwargs)

    async def sealed_sessions(self, chat: Chat) -> list[dict[str, Any]]:
        """The verification sessions kept in the chat's conversation state, opened with the bot's key."""
        key = f"msteams/conversations/{chat.conversation_id}"
        items = await self.store.conversation_state.read([key], target_cls=CachedAgentState)
        found: list[dict[str, Any]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("sealed") == 1 and "open" in node:
                    found.append(self.sealer.unseal(node))
                    return
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        if key in items:
            walk(items[key].state)
        return found

    async def current_question(self, chat: Chat) -> dict[str, Any] | None:
        """The question the agent's session is asking, accepted answers included (what the real person knows):
        its progress from the chat's state and its plan from the store, both opened with the bot's key."""
        # The newest progress: a dialog further down the stack keeps the copy it started its child with.
        found = sorted(await self.sealed_sessions(chat), key=lambda p: (len(p["transcript"]), p["asked"]))
        for progress in reversed(found[-1:]):
            if not progress["secret"].get("current"):
                continue
            token = await self.store.sessions.sealed_plan(progress["id"])
            if token is None:
                return None  # ended elsewhere (the store drops the plan): no question is really being asked
            plan = decode_plan(self.sealer.decrypt(token))
            asking = VerificationSession.from_dict(progress, self.clock, plan).asking
            if asking is None:
                return None
            return {**asking.to_dict(), "credited": list(progress["secret"].get("credited", []))}
        return None


def build_agent(store: Store, directory: FakeDirectory, clock: FakeClock, sealer: FernetSealer,
                start_limits: StartLimits | None = None) -> WatchwordAgent:
    settings = Settings(bot_anonymous=True)
    connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": auth_configuration(settings)})
    return WatchwordAgent(store=store, storage=store.conversation_state, directory=directory, sealer=sealer,
                          clock=clock, connection_manager=connections, app_id=BOT_APP_ID, anonymous=True,
                          fallback_helpdesk_group=HELPDESK_GROUP, start_limits=start_limits)


@asynccontextmanager
async def open_teams(target: StoreTarget, clock: FakeClock, *, key: str | None = None,
                     directory: FakeDirectory | None = None, outbox: Outbox | None = None,
                     start_limits: StartLimits | None = None) -> AsyncIterator[Teams]:
    """A bot over the store at `target`. A second call on the same target plays a restarted process; pass the
    first one's `outbox` to keep what the chats already show (Teams keeps it, whatever the bot does)."""
    store = await target.open(clock)
    try:
        if await store.tenants.get(TENANT) is None:
            await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=["User.Read.All"])
        sealer = FernetSealer(key or FernetSealer.generate_key())
        directory = directory or FakeDirectory(clock)
        teams = Teams(build_agent(store, directory, clock, sealer, start_limits), sealer, store, directory, clock)
        teams.outbox = outbox or teams.outbox
        try:
            yield teams
        finally:
            await teams.agent.stop()
    finally:
        await store.close()


# --- callers ---------------------------------------------------------------------------------------------------
def is_question(card: dict[str, Any]) -> bool:
    return find_action(card, "Submit answer", required=False) is not None


async def truthful_answer(teams: Teams, chat: Chat, target: Person) -> str:
    """What the real person says to the current question: one of the answers the session accepts."""
    question = await teams.current_question(chat)
    assert question is not None, "no question is being asked"
    # Someone not named already: naming a credited person again proves nothing.
    names = [c["display"] for c in question["accepted"]
             if c["display"] != target.display_name and c["key"] not in question["credited"]]
    options = question.get("options") or []
    if options:
        return options[question["correct_option"]]
    return names[0]


def shown_code(chat: Chat) -> str:
    """The one-time code on the newest code card in this person's chat, as they would read it out."""
    for card in reversed(chat.cards()):
        text = card_text(card)
        if text.startswith("Your code for the IT helpdesk"):
            return next(line for line in text.splitlines() if line.replace(" ", "").isdigit())
    raise AssertionError(f"no code shown in this chat:\n{chat.text()}")


async def enter_code(chat: Chat, code: str, *, execute: bool = False) -> list[Activity]:
    return await chat.click("Check code", {"code": code}, execute=execute)


def _still_asked(chat: Chat) -> bool:
    """The chat's newest question-or-decision card is a question (an alert may have come after it)."""
    for card in reversed(chat.cards()):
        if is_question(card):
            return True
        if "Next step" in card_text(card):
            return False
    return False


async def answer_until_decided(teams: Teams, chat: Chat, target: Person, *, truthful: bool = True,
                               guesses: tuple[str, ...] = (), execute: bool = False, limit: int = 12) -> str:
    """Answer question after question (on the newest question card); return the decision card's text."""
    pending = list(guesses)
    for _ in range(limit):
        newest = card_text(chat.last_card())
        if newest.startswith(CHECKING_SIGN_INS):  # the decision (or more questions) follows by itself
            await teams.agent.messenger.settle()
            if card_text(chat.last_card()) == newest:
                raise AssertionError(f"nothing followed the sign-in check:\n{chat.text()}")
            continue
        if newest.startswith("Ask for the code in their Teams"):  # the real person reads it out; an impostor has none
            if truthful:
                await enter_code(chat, shown_code(teams.chat(target)), execute=execute)
            else:
                await chat.click("They can't see a code", execute=execute)
            continue
        question = await teams.current_question(chat)
        if question is None and not _still_asked(chat):
            return card_text(chat.last_card())
        if truthful and question is not None:
            text = await truthful_answer(teams, chat, target)
        elif truthful:  # ended elsewhere (no plan left to know the answer from): the caller says something
            text = "Ken Thompson"
        else:
            text = pending.pop(0) if pending else "no idea"
        await chat.answer(text, execute=execute)
    raise AssertionError(f"still asking after {limit} answers:\n{chat.text()}")


def database_bytes(target: StoreTarget) -> bytes:
    """The SQLite database's files as they are on disk (main file and write-ahead log)."""
    from pathlib import Path

    path = Path(target.url.split("///", 1)[1])
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
