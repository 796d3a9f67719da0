"""Watchword in the Microsoft 365 Agents Playground (the Teams-like client that replaced the Bot Framework
Emulator), driven by Playwright in Debian's headless Chromium, against `python app.py --port 0` in demo mode.

The Playground's mock users are devtenant's people: the one typing is a member of "Helpdesk Agents", the others
include the people being verified, all with the dev tenant's id and their real object ids (its config file is
written to a temp dir, through devtenant.playground as `make run` does). Two runs:

* a genuine caller: the person's own Teams is open (a second Playground whose user is them, in the same
  browser), the agent types `verify <name>`, Watchword shows a one-time code in the person's chat, the caller
  reads it out from there (the test reads it off that page, as the person sees it) and the agent types it; the
  remaining questions are answered with what devtenant's ground truth says the product should accept
  (bench/truth.py and bench/callers.py, never the product's own loaded context), then Verified, Reset password,
  the temporary password shown once, "I've passed it on", and the card updated (the Playground emulates PUT,
  not DELETE) so the password is no longer on the page, in the store or the log; the person is told in Teams;
* an impostor: the real person's Teams shows the code, the caller can't read it ("They can't see a code"),
  gives wrong answers, Not verified, and no reset offered.

Before the browser starts, the targets are chosen by asking the product's engine offline (an in-process devtenant
with the same organisation, the product's GraphDirectory and VerificationSession) along the same path: the code
offered first (the person has a chat with Watchword), then the questions, and the sign-in risk when it arrives.
The genuine target is one the engine verifies every time with the code and those answers; the impostor target
one it refuses without the code and with wrong answers. Screenshots and timings go to build/screenshots/playground/.

Skips, saying how to fix it, when Node.js, the npm package (`make test` installs it), Chromium or playwright is
missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.callers import Kind
from bench.teams_client import (
    cards_in,
    kind_of,
    perfect_caller,
    prompt_of,
    texts,
    title_of,
    verbs_of,
)
from bench.truth import GroundTruth
from devtenant import playground
from devtenant.generate import generate_org
from devtenant.model import Org, User
from tests.e2e.conftest import (
    SCREENSHOTS,
    accessibility_problems,
    demo_app,
    demo_env,
    loopback_browser,
    skip_without_browser,
    stop_process,
)
from verification import Outcome, Policy, Prompt, RiskAssessment, Step, VerificationSession, assess_risk
from verification.factors import Factor
from verification.names import normalize
from verification.session import FULL_NAME_PROMPT

pytestmark = pytest.mark.e2e

if (reason := playground.missing()) is not None:
    pytest.skip(f"the Agents Playground can't run: {reason}", allow_module_level=True)
skip_without_browser()

from playwright.sync_api import Locator, Page  # noqa: E402 - after the skips
from playwright.sync_api import expect as playwright_expect  # noqa: E402

ARTIFACTS = SCREENSHOTS / "playground"
SEED, USERS = 1, 200
TIMEOUT_MS = 20_000
# Playwright's assertions wait 5 s unless told otherwise, this module's other waits (wait_for, actions) TIMEOUT_MS: on a
# loaded machine the Playground can take longer than 5 s to show a card the bot sent (the code in the person's own
# Teams comes after the agent's turn, from the bot's sends after it). Its assertions wait as long as the rest, in an
# Expect of its own (set_options on Playwright's shared one would change every other module's too).
expect = type(playwright_expect)()
expect.set_options(timeout=TIMEOUT_MS)
CANDIDATES = 4  # sign-in logs allow 5 requests per 10 s per tenant: stay under that in the offline check
OFFLINE_RUNS = 6  # genuine sessions the engine must pass offline for a target to be chosen
RISK_ARRIVES = ("at once", "when awaited", "never")  # the sign-in risk, offline: each in turn (see _play)
COMPOSER = '[role="textbox"][data-lexical-editor="true"]'
CARD = ".fai-OutputCard .ac-adaptiveCard"
CODE_CARD_TITLE = "Your code for the IT helpdesk"  # templates/cards/out_of_band.json.j2, in the person's own chat
SPOKEN_CODE = re.compile(r"(?<![\d:])(\d{3}) (\d{3})(?![\d:])")  # "482 913", as factors.spoken groups it


def card_kind(card: dict[str, Any]) -> str:
    """`kind_of`, plus the agent's "type the code the caller reads out" card (its "They can't see a code" button)."""
    return "code_entry" if "no_code" in verbs_of(card) else kind_of(card)


