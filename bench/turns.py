"""Answer turns per second through POST /api/messages: Watchword against a minimal echo agent on the same SDK.

    python -m bench.turns [--conversations 20] [--rounds 8] [--users 2000] [--seconds 60]

Watchword runs as `make run` runs it (`python app.py`, demo mode: devtenant in its process, the store on SQLite in
a temporary directory), in its own process; so does the echo agent (`python -m bench.turns --serve-echo`: an
AgentApplication that answers every message with one message, MemoryStorage, the SDK's JWT middleware in
anonymous mode, as the SDK's samples write it). This process plays Teams: a fake connector (an aiohttp server at
the activities' serviceUrl, taking the bots' replies and card updates) and N helpdesk agents, each in their own
personal chat, sending activities as Teams does.

Each round, every agent first types `verify <someone>` (a new person each time, so no one gets locked out) and
waits for the first question: not measured, since that turn reads the person's Microsoft 365 data through Graph.
Then, measured, all N agents answer concurrently, each question as soon as it is shown, until their verification
is decided: the caller answers from devtenant's ground truth (bench/truth.py), so turns run the product's real
answer matching, store writes (transcript, audit chain) and card updates. Agents type answers in the chat
(default), or with `--answer-with card` type them into the question card and press Submit answer, as Teams
sends it (an Action.Execute invoke). A turn's latency runs from sending the activity until both the HTTP answer
and the bot's reply (the next card) arrived. The echo agent then replays the same schedule (the same number of
turns per agent and round, as concurrently; its SDK logging configured as Watchword's), so its figure is
comparable.

A third agent, the floor agent (`--serve-echo --floor-db FILE`), replays the schedule too: the echo agent plus
only what any answer turn of Watchword must do (conversation state in Watchword's SqlStorage on SQLite, the answer
and its audit row in one transaction, a reply, and an update of the card that asked), none of the product itself.
Its ratio to the echo agent bounds what the target asks of the product's own work (dialogs, matching, cards,
sealing).

Figures compare within one run (ratios), not across machines: these are shared 2-core machines. Prints a report,
then one JSON object as the last line: turns_per_s, echo_turns_per_s, ratio, p50_ms, p99_ms (Watchword's answer
turns), and more: cpu_ratio is the same comparison in server CPU per turn, which other work on the machine
disturbs less than turns per second; floor_ratio is the floor agent's. `--profile FILE` keeps a profile (pstats) of
Watchword's measured phases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from bench.profiling import serve_profiled

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
BOT_ID = "28:watchword-bench"
FLOOR_TENANT = "f100f100-0000-4000-8000-000000000001"
CANCELLED_NOTICE = "Previous verification cancelled"  # a new `verify` ends the one before (bot/agent.py)


# --- the fake connector: where the bots send their replies (the activities' serviceUrl) -------------------------

@dataclass
class Received:
    at: float  # perf_counter when it arrived
    method: str  # POST (a new message) or PUT (an update of one already sent)
    activity: dict[str, Any]


class Connector:
    """Bot Framework's connector, as much of it as a bot's replies need: POST a message (with or without the id
    it replies to), PUT an update. Keeps what each conversation received, and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.inbox: dict[str, list[Received]] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        activity = await request.json()
        self.inbox.setdefault(conversation, []).append(Received(time.perf_counter(), request.method, activity))
        self._event(conversation).set()
        return web.json_response({"id": request.match_info.get("activity") if request.method == "PUT"
                                  else uuid.uuid4().hex})

    def _event(self, conversation: str) -> asyncio.Event:
        return self._arrived.setdefault(conversation, asyncio.Event())

    def mark(self, conversation: str) -> int:
        return len(self.inbox.get(conversation, ()))

    async def next_message(self, conversation: str, since: int, accept: Any, wait_s: float = 30.0) -> Received:
        """The first new message (POST) from index `since` on that `accept(activity)` likes."""
        deadline = time.perf_counter() + wait_s
        while True:
            for received in self.inbox.get(conversation, [])[since:]:
                if received.method == "POST" and accept(received.activity):
                    return received
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"nothing for {conversation} after {wait_s:.0f} s")
            event = self._event(conversation)
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Connector]:
        app = web.Application()
        for path in ("/v3/conversations/{conversation}/activities",
                     "/v3/conversations/{conversation}/activities/{activity}"):
            app.router.add_post(path, self.handle)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield self
        finally:
            await runner.cleanup()


