"""python -m bench.faults: verifications on the worst day, measured from outside.

devtenant runs in its own process with faults (default 20% of Graph requests fail as Graph's do) and latency
(200 ms); two Watchword instances share one database, each turn going to either (no sticky sessions). Helpdesk
agents verify people and reset the password when verified, answering as the real employee would. Meanwhile:
- instances are killed with SIGKILL at random moments and started again, and some kills are aimed at the reset:
  100-400 ms after "Reset password" is confirmed, around Graph's PATCH (200 ms away) and the record of it (the
  first delivery of that click only: the agent's next try meets the random kills like any other turn);
- a burst: six agents start `verify` of one person at once, across both instances.

The agent reads a turn's whole reply and acts on its last card (a notice such as "I'm asking their manager too"
can come before the question). "Questions complete: checking Microsoft's sign-in logs" is not an end: the agent
keeps the caller on the line for the decision the card says follows "within N seconds" (and 10 s more), then
clicks its Check again. Told to "use
the buttons on the latest question card", it answers the newest question card in the chat. A turn whose instance
died under it (connection lost) is delivered once more with the same activity id on the other instance, whatever
the dead turn already showed (Teams got no answer, so it redelivers); after that, seeing no reply, the agent
sends it again (types it again, clicks again) as a new activity, as long as it keeps the caller waiting for a
reply: at least three tries in all, and more while the first was under PATIENCE_S ago (a helpdesk agent with a
caller on the line tries a command that got no answer again for a couple of minutes before giving up).
Told "I'm still working on your previous message" or "Watchword is busy", it does
what that says: waits a moment and sends the message (or clicks the button) again, up to three times
(`busy_replies` counts those replies); told a reset has not finished and to "reset again after 02:13", it keeps the
caller on the line until then (at most 5 minutes). Only after that, or with no reply at all, is a verification
stuck. `passwords_not_shown` (no target yet) counts resets that ended "This password was already reset ... Nothing
more was done" for an agent who never saw the password: a kill after the reset was recorded and before its card.

Counted at the end, from the replies, the audit log and Graph itself (each target's lastPasswordChangeDateTime):
verifications, completed_or_ended_clearly (a decision, or a card that says why it ended), stuck (no clear end),
server_errors (5xx from /api/messages), resets_unrecorded (a password changed in Entra with no password_reset
row for that person), resets_duplicated (more than one successful reset recorded for one verification),
attempts_over_limit (question sessions the burst opened beyond the policy's attempts a day), audit_chain_ok.
Targets: stuck 0, server_errors 0, resets_unrecorded 0, resets_duplicated 0, attempts_over_limit 0, chain ok.

`--trail FILE` (or `-` for stderr) keeps, for each verification counted stuck (`--trail-all`: each one), what its
agent sent (which instance, the activity's id), what came back (the HTTP status, an invoke's answer, each message
and card update the chat received) and the kills, with times in seconds from the start of the run, plus the
instances' log lines that name its activities: enough to explain why it did not end.

Inbound Bot Framework tokens are signed by a key this benchmark makes; each instance (`--serve`) trusts it in
place of Bot Framework's published keys, and its replies' outbound token is a stand-in: the only changes to the
product, both at the SDK's authentication seam.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
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

from aiohttp import ClientError, ClientSession, ClientTimeout

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "BENCH_FAULTS_JWK"  # the public key the served instances trust for inbound tokens
KID = "bench-faults"
BF_ISSUER = "https://api.botframework.com"
REPLY_WAIT_S = 45.0
# Watchword's replies that say nothing was done with a message and to send it again (bot/agent.py `_busy`): an agent
# reads them, waits a moment and sends it again.
BUSY_TITLES = ("I'm still working on your previous message", "Watchword is busy")
BUSY_RESENDS, RESEND_AFTER_S = 3, 3.0
# How long an agent keeps sending again a message that got no reply (its instance died under it) before giving up:
# at least three tries, more while the first was under this long ago, never more than MOST_TRIES.
PATIENCE_S, MOST_TRIES = 120.0, 8
MOST_WAIT_S = 300.0  # the longest an agent keeps a caller waiting for the time a reply names ("reset again after")
# Notices sent before the first card of a new verification: the reply the agent waits for comes after them.
PREAMBLES = ("Previous verification cancelled", "Previous verification closed")
# A manager's card that could not be sent is told after the turn that asked it (dialogs/proof_dialog.py): it may land
# among a later turn's replies, and asks nothing of the agent.
UNSENT = "I couldn't ask "
# The interim card when the questions are done and the sign-in logs are not (dialogs/proof_dialog.py): nothing is
# decided yet; the decision "follows here by itself, within N seconds at most". The agent keeps the caller on the
# line that long (and a little more), then clicks the card's Check again, as a real one would; at most
# DECISION_WAIT_S each time.
CHECKING_SIGN_INS, DECISION_WAIT_S, DECISION_MARGIN_S = "Questions complete: checking", 120.0, 10.0
# What a click on a question card the dialog no longer asks gets (dialogs/question_dialog.py): the agent answers the
# newest question card in the chat instead.
LATEST_QUESTION = "Use the buttons on the latest question card"
CLEAR_ENDS = ("decision", "notice", "password")


# --- the served instance: app.py, trusting this benchmark's token key ---------------------------------------
def serve() -> int:
    import jwt
    from microsoft_agents.authentication.msal import MsalAuth
    from microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator import JwtTokenValidator

    import app

    public = jwt.PyJWK(json.loads(os.environ[KEY_ENV]))

    class BenchKeys:
        async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> jwt.PyJWK:
            if header.get("kid") != KID:
                raise jwt.PyJWKClientError("no such key")
            return public

    async def outbound_token(self: Any, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return "bench-outbound-token"

    JwtTokenValidator._jwk_client_manager = BenchKeys()  # type: ignore[assignment]
    MsalAuth.get_access_token = outbound_token  # type: ignore[method-assign]
    return app.main(["--port", "0"])


# --- the driver -----------------------------------------------------------------------------------------------
@dataclass
class Figures:
    verifications: int = 0
    ended_clearly: int = 0
    stuck: int = 0
    server_errors: int = 0
    kills: int = 0
    aimed_kills: int = 0
    retries: int = 0
    busy_replies: int = 0  # "still working on your previous message" or "busy": the agent sent it again
    passwords_not_shown: int = 0  # resets that ended "already reset" although this agent never saw the password
    titles: Counter[str] = field(default_factory=Counter)


@dataclass
class Trail:
    """What one simulated agent sent and received during one verification (times: seconds since the run began)."""

    agent: str
    person: str
    events: list[dict[str, Any]] = field(default_factory=list)
    activity_ids: list[str] = field(default_factory=list)
    seen: int = 0  # how much of the chat's inbox is noted already
    stuck: str = ""  # why it was counted stuck ("" when it was not)


@dataclass
class Instance:
    process: asyncio.subprocess.Process
    url: str
    log: Path


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.args, self.tmp = args, tmp
        self.rng = random.Random(args.seed)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.instances: list[Instance | None] = [None] * args.instances
        self.figures = Figures()
        self.ready: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self.stopping = False
        self.spawned: list[asyncio.subprocess.Process] = []  # every instance ever started, to stop them all
        self.began = time.perf_counter()
        self.began_at = datetime.now(UTC)
        self.kills: list[dict[str, Any]] = []  # when each instance was killed, and whether at a reset
        self.trails: list[Trail] = []
        self.logs: list[Path] = []  # every instance's log, to find the lines that name a trail's activities

    def now(self) -> float:
        return round(time.perf_counter() - self.began, 3)

    def note(self, trail: Trail | None, what: str, **details: Any) -> None:
        if trail is not None:
            trail.events.append({"t": self.now(), "what": what, **details})

    def note_arrivals(self, trail: Trail | None, connector: Any, conversation: str) -> None:
        """Note what the chat received since the last note: each message (POST) and card update (PUT)."""
        from bench.teams_client import cards_in, kind_of, texts, title_of

        if trail is None:
            return
        inbox = connector.inbox.get(conversation, [])
        for received in inbox[trail.seen:]:
            card = (cards_in(received.activity) or [{}])[0]
            trail.events.append({"t": round(received.at - self.began, 3), "what": "received",
                                 "method": received.method, "kind": kind_of(card), "title": title_of(card),
                                 "says": " | ".join(list(texts(card))[1:])[:300] or received.activity.get("text")})
        trail.seen = len(inbox)

    # tokens and activities
    def token(self, service_url: str) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": BF_ISSUER, "aud": self.ready["client_id"], "iat": now - 60, "nbf": now - 60,
                  "exp": now + 3600, "serviceurl": service_url}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def public_jwk(self) -> str:
        import jwt

        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return json.dumps({**jwk, "kid": KID, "use": "sig", "alg": "RS256"})

    # instances
    async def start(self, index: int) -> None:
        from bench.turns import ROOT as REPO

        log = self.tmp / f"instance-{index}-{uuid.uuid4().hex[:6]}.log"
        self.logs.append(log)
        with log.open("w") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.faults", "--serve", cwd=str(REPO), env=self.env,
                stdout=asyncio.subprocess.PIPE, stderr=out, stdin=asyncio.subprocess.DEVNULL)
        self.spawned.append(process)
        assert process.stdout is not None
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            if not line:
                raise RuntimeError(f"instance {index} exited without a ready line: see {log}")
            with contextlib.suppress(ValueError):
                ready = json.loads(line)
                if isinstance(ready, dict) and "app" in ready:
                    break
        self.instances[index] = Instance(process, str(ready["app"]), log)

    async def kill(self, index: int, aimed: bool = False) -> None:
        instance = self.instances[index]
        if instance is None:
            return
        self.instances[index] = None
        with contextlib.suppress(ProcessLookupError):
            instance.process.send_signal(signal.SIGKILL)
        await instance.process.wait()
        self.figures.kills += 1
        self.kills.append({"t": self.now(), "what": "killed", "instance": index, "aimed": aimed})
        await asyncio.sleep(0.5)
        if not self.stopping:
            await self.start(index)

    async def killer(self) -> None:
        """Kill an instance every few seconds (never the last one standing), and restart it."""
        while not self.stopping:
            await asyncio.sleep(self.rng.uniform(*self.args.kill_every_s))
            alive = [i for i, inst in enumerate(self.instances) if inst is not None]
            if len(alive) > 1 and not self.stopping:
                await self.kill(self.rng.choice(alive))

    def pick(self) -> tuple[int, Instance] | None:
        alive = [(i, inst) for i, inst in enumerate(self.instances) if inst is not None]
        return self.rng.choice(alive) if alive else None


Devtenant = tuple[dict[str, Any], asyncio.subprocess.Process]


@contextlib.asynccontextmanager
async def devtenant(args: argparse.Namespace, tmp: Path, ready_within_s: float = 180,
                    extra: Sequence[str] = ()) -> AsyncIterator[Devtenant]:
    """devtenant in its own process; `ready_within_s` for it to generate its organisation (50,000 people on a
    busy machine take minutes); `extra`: more of devtenant's options (bench.load's --graph-profile)."""
    log = tmp / "devtenant.log"
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devtenant", "--port", "0", "--seed", str(args.seed), "--users", str(args.users),
            "--latency-ms", str(args.latency_ms), "--fault-rate", str(args.fault_rate), *extra, cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=out, stdin=asyncio.subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), ready_within_s))
        yield ready, process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def send(bench: Bench, http: ClientSession, connector: Any, agent: Any, activity: dict[str, Any],
               accept: Any, *, aim_kill: bool = False, trail: Trail | None = None) -> list[dict[str, Any]] | None:
    """One turn to a random live instance, and the cards of its reply that `accept` likes (the agent acts on the
    last), or None when nothing came (stuck).
    Sent again to another when the instance died under it (as the agent would, seeing no reply), at most three
    times; and sent again, as the reply asks, when Watchword says it is still working on the previous message or
    busy (what a real agent does: read it, wait a moment, send it again), at most BUSY_RESENDS times."""
    from bench.teams_client import title_of

    attempt = resent = 0
    first = time.perf_counter()
    redeliver: str | None = None  # the id of a delivery whose instance died under it: Teams delivers it again

    def patient() -> bool:
        return attempt < 3 or (attempt < MOST_TRIES and time.perf_counter() - first < PATIENCE_S)

    while patient():
        picked = bench.pick()
        if picked is None:
            await asyncio.sleep(1.0)
            attempt += 1
            continue
        index, instance = picked
        if redeliver is None:  # a redelivery's reply is read from where the first delivery's began
            since = connector.mark(agent.conversation)
        body = {**activity, "id": redeliver or uuid.uuid4().hex, "serviceUrl": connector.url}
        headers = {"Authorization": f"Bearer {bench.token(connector.url)}"}
        bench.note_arrivals(trail, connector, agent.conversation)
        bench.note(trail, "sent", attempt=attempt, resent=resent, instance=index, id=body["id"], type=body["type"],
                   said=_said(body), redelivered=redeliver is not None)
        if trail is not None:
            trail.activity_ids.append(body["id"])
        killing = None
        if aim_kill and attempt == 0 and resent == 0:  # around the PATCH (Graph is latency_ms away) and its record
            killing = asyncio.create_task(_aimed_kill(bench, index))
        shown: list[dict[str, Any]] | None = None
        try:
            async with http.post(f"{instance.url}/api/messages", json=body, headers=headers) as response:
                answer = await response.read()
                bench.note(trail, "http", status=response.status, body=answer[:300].decode("utf-8", "replace"))
                if response.status >= 500:
                    bench.figures.server_errors += 1
        except (ClientError, TimeoutError) as err:
            bench.note(trail, "connection lost", error=type(err).__name__)
            bench.figures.retries += 1
            if killing is not None:
                await killing
            await asyncio.sleep(1.0)
            if redeliver is None and attempt == 0:
                # Teams got no answer to this delivery: it delivers it once more, with the same id, whatever the
                # dead turn already showed (its state may not be saved: the redelivery is what makes it so)
                attempt += 1
                redeliver = body["id"]
                continue
            # the turn may have been done before the process died: look for its reply before sending it again
            with contextlib.suppress(TimeoutError):
                await connector.next_message(agent.conversation, since, accept, 3.0)
                shown = replies(connector, agent.conversation, since, accept)
            bench.note_arrivals(trail, connector, agent.conversation)
            if not shown:
                attempt += 1
                redeliver = None  # Teams delivered it again already: now the agent sends it again
                continue
            redeliver = None
        else:
            redeliver = None  # answered: whatever comes next is the agent's own new message
            if killing is not None:
                await killing
            if busy_answer(answer):  # a clicked card's answer, shown on the card: nothing done, click it again
                shown = [{"body": [{"type": "TextBlock", "text": BUSY_TITLES[0]}]}]
            else:
                try:  # the turn is over (its HTTP answer came): its last card is what the agent acts on
                    shown = replies(connector, agent.conversation, since, accept)
                    if not shown:
                        await connector.next_message(agent.conversation, since, accept, REPLY_WAIT_S)
                        shown = replies(connector, agent.conversation, since, accept)
                except TimeoutError:
                    bench.note_arrivals(trail, connector, agent.conversation)
                    bench.note(trail, "no reply", waited_s=REPLY_WAIT_S)
                    attempt += 1
                    redeliver = None
                    bench.figures.retries += patient()
                    continue
                bench.note_arrivals(trail, connector, agent.conversation)
        assert shown
        if not title_of(shown[-1]).startswith(BUSY_TITLES):
            return shown
        bench.figures.busy_replies += 1
        if resent == BUSY_RESENDS:
            bench.note(trail, "gave up", after_busy_replies=resent + 1)
            return None
        resent += 1
        await asyncio.sleep(RESEND_AFTER_S)
    return None


def replies(connector: Any, conversation: str, since: int, accept: Any) -> list[dict[str, Any]]:
    """The cards the chat received from index `since` on that `accept` likes, in order: a turn can send several (a
    notice, then the next question; "I'm asking their manager too", then the first question), and the agent acts
    on the one that asks something of them, the last, having read the others."""
    from bench.teams_client import cards_in

    return [(cards_in(r.activity) or [{}])[0] for r in connector.inbox.get(conversation, [])[since:]
            if r.method == "POST" and accept(r.activity)]


def reset_again_after(cards: list[dict[str, Any]], now: datetime) -> datetime | None:
    """When a reply says to reset again only after a time ("A reset of this password has not finished ... reset
    again after 02:13 UTC"), the first minute after it, as an agent reads it; else None."""
    from bench.teams_client import texts

    for card in cards:
        for line in texts(card):
            found = re.search(r"reset again after (\d{1,2}):(\d{2})", line)
            if found:
                at = now.replace(hour=int(found[1]), minute=int(found[2]), second=0, microsecond=0)
                if at < now - timedelta(hours=12):  # past midnight
                    at += timedelta(days=1)
                return at + timedelta(minutes=1)
    return None


def _after_last(connector: Any, conversation: str, title: str) -> int:
    """The inbox index just after the chat's last message whose card's title starts with `title`."""
    from bench.teams_client import cards_in, title_of

    inbox = connector.inbox.get(conversation, [])
    for at in range(len(inbox) - 1, -1, -1):
        if inbox[at].method == "POST" and title_of((cards_in(inbox[at].activity) or [{}])[0]).startswith(title):
            return at + 1
    return len(inbox)


def busy_answer(answer: bytes) -> bool:
    """An invoke's answer that says nothing was done with the click (Watchword still working, or busy)."""
    with contextlib.suppress(ValueError):
        value = json.loads(answer or b"null")
        return isinstance(value, dict) and str(value.get("value") or "").startswith(BUSY_TITLES)
    return False


def _said(activity: dict[str, Any]) -> str:
    """What the agent did, as the trail shows it: the text typed, or the button clicked."""
    if activity.get("type") == "invoke":
        return f"clicked {((activity.get('value') or {}).get('action') or {}).get('verb')}"
    return f"typed {activity.get('text')!r}"


async def _aimed_kill(bench: Bench, index: int) -> None:
    await asyncio.sleep(bench.rng.uniform(0.1, 0.4))
    alive = [i for i, inst in enumerate(bench.instances) if inst is not None]
    if index in alive and len(alive) > 1:
        bench.figures.aimed_kills += 1
        await bench.kill(index, aimed=True)


async def one_verification(bench: Bench, http: ClientSession, connector: Any, agent: Any, person: Any,
                           truth: Any, *, reset: bool = True) -> None:
    from bench.teams_client import actions, kind_of, perfect_caller, prompt_of, texts, title_of

    def accept(activity: dict[str, Any]) -> bool:
        from bench.teams_client import cards_in

        shown = (cards_in(activity) or [{}])[0]
        return kind_of(shown) in ("question", "decision", "notice", "reset_confirm", "password") \
            and title_of(shown) not in PREAMBLES and not title_of(shown).startswith(UNSENT)

    bench.figures.verifications += 1
    trail = Trail(agent.name, person.user_principal_name, seen=connector.mark(agent.conversation))
    bench.trails.append(trail)
    turn = await send(bench, http, connector, agent, agent.activity("", f"verify {person.user_principal_name}"),
                      accept, trail=trail)
    caller = perfect_caller(truth, person.id)
    for _ in range(16):
        if turn is None:
            bench.figures.stuck += 1
            trail.stuck = "no reply it recognised, after trying again for as long as an agent would"
            return
        if title_of(turn[-1]).startswith(CHECKING_SIGN_INS):  # not an end: the decision follows in the chat
            interim = turn[-1]
            after = _after_last(connector, agent.conversation, CHECKING_SIGN_INS)
            said = re.search(r"within (\d+) seconds", " ".join(texts(interim)))
            wait_s = min(float(said[1]) + DECISION_MARGIN_S, DECISION_WAIT_S) if said else DECISION_WAIT_S
            bench.note(trail, "waits", for_decision_s=wait_s)
            try:
                await connector.next_message(agent.conversation, after, accept, wait_s)
                turn = replies(connector, agent.conversation, after, accept)
            except TimeoutError:  # not by itself as the card said: Check again
                check = {a.get("verb") or (a.get("data") or {}).get("verb"): a for a in actions(interim)}.get("check")
                if check is None:
                    bench.figures.stuck += 1
                    trail.stuck = f"no decision within {wait_s:.0f} s of 'Questions complete', and no Check again"
                    return
                bench.note(trail, "checks again")
                turn = await send(bench, http, connector, agent, agent.click("", "check", check["data"]), accept,
                                  trail=trail)
            bench.note_arrivals(trail, connector, agent.conversation)
            continue
        if any(line.startswith(LATEST_QUESTION) for line in texts(turn[-1])):  # answer the newest question card
            latest = [c for c in replies(connector, agent.conversation, 0, accept) if kind_of(c) == "question"]
            turn = latest[-1:] or turn
            if not latest:
                bench.figures.stuck += 1
                trail.stuck = "told to use the latest question card, and there is none"
                return
        shown = turn[-1]
        kind = kind_of(shown)
        verbs = {a.get("verb") or (a.get("data") or {}).get("verb"): a for a in actions(shown)}
        if kind == "question":
            said = caller(prompt_of(shown))
            data = verbs["answer"]["data"]
            turn = await send(bench, http, connector, agent, agent.click("", "answer", {**data, "answer": said}),
                              accept, trail=trail)
        elif "reset" in verbs and reset:  # Verified: reset the password
            turn = await send(bench, http, connector, agent, agent.click("", "reset", verbs["reset"]["data"]), accept,
                              trail=trail)
        elif "reset_confirm" in verbs:
            after = reset_again_after(turn, datetime.now(UTC))
            if after is not None:  # as the reply says: the agent keeps the caller on the line until then
                bench.note(trail, "waits", until=after.isoformat(timespec="seconds"))
                await asyncio.sleep(min(max((after - datetime.now(UTC)).total_seconds(), 0.0), MOST_WAIT_S))
            turn = await send(bench, http, connector, agent,
                              agent.click("", "reset_confirm", verbs["reset_confirm"]["data"]), accept,
                              aim_kill=bench.rng.random() < bench.args.aimed_kill_share, trail=trail)
        elif "passed_on" in verbs:
            bench.figures.titles["password shown"] += 1
            bench.figures.ended_clearly += 1
            bench.note(trail, "ended", title="password shown")
            return
        else:
            bench.figures.titles[title_of(shown)] += 1
            bench.figures.ended_clearly += 1
            bench.note(trail, "ended", title=title_of(shown))
            if any("already reset" in line for line in texts(shown)):  # this agent never saw a password
                bench.figures.passwords_not_shown += 1
            return
    bench.figures.stuck += 1
    trail.stuck = "no end after 16 cards"


def write_trails(bench: Bench, where: str, *, every: bool = False) -> None:
    """The trails of the verifications counted stuck (or of all), with the kills while each ran and the
    instances' log lines that name its activities: JSON, one verification a line, to `where` ("-": stderr)."""
    kept = [t for t in bench.trails if every or t.stuck]
    lines = [line for log in bench.logs if log.exists() for line in log.read_text(errors="replace").splitlines()]
    out = []
    for trail in kept:
        first, last = (trail.events[0]["t"], trail.events[-1]["t"]) if trail.events else (0.0, 0.0)
        kills = [k for k in bench.kills if first - 20 <= k["t"] <= last + 1]
        named = [line for line in lines if any(i in line for i in trail.activity_ids)]
        out.append(json.dumps({"agent": trail.agent, "person": trail.person, "stuck": trail.stuck,
                               "run_began_at": bench.began_at.isoformat(),
                               "events": sorted([*trail.events, *kills], key=lambda e: e["t"]),
                               "log_lines": named}))
    text = "".join(line + "\n" for line in out)
    if where == "-":
        sys.stderr.write(text)
    else:
        Path(where).write_text(text)


async def burst(bench: Bench, http: ClientSession, connector: Any, agents: list[Any], person: Any,
                truth: Any) -> None:
    """Six agents verify the same person at once, across the instances, each answering as the person would."""
    await asyncio.gather(*(one_verification(bench, http, connector, agent, person, truth, reset=False)
                           for agent in agents))


@dataclass(frozen=True)
class Attempt:
    """A verification session of the burst's person, as the store has it, and how its decision was recorded."""

    session_id: str
    created_at: datetime
    ended_at: datetime | None
    outcome: str
    verified_by_questions_alone: bool  # decided verified without the after-limit flag


COUNTED = ("in_progress", "not_verified", "timed_out")  # what counts against a person (store/lockouts.py's rule)


def over_limit(attempts: list[Attempt], limit: int) -> int:
    """Sessions verified by questions alone although, when they were admitted, `limit` attempts already counted
    against the person (sessions then open, or failed or abandoned before): the limit beaten by a race."""
    beaten = 0
    for s in attempts:
        counted = sum(1 for t in attempts if t is not s and t.created_at < s.created_at and (
            t.ended_at is None or t.ended_at > s.created_at or t.outcome in COUNTED))
        if counted >= limit and s.verified_by_questions_alone:
            beaten += 1
    return beaten


async def attempts_of(store: Any, user_id: str) -> list[Attempt]:
    from sqlalchemy import text

    from store import AuditFilter
    from verification.session import Flag

    decided = (await store.audit.query(AuditFilter(action="verification.decided", subject=user_id),
                                       limit=1000)).entries
    plain = {str(e.details.get("session_id")) for e in decided
             if e.outcome == "verified" and Flag.AFTER_LIMIT.value not in e.details.get("flags", [])}
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT session_id, created_at, ended_at, outcome FROM verification_sessions "
            "WHERE target_user_id = :user ORDER BY created_at"), {"user": user_id})).all()
    return [Attempt(str(r[0]), _utc(r[1]), _utc(r[2]) if r[2] is not None else None, str(r[3]), str(r[0]) in plain)
            for r in rows]


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def password_changes(ready: dict[str, Any], since: datetime, user_ids: list[str]) -> set[str]:
    """Whose password Graph says changed since `since` (read with the app's own credentials, retried through
    the injected faults)."""
    import ssl

    context = ssl.create_default_context(cafile=ready["ca_file"])
    changed: set[str] = set()
    async with ClientSession(timeout=ClientTimeout(total=10)) as http:

        async def fetch(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
            for _ in range(30):  # devtenant's faults (errors, throttling, hangs) apply to these reads too
                with contextlib.suppress(ClientError, TimeoutError):
                    async with http.request(method, url, ssl=context, **kwargs) as r:
                        if r.status == 200:
                            return dict(await r.json())
                await asyncio.sleep(0.2)
            raise RuntimeError(f"bench.faults: {url} never answered")

        token = (await fetch("POST", f"{ready['authority']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": ready["client_id"],
            "client_secret": ready["client_secret"], "scope": "https://graph.microsoft.com/.default"}))["access_token"]
        for user_id in user_ids:
            user = await fetch("GET", f"{ready['graph']}/users/{user_id}",
                               params={"$select": "id,lastPasswordChangeDateTime"},
                               headers={"Authorization": f"Bearer {token}"})
            value = user.get("lastPasswordChangeDateTime")
            if value and datetime.fromisoformat(value.replace("Z", "+00:00")) >= since:
                changed.add(user_id)
    return changed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from bench.truth import GroundTruth
    from bench.turns import Agent, Connector
    from devtenant import playground
    from devtenant.generate import generate_org
    from store import AuditFilter, open_store
    from verification import Policy

    with tempfile.TemporaryDirectory(prefix="watchword-faults-") as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp)
        database = args.database_url or f"sqlite+aiosqlite:///{tmp / 'watchword.db'}"
        started_at = datetime.now(UTC)
        async with devtenant(args, tmp) as (ready, _):
            bench.ready = ready
            anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            org = await asyncio.to_thread(generate_org, args.seed, args.users, anchor)
            truth = GroundTruth(org, datetime.now(UTC), Policy())
            helpdesk = [org.users[u] for u in org.transitive_user_members(org.helpdesk_group_id)]
            people = [u for u in helpdesk if u.account_enabled and not u.is_service_account]
            agents = [Agent(u.id, u.display_name, f"a:faults-{u.id}", org.tenant_id) for u in people]
            targets = playground.verifiable_people(org, exclude=[a.user_id for a in agents])
            bench.env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
            bench.env.update({
                "WATCHWORD_DATABASE_URL": database, "WATCHWORD_CLIENT_ID": ready["client_id"],
                "WATCHWORD_CLIENT_SECRET": ready["client_secret"], "WATCHWORD_LOGIN_URL": ready["login"],
                "WATCHWORD_GRAPH_URL": ready["graph"], "WATCHWORD_CA_FILE": ready["ca_file"],
                "WATCHWORD_TENANT_ID": ready["tenant_id"], "WATCHWORD_HELPDESK_GROUP_ID": ready["helpdesk_group_id"],
                "WATCHWORD_ADMIN_GROUP_ID": ready["admins_group_id"],
                # A configured (not demo) instance needs its public https URL; nothing here follows its links.
                "WATCHWORD_PUBLIC_URL": "https://watchword.faults.invalid",
                "WATCHWORD_STATE_KEY": Fernet.generate_key().decode(),
                "WATCHWORD_SESSION_KEY": Fernet.generate_key().decode(), "WATCHWORD_LOG_LEVEL": "WARNING",
                KEY_ENV: bench.public_jwk()})
            await bench.start(0)  # the first migrates; then the others
            await asyncio.gather(*(bench.start(i) for i in range(1, args.instances)))
            connector = Connector()
            async with connector.serving(), ClientSession(timeout=ClientTimeout(total=60)) as http:
                killer = asyncio.create_task(bench.killer())
                queue = list(targets[:args.verifications])
                burst_person = targets[args.verifications] if len(targets) > args.verifications else None
                used = [p.id for p in queue]

                async def agent_loop(agent: Any) -> None:
                    while queue:
                        person = queue.pop()
                        await one_verification(bench, http, connector, agent, person, truth)

                workers = agents[:args.agents]
                await asyncio.gather(*(agent_loop(a) for a in workers))
                bench.stopping = True
                killer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await killer
                if burst_person is not None:
                    burst_agents = [Agent(a.user_id, a.name, f"a:burst-{a.user_id}", a.tenant_id)
                                    for a in agents[:6]]
                    await burst(bench, http, connector, burst_agents, burst_person, truth)
            for process in bench.spawned:  # a restart cut short by the end leaves one outside `instances`
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            changed = await password_changes(ready, started_at, used)
        if args.trail:
            write_trails(bench, args.trail, every=args.trail_all)
        store = await open_store(database)
        try:
            chain = await store.audit.verify_chain()
            resets = (await store.audit.query(AuditFilter(action="password_reset"), limit=1000)).entries
            attempts = [] if burst_person is None else await attempts_of(store, burst_person.id)
        finally:
            await store.close()
    recorded = {e.subject for e in resets}
    # A reset done again after one whose password never reached the agent (not_delivered) is by design: a new
    # password for the same verified session. Duplicated means two attempts both delivered a password.
    undelivered = {(str(e.details.get("session_id")), e.details.get("attempt")) for e in resets
                   if e.outcome == "not_delivered"}
    per_session = Counter(str(e.details.get("session_id")) for e in resets if e.outcome == "success"
                          and (str(e.details.get("session_id")), e.details.get("attempt")) not in undelivered)
    f = bench.figures
    return {
        "verifications": f.verifications, "completed_or_ended_clearly": f.ended_clearly, "stuck": f.stuck,
        "server_errors": f.server_errors, "resets_unrecorded": len(changed - recorded),
        "resets_duplicated": sum(n - 1 for n in per_session.values() if n > 1),
        "attempts_over_limit": over_limit(attempts, Policy().max_attempts_per_day),
        "burst_sessions": len(attempts),
        "audit_chain_ok": chain.ok, "kills": f.kills, "aimed_kills": f.aimed_kills, "retries": f.retries,
        "busy_replies": f.busy_replies, "passwords_not_shown": f.passwords_not_shown,
        "passwords_changed": len(changed), "outcomes": dict(f.titles),
        "fault_rate": args.fault_rate, "latency_ms": args.latency_ms,
    }


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--serve"]:
        return serve()
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--verifications", type=int, default=24)
    p.add_argument("--agents", type=int, default=4, help="helpdesk agents verifying at once")
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--fault-rate", type=float, default=0.2)
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--kill-every-s", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"))
    p.add_argument("--aimed-kill-share", type=float, default=0.5, help="share of resets with a kill aimed at them")
    p.add_argument("--database-url", default="", help="default: a SQLite file of this run's (PostgreSQL: give one)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trail", default="", metavar="FILE",
                   help="write what each stuck verification's agent sent and received, with times (JSON lines; "
                        "'-': stderr)")
    p.add_argument("--trail-all", action="store_true", help="with --trail: every verification's, not only stuck")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print(f"faults: {result['verifications']} verifications, {result['completed_or_ended_clearly']} ended clearly, "
          f"{result['stuck']} stuck, {result['server_errors']} server errors; {result['kills']} kills "
          f"({result['aimed_kills']} at a reset); resets unrecorded {result['resets_unrecorded']}, duplicated "
          f"{result['resets_duplicated']}; attempts over limit {result['attempts_over_limit']}; audit chain "
          f"{'ok' if result['audit_chain_ok'] else 'BROKEN'}", file=sys.stderr)
    print(json.dumps(result))
    ok = (result["stuck"] == 0 and result["server_errors"] == 0 and result["resets_unrecorded"] == 0
          and result["resets_duplicated"] == 0 and result["attempts_over_limit"] == 0 and result["audit_chain_ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