class Timer:
    """Seconds per named step, written as one line per test to a timings file."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.times: dict[str, float] = {}

    def lap(self, label: str) -> None:
        now = time.monotonic()
        self.times[label] = now - self.last
        self.last = now

    def write(self, path: Path, name: str) -> None:
        self.times["total"] = time.monotonic() - self.started
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(f"{name}: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.times.items()) + "\n")


# --- who: devtenant's people and what they really did -----------------------------------------------------
@dataclass
class WrongCaller:
    """An impostor who is always wrong: names, groups and roles that have nothing to do with the target."""

    truth: GroundTruth
    uid: str
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __call__(self, prompt: Prompt) -> str:
        org, target = self.truth.org, self.truth.org.users[self.uid]
        known = {normalize(r.name) for facts in self.truth.memory(self.uid).topics.values() for r in facts}
        known |= {normalize(g.display_name) for g in org.transitive_member_of(self.uid)}
        known |= {normalize(r.display_name) for r in self.truth.roles_of(self.uid)}
        known.add(normalize(target.display_name))
        if prompt.options:
            return next((o for o in prompt.options if normalize(o) not in known), prompt.options[-1])
        source = Kind.parse(prompt.kind).source
        if source == "groups":
            pool = [g.display_name for g in org.groups.values() if not g.is_tenant_wide]
        elif source == "roles":
            pool = [r.display_name for r in org.role_definitions.values() if not r.is_privileged]
        else:
            pool = self.truth.names
        return self.rng.choice(sorted(n for n in pool if normalize(n) not in known))


@dataclass
class World:
    ready: dict[str, Any]
    org: Org
    truth: GroundTruth
    agent: User
    genuine: User | None  # the engine verified them offline with accepted answers, every time (None: nobody was)
    impostor_target: User
    others: list[User]
    database: Path
    app_log: Path


def _play(session: VerificationSession, step: Step, caller: Callable[[Prompt], str], final_risk: RiskAssessment,
          code_read_out: bool, risk_arrives: str = "when awaited") -> Outcome:
    """A session along the product's path (dialogs/proof_dialog.py): the code shown when offered, read out (or
    "they can't see a code"), the questions. The sign-in risk (dialogs/session_keeper.py) arrives "at once" (by
    the next turn, as it usually does), "when awaited" (the session waits for it to decide), or "never" (its
    deadline passed under load: the provisional "sign-ins unavailable" risk stands)."""
    code = ""
    for _ in range(40):
        if step.decision is not None:
            return step.decision.outcome
        if Factor.POSSESSION in step.offer:
            code = session.issue_code()
            step = session.requested(Factor.POSSESSION, True)
            if risk_arrives == "at once":
                step = session.update_risk(final_risk)
        elif step.prompt is None and Factor.POSSESSION in step.awaiting:
            step = session.enter_code(code) if code_read_out else session.decline_code()
        elif step.prompt is not None:
            step = session.answer(caller(step.prompt))
        elif step.awaiting_risk:
            step = session.update_risk(None if risk_arrives == "never" else final_risk)
        else:
            raise AssertionError(f"the session waits for {sorted(step.awaiting)}, which no one here can give")
    raise AssertionError("the session never decided")


async def _offline_pick(org: Org, truth: GroundTruth, candidates: list[User]) -> list[User]:
    """The product's engine, offline: load each candidate's context through the product's GraphDirectory from an
    in-process devtenant serving the same organisation, then play sessions as the Playground runs will (their own
    Teams open, so the code is offered). Returns (genuine, impostor target): the genuine one None when the engine
    verified none of the candidates (the genuine test then says so; the others, which need questions but not a
    pass, still run)."""
    from devtenant.server import running_devtenant
    from devtenant.state import DevTenantConfig
    from graph.client import build_http_client
    from graph.graph_directory import GraphDirectory
    from graph.tokens import TokenSource
    from settings import Settings

    policy = Policy()
    own_teams = frozenset({Factor.POSSESSION})  # the runs open the person's own Teams; no manager has a chat
    genuine: User | None = None
    impostor: User | None = None
    async with running_devtenant(DevTenantConfig(seed=SEED, users=USERS), org=org) as dt:
        settings = Settings().with_devtenant(dt.ready)
        tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                             client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
        http = build_http_client(settings.ca_file)
        directory = GraphDirectory(tokens, http, settings.graph_url, settings.client_id)
        try:
            for user in candidates[:CANDIDATES]:
                loaded = await directory.load_context(settings.tenant_id, user.id)
                risk = assess_risk(loaded.context, policy)  # as dialogs/session_keeper.py weighs it at the start
                pending = loaded.sign_ins_later is not None
                final = assess_risk((await loaded.with_sign_ins()).context, policy)

                def run(caller: Callable[[Prompt], str], i: int, code_read_out: bool, loaded: Any = loaded,
                        risk: RiskAssessment = risk, pending: bool = pending, final: RiskAssessment = final) -> str:
                    session = VerificationSession(lambda: datetime.now(UTC), seed=f"e2e:{i}")
                    step = session.start(loaded.context, loaded.org, policy, risk, 0, own_teams, risk_pending=pending)
                    if step.decision is not None:
                        return "refused"
                    arrives = RISK_ARRIVES[i % len(RISK_ARRIVES)]
                    return _play(session, step, caller, final, code_read_out, arrives).value

                if loaded.context.is_federated or run(WrongCaller(truth, user.id), 0, code_read_out=False) \
                        != Outcome.NOT_VERIFIED.value:
                    continue  # refused before any question, or questions an impostor without the code could answer
                if genuine is None and all(run(perfect_caller(truth, user.id), i, code_read_out=True)
                                           == Outcome.VERIFIED.value for i in range(OFFLINE_RUNS)):
                    genuine = user
                elif impostor is None and _asks_without_code(loaded, policy, risk, pending):
                    impostor = user  # some runs verify them with no Teams of their own open: questions alone
                if genuine is not None and impostor is not None:
                    break
        finally:
            await directory.aclose()
            await http.aclose()
            tokens.close()
    assert impostor is not None, f"none of {CANDIDATES} candidates suits the e2e runs (engine changed?)"
    return [genuine, impostor]


def _asks_without_code(loaded: Any, policy: Policy, risk: RiskAssessment, pending: bool) -> bool:
    """Their data supports a question when no code can be offered (the organisation is anchored at the current
    hour, so who has enough data changes with the clock)."""
    session = VerificationSession(lambda: datetime.now(UTC), seed="e2e:no-code")
    step = session.start(loaded.context, loaded.org, policy, risk, 0, frozenset(), risk_pending=pending)
    return step.decision is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """`python app.py --port 0` in demo mode; meanwhile, the same organisation in this process, its ground truth,
    and the targets picked by the engine offline."""
    tmp = tmp_path_factory.mktemp("playground")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.txt").write_text("")  # this run's figures only
    timer = Timer()
    env = demo_env(tmp / "demo.db", WATCHWORD_DEMO_SEED=str(SEED), WATCHWORD_DEMO_USERS=str(USERS))
    for _ in range(2):  # devtenant anchors its organisation at the current hour: once more if the hour turned
        anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        picked: dict[str, Any] = {}

        def prepare(anchor: datetime = anchor, picked: dict[str, Any] = picked) -> None:
            try:
                org = generate_org(SEED, USERS, anchor)
                truth = GroundTruth(org, datetime.now(UTC), Policy())
                agent = playground.helpdesk_agent(org)
                candidates = playground.verifiable_people(org, exclude=[agent.id])
                targets = asyncio.run(_offline_pick(org, truth, candidates))
                others = [u for u in candidates if u not in targets][:playground.MOCK_USERS - sum(
                    1 for t in targets if t is not None)]
                picked.update(org=org, truth=truth, agent=agent, targets=targets, others=others)
            except BaseException as err:  # reported in the test's thread
                picked["error"] = err

        worker = threading.Thread(target=prepare, daemon=True)
        worker.start()
        with demo_app(env, tmp / "app.log") as (_, ready):
            timer.lap("app.py to ready line (organisation and offline pick alongside)")
            worker.join(60)
            timer.lap("offline pick, after the ready line")
            if "error" in picked:
                raise picked["error"]
            if datetime.now(UTC).replace(minute=0, second=0, microsecond=0) != anchor:
                continue
            org = picked["org"]
            assert org.tenant_id == ready["devtenant"]["tenant_id"], "not the organisation the app serves"
            genuine, impostor = picked["targets"]
            timer.write(ARTIFACTS / "timings.txt", "world")
            yield World(ready, org, picked["truth"], picked["agent"], genuine, impostor, picked["others"],
                        tmp / "demo.db", tmp / "app.log")
            return
    raise AssertionError("the hour turned twice while starting")


# --- the Playground and the browser -------------------------------------------------------------------------
@dataclass
class Chat:
    """The Playground's personal chat with Watchword in the browser, and the cards it received (read from the
    Playground's own websocket to its page: the same JSON it renders)."""

    page: Page
    shots: Path
    timer: Timer
    received: list[dict[str, Any]] = field(default_factory=list)  # createMessage/updateMessage..., in order
    count: int = 0
    browser: Any = None  # the Playwright BrowserContext: another person's Teams opens in a tab of its own
    workdir: Path | None = None
    numbered_by: Chat | None = None  # screenshots of another person's Teams are numbered in the agent's sequence
    label: str = ""

    def on_frame(self, payload: str | bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict) and isinstance(event.get("message"), dict):
            self.received.append(event)

    def cards(self, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
        """(action, card) of each card message received from index `since` on."""
        return [(str(event.get("action")), card) for event in self.received[since:]
                for card in cards_in(event["message"])]

    def say(self, text: str) -> None:
        box = self.page.locator(COMPOSER)
        box.click()
        box.fill(text)
        box.press("Enter")

    def wait_for(self, since: int, *kinds: str) -> dict[str, Any]:
        """The first new card (created at or after `since`) of one of these kinds (see `kind_of`)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            for action, card in self.cards(since):
                if action == "createMessage" and card_kind(card) in kinds:
                    return card
            self.page.wait_for_timeout(50)
        seen = [(a, card_kind(c), title_of(c)) for a, c in self.cards(since)]
        raise AssertionError(f"no {kinds} card arrived; received {seen}")

    def shot(self, label: str) -> None:
        owner = self.numbered_by or self
        owner.count += 1
        label = f"{self.label}-{label}" if self.label else label
        self.page.screenshot(path=str(self.shots / f"{owner.count:02d}-{label}.png"), full_page=True)
        self.timer.lap(label)

    def look(self) -> None:
        """This tab to the front, as a person switching to it would (hidden tabs get no animation frames, so
        clicks there wait for the page to settle about a second a time)."""
        self.page.bring_to_front()

    def watch(self) -> None:
        """Record what the Playground's page receives on its conversation websocket."""
        self.page.on("websocket", lambda ws: ws.on("framereceived", self.on_frame)
                     if "_ws_conversation" in ws.url else None)

    def active_card(self, button: str) -> Locator:
        """The newest rendered card that shows this button."""
        return self.page.locator(CARD).filter(has=self.page.get_by_role("button", name=button)).last


def _wait_serving(proc: subprocess.Popen[str], out: Path, config: Path) -> str:
    """The Playground's URL once it serves its config (it prints "Listening on PORT" first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        port = playground.listening_port(out.read_text())
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{playground.READY_PATH}", timeout=2):  # noqa: S310
                    return f"http://127.0.0.1:{port}"
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"the Agents Playground did not start: {playground.failure_reason(config)}")


@contextlib.contextmanager
def running_playground(world: World, me: User, others: list[User], workdir: Path, chat_id: str) -> Iterator[str]:
    """A Playground of its own (free port) where `me` types and `others` are the other users; its URL."""
    config = playground.write_config(workdir, playground.config(
        world.org.tenant_id, me, others, chat_id=chat_id, team_group_id=world.org.helpdesk_group_id))
    port = playground.free_port()  # it silently moves when its port is taken: choose a free one ourselves
    out = workdir / "stdout.txt"
    with out.open("w") as stdout:
        proc = subprocess.Popen(playground.command(world.ready["app"] + "/api/messages", port),  # noqa: S603
                                cwd=workdir, env=playground.environment(config),
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=playground.die_with_parent)
    try:
        url = _wait_serving(proc, out, config)
        assert url.endswith(f":{port}"), f"the Playground moved from port {port}: {url}"
        yield url
    finally:
        stop_process(proc, grace_s=5)


@pytest.fixture
def chat(world: World, chromium: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chat]:
    """A Playground of its own (free port, fresh personal chat) on the world's app, and a fresh browser context
    (the module's Chromium) showing it."""
    timer = Timer()
    name = request.node.name.removeprefix("test_")
    shots = ARTIFACTS / name
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    users = [u for u in (world.genuine, world.impostor_target, *world.others) if u is not None]
    try:
        with running_playground(world, world.agent, users, tmp_path / "playground", f"a:watchword-e2e-{name}") \
                as url:
            timer.lap("start the Playground")
            with loopback_browser(chromium, viewport={"width": 1280, "height": 1000}) as (context, blocked):
                context.set_default_timeout(TIMEOUT_MS)
                page = context.pages[0] if context.pages else context.new_page()
                talk = Chat(page, shots, timer, browser=context, workdir=tmp_path)
                talk.watch()
                timer.lap("open a browser context")
                page.goto(url)
                talk.wait_for(0, "notice")  # the welcome (help) card on install
                expect(page.locator(CARD).first).to_contain_text("verify")
                talk.shot("welcome")
                yield talk
            # Fonts from Microsoft's CDN are refused (no internet here); nothing else may go out.
            assert not [u for u in blocked if not u.startswith("https://res-1.cdn.office.net/")], blocked
    finally:
        timer.write(ARTIFACTS / "timings.txt", name)


@contextlib.contextmanager
def own_teams(world: World, chat: Chat, person: User) -> Iterator[Chat]:
    """The person's own Teams, signed in at their desk: a Playground whose user is them, showing their personal
    chat with Watchword in another tab of the browser (`Chat.look` brings a tab to the front: a hidden tab gets
    no animation frames). Installing Watchword there (the welcome) is what lets Watchword reach them, as in Teams."""
    assert chat.browser is not None and chat.workdir is not None
    others = [u for u in (world.agent, world.genuine, world.impostor_target, *world.others)
              if u is not None and u.id != person.id][:playground.MOCK_USERS]
    with running_playground(world, person, others, chat.workdir / "their-teams",
                            f"a:watchword-e2e-own-{person.id}") as url:
        page = chat.browser.new_page()
        theirs = Chat(page, chat.shots, chat.timer, numbered_by=chat, label="their-teams")
        theirs.watch()
        try:
            page.goto(url)
            theirs.wait_for(0, "notice")  # Watchword's welcome: installed in their Teams
            chat.look()
            chat.timer.lap("open their own Teams")
            yield theirs
        finally:
            page.close()


# --- steps ----------------------------------------------------------------------------------------------------
def start_verifying(chat: Chat, person: User, first: str | tuple[str, ...] = "question") -> dict[str, Any]:
    """Type `verify <name>`, choose them if several people match; the first card that asks something: a question,
    or (`first="code_entry"`) the code card, when the person has their own Teams chat with Watchword (`first`: the
    kind, or the kinds, it may be)."""
    since = len(chat.received)
    chat.say(f"verify {person.display_name}")
    card = chat.wait_for(since, "question", "code_entry", "people_choice", "decision", "notice")
    if card_kind(card) == "people_choice":
        chat.shot("people-choice")
        since = len(chat.received)
        shown = chat.page.locator(CARD).filter(has_text="Who is on the phone?").last
        shown.get_by_role("radio", name=re.compile(re.escape(person.user_principal_name))).check()
        shown.get_by_role("button", name="Choose this person").click()
        card = chat.wait_for(since, "question", "code_entry", "decision", "notice")
    assert card_kind(card) in ((first,) if isinstance(first, str) else first), \
        f"no {first} for {person.display_name}: {_details(card)}"
    expect(chat.page.locator(CARD).filter(has_text="Verifying").last).to_contain_text(person.display_name)
    return card


def code_in_their_teams(theirs: Chat) -> str:
    """The code as the person sees it in their own chat with Watchword (the card's text on their page), in the
    groups they read out: "482 913"."""
    theirs.look()
    shown = theirs.page.locator(CARD).filter(has_text=CODE_CARD_TITLE).last
    expect(shown).to_contain_text("read them this code")
    codes = SPOKEN_CODE.findall(shown.inner_text())
    assert len(codes) == 1, f"one code on the card in their Teams, not {codes}"
    theirs.shot("code-shown")
    assert theirs.numbered_by is not None
    theirs.numbered_by.look()  # back to the agent's chat
    return " ".join(codes[0])


def enter_code(chat: Chat, read_out: str | None) -> dict[str, Any]:
    """On the agent's code card, type what the caller read out, or choose "They can't see a code" (None); the
    next card that asks or decides."""
    shown = chat.active_card("Check code")
    expect(shown).to_contain_text("Ask the caller to read it out")
    since = len(chat.received)
    if read_out is None:
        chat.shot("code-card")
        shown.get_by_role("button", name="They can't see a code").click()
    else:
        shown.get_by_placeholder("6 digits").fill(read_out)
        chat.shot("code-typed")
        shown.get_by_role("button", name="Check code").click()
    return chat.wait_for(since, "question", "decision")


def answer_until_decided(chat: Chat, card: dict[str, Any], caller: Callable[[Prompt], str]) -> dict[str, Any]:
    """Read each question on the card, type (or pick) what the caller says, submit; the decision card."""
    asked = 0
    while kind_of(card) == "question":
        prompt = prompt_of(card)
        answer = caller(prompt)
        asked += 1
        shown = chat.active_card("Submit answer")
        expect(shown).to_contain_text(prompt.text)
        button = "Submit answer"
        if prompt.options and answer not in prompt.options:
            button = "Caller doesn't know"  # they recognise none of the options
        elif prompt.options:
            shown.get_by_role("radio", name=answer, exact=True).check()
        else:
            shown.get_by_placeholder("Type their answer as they say it").fill(answer)
        chat.shot(f"question-{asked}{'-follow-up' if prompt.text == FULL_NAME_PROMPT else ''}")
        since = len(chat.received)
        shown.get_by_role("button", name=button).click()
        card = chat.wait_for(since, "question", "decision")
        assert asked <= 12, "the verification never ended"
    return card


def _details(card: dict[str, Any]) -> str:
    return " | ".join(texts(card))


# --- the tests ------------------------------------------------------------------------------------------------
def test_a_genuine_caller_is_verified_and_the_password_shown_once_is_then_removed(world: World, chat: Chat):
    target = world.genuine
    assert target is not None, (f"the engine verified none of {CANDIDATES} people offline in {OFFLINE_RUNS} runs "
                                "with the code from their own Teams and answers devtenant's ground truth accepts: "
                                "genuine callers fail (engine changed?)")
    with own_teams(world, chat, target) as theirs:
        _verify_and_reset(world, chat, theirs, target)


def _verify_and_reset(world: World, chat: Chat, theirs: Chat, target: User) -> None:
    card = start_verifying(chat, target, first="code_entry")
    code = code_in_their_teams(theirs)  # the caller reads it out from their own Teams
    assert code not in chat.page.locator("body").inner_text(), "the agent's chat shows the code"
    assert code.replace(" ", "") not in json.dumps(chat.received), "the code reached the agent's chat"
    card = enter_code(chat, code)  # the agent types it as they hear it, in its two groups
    decision = answer_until_decided(chat, card, perfect_caller(world.truth, target.id))
    assert title_of(decision) == "Verified", _details(decision)
    assert verbs_of(decision) == ["reset", "done"]
    verified = chat.active_card("Reset password")
    expect(verified).to_contain_text(target.display_name)
    expect(verified).to_contain_text("Read out the code shown in their own Teams")  # which factors held
    chat.shot("verified")

    since = len(chat.received)
    verified.get_by_role("button", name="Reset password").click()
    chat.wait_for(since, "reset_confirm")
    confirm = chat.active_card("Yes, reset it")
    expect(confirm).to_contain_text(target.display_name)
    chat.shot("reset-confirm")
    since = len(chat.received)
    confirm.get_by_role("button", name="Yes, reset it").click()
    card = chat.wait_for(since, "password")
    password = next(run["text"] for e in card["body"] if e.get("type") == "RichTextBlock" for run in e["inlines"]
                    if run.get("fontType") == "Monospace")
    assert len(password) >= 12, "not a temporary password"
    shown = chat.active_card("I've passed it on")
    expect(shown).to_contain_text(password)
    chat.shot("password-shown-once")

    since = len(chat.received)
    shown.get_by_role("button", name="I've passed it on").click()
    chat_area = chat.page.locator(".fai-OutputCard")
    expect(chat_area.filter(has_text=password)).to_have_count(0)
    expect(chat.page.locator(CARD).filter(has_text="removed from this chat").last).to_be_visible()
    chat.shot("password-removed")
    assert password not in chat.page.locator("body").inner_text()
    assert not any(title_of(c) == "Delete the password message" for _, c in chat.cards(since)), \
        "the bot could not update the card"
    shown_in = next(e["message"]["messageId"] for e in chat.received
                    if e.get("action") == "createMessage" and password in json.dumps(e))
    updates = [e for e in chat.received[since:]
               if e.get("action") == "updateMessage" and e["message"].get("messageId") == shown_in]
    assert updates, "the password's message was not updated (PUT) in the Playground"
    assert password not in json.dumps(updates[-1])

    # Never kept, the password nor the code: not in the store (conversation state, audit...) nor in the log.
    for path in (world.database, world.database.with_name(world.database.name + "-wal"), world.app_log):
        if path.exists():
            assert password.encode() not in path.read_bytes(), f"the temporary password is in {path.name}"
            assert code.encode() not in path.read_bytes(), f"the one-time code is in {path.name}"
    with sqlite3.connect(world.database) as db:
        rows = db.execute("SELECT action, outcome FROM audit_log WHERE subject = ?", (target.id,)).fetchall()
    assert ("password_reset", "success") in rows and ("password_reset", "passed_on") in rows, rows

    # The person is told in their own Teams, where the code was shown.
    theirs.look()
    expect(theirs.page.locator(CARD).filter(has_text="Your password was reset").last).to_be_visible()
    theirs.shot("told-of-the-reset")


def test_an_impostor_without_the_code_giving_wrong_answers_is_not_verified_and_no_reset_is_offered(
        world: World, chat: Chat):
    target = world.impostor_target
    with own_teams(world, chat, target) as theirs:  # the real person is at their desk; the caller is not them
        start_verifying(chat, target, first="code_entry")
        code = code_in_their_teams(theirs)  # shown only where the impostor cannot see it
        card = enter_code(chat, None)  # "They can't see a code": questions only, at the full bar
        chat.shot("first-question")
        decision = answer_until_decided(chat, card, WrongCaller(world.truth, target.id))
        assert title_of(decision) == "Not verified", _details(decision)
        assert "reset" not in verbs_of(decision)
        shown = chat.page.locator(CARD).filter(has_text="Not verified").last
        expect(shown).to_contain_text(target.display_name)
        expect(chat.page.get_by_role("button", name="Reset password")).to_have_count(0)
        assert code not in chat.page.locator("body").inner_text(), "the agent's chat shows the code"
        chat.shot("not-verified")


def test_the_agent_reads_plain_commands_sends_from_the_keyboard_and_a_cancel_counts_only_what_was_answered(
        world: World, chat: Chat):
    page = chat.page
    welcome = page.locator(CARD).first
    # "<name or email>" used to vanish as an unknown HTML tag: the placeholder is words now.
    expect(welcome).to_contain_text("Commands: verify name or email, cancel, help.")
    target = world.impostor_target  # questions to answer: whether they would pass does not matter here
    since = len(chat.received)
    card = start_verifying(chat, target, first=("question", "code_entry"))
    if card_kind(card) == "code_entry":  # their own Teams, opened by an earlier test, is gone: the code can't be
        card = chat.wait_for(since, "question")  # shown there, and the questions follow the code card by themselves
    # Status text on our cards passes WCAG AA contrast in Teams' theme (the Playground renders its host config).
    problems = accessibility_problems(page, CARD)
    assert not [p for p in problems if p.startswith("color-contrast")], problems
    caller = perfect_caller(world.truth, target.id)
    answered = 0
    while kind_of(card) == "question" and answered < 4:
        prompt = prompt_of(card)
        shown = chat.active_card("Submit answer")
        since = len(chat.received)
        if prompt.options:
            shown.get_by_role("radio", name=caller(prompt), exact=True).check()
            shown.get_by_role("button", name="Submit answer").click()
        else:
            box = shown.get_by_placeholder("Type their answer as they say it")
            box.fill(caller(prompt))
            chat.shot("typed-answer-before-enter")
            box.press("Control+Enter")  # the box's inline action: Teams' renderer runs it on Ctrl+Enter
        card = chat.wait_for(since, "question", "decision")
        answered += 1
        if not prompt.options:
            break  # Enter proven; cancel with this many answered
    if kind_of(card) != "question":
        pytest.skip("the caller was decided before a cancel could be tried")
    chat.shot("question-after-enter")
    since = len(chat.received)
    chat.active_card("Submit answer").get_by_role("button", name="Cancel").click()
    decision = chat.wait_for(since, "decision")
    assert title_of(decision) == "Cancelled"
    counted = f"{answered} question{'s' if answered != 1 else ''} asked."
    expect(page.locator(CARD).filter(has_text=counted).last).to_be_visible()
    chat.shot("cancelled-with-the-right-count")


def test_the_person_picker_shows_each_whole_identity_and_picks_the_one_chosen(world: World, chat: Chat):
    by_first: dict[str, list[User]] = {}
    for user in world.org.users.values():
        if user.account_enabled and not user.is_service_account and user.given_name:
            by_first.setdefault(user.given_name, []).append(user)
    name, namesakes = next((n, us) for n, us in sorted(by_first.items()) if 2 <= len(us) <= 4)
    since = len(chat.received)
    chat.say(f"verify {name}")
    card = chat.wait_for(since, "people_choice", "question", "notice")
    assert kind_of(card) == "people_choice", title_of(card)
    shown = chat.page.locator(CARD).filter(has_text="Who is on the phone?").last
    for person in namesakes:
        # Each choice is labelled with the whole identity (a screen reader reads it), and all of it is on screen:
        # the label wraps instead of being cut off with an ellipsis as a long button title would be.
        identity = " · ".join(x for x in (person.job_title, person.department, person.user_principal_name) if x)
        choice = shown.get_by_role("radio", name=f"{person.display_name} — {identity}", exact=True)
        expect(choice).to_be_visible()
        label = shown.locator("label").filter(has_text=person.user_principal_name).first
        expect(label).to_contain_text(f"{person.display_name} — {identity}")
        clipped = label.evaluate("e => e.scrollWidth > e.clientWidth + 1 || getComputedStyle(e).textOverflow === "
                                 "'ellipsis' && e.scrollWidth > e.clientWidth")
        assert not clipped, f"the choice for {person.display_name} is cut off"
    expect(shown.get_by_role("button", name="This one")).to_have_count(0)
    problems = accessibility_problems(chat.page, CARD)
    assert not [p for p in problems if p.startswith(("color-contrast", "button-name", "label"))], problems
    chat.shot("people-choice-shows-whole-identities")
    picked = namesakes[-1]
    shown.get_by_role("radio", name=re.compile(re.escape(picked.user_principal_name))).check()
    since = len(chat.received)
    shown.get_by_role("button", name="Choose this person").click()
    chat.wait_for(since, "question", "code_entry", "decision", "notice")
    expect(chat.page.locator(CARD).filter(has_text="Verifying").last).to_contain_text(picked.display_name)
    chat.shot("people-choice-picked")