# --- the servers under test ----------------------------------------------------------------------------------

@dataclass
class Server:
    process: asyncio.subprocess.Process
    ready: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.ready["app"])

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


@contextlib.asynccontextmanager
async def server(args: Sequence[str], env: dict[str, str], log_path: Path) -> AsyncIterator[Server]:
    """A server subprocess that prints one JSON ready line with "app"; stopped with SIGTERM on the way out."""
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(*args, cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=log, stdin=asyncio.subprocess.DEVNULL)
        try:
            assert process.stdout is not None
            while True:
                line = await asyncio.wait_for(process.stdout.readline(), 120)
                if not line:
                    raise RuntimeError(f"{args[1:3]} exited without a ready line: see {log_path}")
                with contextlib.suppress(ValueError):
                    ready = json.loads(line)
                    if isinstance(ready, dict) and "app" in ready:
                        break
            yield Server(process, ready)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def echo_application(floor_store: Any = None) -> web.Application:
    """A minimal echo agent on the same SDK: every message gets one message back.

    With `floor_store` (a Watchword store on SQLite) it is the floor agent instead: it does only what any answer
    turn of Watchword must do, and nothing of the product itself: conversation state read from and written to
    Watchword's SqlStorage, the answer and its audit row written in one transaction (Watchword's own
    statements), a reply, and an update of the card that asked. No dialogs, matching, cards, sealing.
    """
    from microsoft_agents.activity import Activity
    from microsoft_agents.authentication.msal import MsalConnectionManager
    from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_middleware, start_agent_process
    from microsoft_agents.hosting.core import (
        AgentApplication,
        AgentAuthConfiguration,
        MemoryStorage,
        TurnContext,
        TurnState,
    )

    from store.audit import AuditEvent  # for the floor agent: imported once, not in every turn
    from verification import TranscriptEntry

    config = AgentAuthConfiguration(anonymous_allowed=True, connection_name="SERVICE_CONNECTION")
    connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": config})
    adapter = CloudAdapter(connection_manager=connections)
    storage = MemoryStorage() if floor_store is None else floor_store.conversation_state
    agent = AgentApplication[TurnState](storage=storage, connection_manager=connections)

    @agent.activity("message")
    async def echo(context: TurnContext, state: TurnState) -> None:
        if floor_store is None:
            await context.send_activity(f"You said: {context.activity.text}")
            return
        session_id, asked = state.conversation.get_value("session"), state.conversation.get_value("asked")
        if session_id is None:
            session_id = str(uuid.uuid4())
            await floor_store.sessions.admit(session_id=session_id, tenant_id=FLOOR_TENANT, agent_id=None,
                                             target_user_id=str(uuid.uuid4()), required_bits=100,
                                             expires_at=datetime.now(UTC) + timedelta(days=1))
        count = int(state.conversation.get_value("count") or 0) + 1
        audit = AuditEvent(action="verification.answer", outcome="recorded", actor="agent:floor",
                           tenant_id=FLOOR_TENANT, details={"session_id": session_id, "source": "chats", "bits": 3})
        now = datetime.now(UTC)
        answered = TranscriptEntry("q1", "chat_partner", "chats", "free_recall", 3.0, 3.0, "correct", 1, now, now)
        await floor_store.sessions.add_entry(session_id, answered, earned_bits=count, audit=audit)
        sent = await context.send_activity(f"You said: {context.activity.text}")
        if asked:
            await context.update_activity(Activity(type="message", id=asked, text="Answered"))
        state.conversation.set_value("session", session_id)
        state.conversation.set_value("count", count)
        state.conversation.set_value("asked", sent.id if sent is not None else None)

    async def messages(request: web.Request) -> web.StreamResponse:
        response = await start_agent_process(request, agent, adapter)
        return response if response is not None else web.Response(status=202)

    app = web.Application(middlewares=[jwt_authorization_middleware])
    app["agent_configuration"] = config
    app.router.add_post("/api/messages", messages)
    return app


async def serve_echo(port: int, floor_db: str | None = None) -> None:
    floor_store = None
    if floor_db:
        from store import open_store

        floor_store = await open_store(f"sqlite+aiosqlite:///{floor_db}")
        await floor_store.tenants.connect(FLOOR_TENANT, display_name="Floor", granted_permissions=[])
    runner = web.AppRunner(echo_application(floor_store), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(json.dumps({"app": f"http://127.0.0.1:{runner.addresses[0][1]}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    if floor_store is not None:
        await floor_store.close()


# --- Teams' side: the agents ----------------------------------------------------------------------------------

@dataclass
class Agent:
    """A helpdesk agent in their personal chat with the bot."""

    user_id: str
    name: str
    conversation: str
    tenant_id: str

    def activity(self, service_url: str, text: str) -> dict[str, Any]:
        return {**self._envelope(service_url), "type": "message", "text": text}

    def click(self, service_url: str, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        """A card button pressed in Teams: the Action.Execute invoke (Universal Actions)."""
        value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
        return {**self._envelope(service_url), "type": "invoke", "name": "adaptiveCard/action", "value": value}

    def _envelope(self, service_url: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex, "timestamp": datetime.now(UTC).isoformat(),
            "channelId": "msteams", "serviceUrl": service_url, "locale": "en-GB",
            "from": {"id": f"29:{self.user_id}", "name": self.name, "aadObjectId": self.user_id},
            "recipient": {"id": BOT_ID, "name": "Watchword"},
            "conversation": {"id": self.conversation, "conversationType": "personal", "tenantId": self.tenant_id},
            "channelData": {"tenant": {"id": self.tenant_id}},
        }


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)  # seconds per measured turn
    measured_s: float = 0.0  # wall time of the measured phases
    cpu_s: float = 0.0  # the server's CPU time during them
    schedule: list[list[int]] = field(default_factory=list)  # measured turns per round, per agent
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def turns(self) -> int:
        return len(self.latencies)

    def per_s(self) -> float:
        return self.turns / self.measured_s if self.measured_s else 0.0

    def ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def turn(http: ClientSession, connector: Connector, bot: str, agent: Agent, text: str, accept: Any,
               figures: Figures | None, activity: dict[str, Any] | None = None) -> Received:
    """Send one message (`text`, or `activity` when given); the reply `accept` likes. Measured into `figures` (when
    given) from send until both the HTTP answer and that reply have arrived."""
    since = connector.mark(agent.conversation)
    started = time.perf_counter()
    async with http.post(f"{bot}/api/messages", json=activity or agent.activity(connector.url, text)) as response:
        await response.read()
        status = response.status
    answered = time.perf_counter()
    if status >= 300:
        raise RuntimeError(f"/api/messages answered {status}")
    reply = await connector.next_message(agent.conversation, since, accept)
    if figures is not None:
        figures.latencies.append(max(answered, reply.at) - started)
    return reply


async def run_watchword(args: argparse.Namespace, tmp: Path, connector: Connector, http: ClientSession) -> Figures:
    # Imported here, not at the top: the echo agent's process runs this module too, and stays lean.
    from bench.teams_client import actions, cards_in, kind_of, perfect_caller, prompt_of, title_of, verbs_of
    from bench.truth import GroundTruth
    from devtenant import playground
    from devtenant.generate import generate_org
    from verification import Policy

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env.update({"WATCHWORD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'watchword.db'}", "WATCHWORD_DEMO": "true",
                "WATCHWORD_DEMO_USERS": str(args.users), "WATCHWORD_DEMO_SEED": str(args.seed)})
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # devtenant anchors its org there
    org = await asyncio.to_thread(generate_org, args.seed, args.users, anchor)
    truth = GroundTruth(org, datetime.now(UTC), Policy())
    helpdesk = [org.users[u] for u in org.transitive_user_members(org.helpdesk_group_id)]
    people = [u for u in helpdesk if u.account_enabled and not u.is_service_account]
    if len(people) < args.conversations:
        raise SystemExit(f"bench.turns: only {len(people)} helpdesk agents in a {args.users}-user tenant; "
                         f"use fewer --conversations or more --users")
    agents = [Agent(u.id, u.display_name, f"a:bench-{u.id}", org.tenant_id) for u in people[:args.conversations]]
    targets = iter(playground.verifiable_people(org, exclude=[a.user_id for a in agents]))
    figures = Figures()

    def card(activity: dict[str, Any]) -> dict[str, Any]:
        return (cards_in(activity) or [{}])[0]

    def first_card(activity: dict[str, Any]) -> bool:  # after "Previous verification cancelled", when it says so
        shown = card(activity)
        return kind_of(shown) in ("question", "decision", "notice") and title_of(shown) != CANCELLED_NOTICE

    def next_card(activity: dict[str, Any]) -> bool:  # or "Waiting for <manager>": the questions could not do it
        shown = card(activity)
        return kind_of(shown) in ("question", "decision") or "check" in verbs_of(shown)

    async def verify(agent: Agent, warm: bool) -> tuple[Agent, str, dict[str, Any]] | None:
        for _ in range(10):  # someone the product refuses up front (risky sign-ins, thin data...): the next one
            target = next(targets, None)
            if target is None:
                raise SystemExit("bench.turns: everyone in the tenant was verified once already: use more --users")
            reply = await turn(http, connector, bot.url, agent, f"verify {target.user_principal_name}", first_card,
                               None)
            if kind_of(card(reply.activity)) == "question":
                return agent, target.id, card(reply.activity)
            if not warm:
                figures.outcomes[f"refused before questions: {title_of(card(reply.activity))}"] += 1
        return None

    async def answer(agent: Agent, target_id: str, question: dict[str, Any], warm: bool) -> int:
        caller, shown, count = perfect_caller(truth, target_id), question, 0
        while kind_of(shown) == "question":
            said = caller(prompt_of(shown))
            click = None
            if args.answer_with == "card":  # typed into the card's box, then "Submit answer"
                data = next(a["data"] for a in actions(shown) if a.get("verb") == "answer")
                click = agent.click(connector.url, "answer", {**data, "answer": said})
            reply = await turn(http, connector, bot.url, agent, said, next_card, None if warm else figures, click)
            shown, count = card(reply.activity), count + 1
        if not warm:
            figures.outcomes[title_of(shown)] += 1
        return count

    command = [sys.executable, "app.py", "--port", "0", "--no-playground"]
    if args.profile:  # the same app, with cProfile switched on for the measured phases only (SIGUSR1/SIGUSR2)
        command = [sys.executable, "-m", "bench.turns", "--serve-profiled", args.profile]
    async with server(command, env, tmp / "watchword.log") as bot:
        started = time.perf_counter()
        for round_no in range(args.rounds + 1):  # round 0 warms up, uncounted
            warm = round_no == 0
            if not warm and time.perf_counter() - started > args.seconds:
                break
            ready = [r for r in await asyncio.gather(*(verify(a, warm) for a in agents)) if r is not None]
            if args.profile and not warm:
                bot.process.send_signal(signal.SIGUSR1)
            cpu, wall = bot.cpu_s(), time.perf_counter()
            counts = await asyncio.gather(*(answer(*r, warm) for r in ready))
            if args.profile and not warm:
                bot.process.send_signal(signal.SIGUSR2)
            if not warm:
                figures.measured_s += time.perf_counter() - wall
                figures.cpu_s += bot.cpu_s() - cpu
                figures.schedule.append(list(counts))
    return figures


async def run_echo(schedule: list[list[int]], tmp: Path, connector: Connector, http: ClientSession,
                   floor: bool = False) -> Figures:
    """The echo agent (or, with `floor`, the floor agent: see echo_application) on Watchword's schedule."""
    figures = Figures(schedule=schedule)
    agents = [Agent(str(uuid.uuid4()), f"Agent {i}", f"a:echo-{i}", str(uuid.uuid4()))
              for i in range(max((len(r) for r in schedule), default=0))]
    command = [sys.executable, "-m", "bench.turns", "--serve-echo"]
    if floor:
        command += ["--floor-db", str(tmp / "floor.db")]
    async with server(command, dict(os.environ), tmp / ("floor.log" if floor else "echo.log")) as bot:

        async def talk(agent: Agent, turns: int, measured: Figures | None) -> None:
            for i in range(turns):
                await turn(http, connector, bot.url, agent, f"answer {i}",
                           lambda a: str(a.get("text", "")).startswith("You said"), measured)

        await asyncio.gather(*(talk(a, 5, None) for a in agents))  # warm-up, uncounted
        for counts in schedule:
            cpu, wall = bot.cpu_s(), time.perf_counter()
            await asyncio.gather(*(talk(a, n, figures) for a, n in zip(agents, counts, strict=False)))
            figures.measured_s += time.perf_counter() - wall
            figures.cpu_s += bot.cpu_s() - cpu
    return figures


# --- the run -------------------------------------------------------------------------------------------------

async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-turns-") as tmp_dir:
        tmp = Path(tmp_dir)
        limit = max(64, 4 * args.conversations)
        async with Connector().serving() as connector, ClientSession(
                connector=TCPConnector(limit=limit), timeout=ClientTimeout(total=60)) as http:
            watchword = await run_watchword(args, tmp, connector, http)
            echo = await run_echo(watchword.schedule, tmp, connector, http)
            floor = await run_echo(watchword.schedule, tmp, connector, http, floor=True)
    return figures_of(args, watchword, echo, floor)


def figures_of(args: argparse.Namespace, watchword: Figures, echo: Figures, floor: Figures) -> dict[str, Any]:
    ww, ec, fl = watchword.per_s(), echo.per_s(), floor.per_s()
    return {
        "turns_per_s": round(ww, 1),
        "echo_turns_per_s": round(ec, 1),
        "ratio": round(ww / ec, 3) if ec else None,
        "target_ratio": TARGET_RATIO,
        "p50_ms": round(watchword.ms(0.50), 1),
        "p99_ms": round(watchword.ms(0.99), 1),
        "echo_p50_ms": round(echo.ms(0.50), 1),
        "echo_p99_ms": round(echo.ms(0.99), 1),
        "cpu_ms_per_turn": round(1000 * watchword.cpu_s / watchword.turns, 2) if watchword.turns else None,
        "echo_cpu_ms_per_turn": round(1000 * echo.cpu_s / echo.turns, 2) if echo.turns else None,
        # The same comparison in server CPU per turn: steadier than turns/s when the machine is shared.
        "cpu_ratio": round(echo.cpu_s / echo.turns / (watchword.cpu_s / watchword.turns), 3)
        if echo.turns and watchword.turns and watchword.cpu_s else None,
        # The floor agent (echo_application): what any answer turn must do, and nothing of the product itself.
        "floor_turns_per_s": round(fl, 1),
        "floor_ratio": round(fl / ec, 3) if ec else None,
        "floor_p50_ms": round(floor.ms(0.50), 1),
        "floor_cpu_ms_per_turn": round(1000 * floor.cpu_s / floor.turns, 2) if floor.turns else None,
        "turns": watchword.turns,
        "echo_turns": echo.turns,
        "conversations": args.conversations,
        "answer_with": args.answer_with,
        "rounds": len(watchword.schedule),
        "users": args.users,
        "outcomes": dict(watchword.outcomes),
    }


def report(f: dict[str, Any]) -> None:
    print(f"Answer turns through /api/messages, {f['conversations']} agents answering at once in the "
          f"{f['answer_with']}, {f['rounds']} rounds (store on SQLite; replies to a local fake connector)")
    print(f"  Watchword   {f['turns_per_s']:7.1f} turns/s   p50 {f['p50_ms']:6.1f} ms   p99 {f['p99_ms']:6.1f} ms   "
          f"{f['cpu_ms_per_turn']} ms CPU/turn   ({f['turns']} turns)")
    print(f"  echo agent  {f['echo_turns_per_s']:7.1f} turns/s   p50 {f['echo_p50_ms']:6.1f} ms   "
          f"p99 {f['echo_p99_ms']:6.1f} ms   {f['echo_cpu_ms_per_turn']} ms CPU/turn   ({f['echo_turns']} turns)")
    print(f"  floor agent {f['floor_turns_per_s']:7.1f} turns/s   p50 {f['floor_p50_ms']:6.1f} ms   "
          f"{f['floor_cpu_ms_per_turn']} ms CPU/turn   (state, answer + audit row, reply, card update: no product)")
    verdict = "meets" if f["ratio"] is not None and f["ratio"] >= TARGET_RATIO else "MISSES"
    print(f"  ratio {f['ratio']} ({verdict} the target of {TARGET_RATIO}); in server CPU per turn {f['cpu_ratio']}")
    print(f"  the floor agent's own ratio: {f['floor_ratio']}")
    print(f"  verifications: {', '.join(f'{k} {v}' for k, v in sorted(f['outcomes'].items()))}")


def serve_watchword() -> int:
    """`python app.py --port 0 --no-playground`: Watchword as this bench serves it."""
    import app

    return app.main(["--port", "0", "--no-playground"])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.turns", description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=20, help="helpdesk agents answering at once")
    p.add_argument("--rounds", type=int, default=8, help="measured rounds (each: verify, then answer to the end)")
    p.add_argument("--seconds", type=float, default=60.0, help="start no new round after this long")
    p.add_argument("--users", type=int, default=2000, help="devtenant's size (it needs enough helpdesk agents)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--answer-with", choices=("chat", "card"), default="chat",
                   help="how agents answer: typed in the chat (the bot then also updates the card that asked: two "
                        "calls to Teams per turn) or in the card and Submit (Action.Execute: the card's update rides "
                        "in the invoke's answer, one call to Teams)")
    p.add_argument("--profile", metavar="FILE", help="write a profile of Watchword's measured phases to FILE "
                   "(pstats format: yappi's CPU time of every thread when importable, else cProfile); profiling "
                   "slows it down, so its figures are not comparable")
    p.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)  # the echo agent's process
    p.add_argument("--floor-db", help=argparse.SUPPRESS)  # with --serve-echo: the floor agent, its SQLite file
    p.add_argument("--serve-profiled", metavar="FILE", help=argparse.SUPPRESS)  # Watchword's, with --profile
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.serve_profiled:
        return serve_profiled(args.serve_profiled, serve_watchword)
    if args.serve_echo:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("microsoft_agents").setLevel(logging.WARNING)  # as app.py configures Watchword's
        asyncio.run(serve_echo(0, args.floor_db))
        return 0
    if args.profile:
        args.profile = os.path.abspath(args.profile)  # the server runs elsewhere
    figures = asyncio.run(bench(args))
    report(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
