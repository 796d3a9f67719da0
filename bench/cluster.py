"""Several Watchword processes on one database, as behind a load balancer without sticky sessions.

Each instance is `app.py` in demo mode with the same seed, so each one's in-process devtenant serves the same
organisation; all share WATCHWORD_DATABASE_URL and the state and session keys (what the README asks of a real
deployment). A helpdesk agent's turns can then go to any instance: `verification()` sends each turn of one
verification where `route` says and answers as the real employee would (devtenant's ground truth). Used by
tests/e2e/test_two_instances.py and bench.faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout
from cryptography.fernet import Fernet

from bench.teams_client import CHECKING_SIGN_INS, actions, cards_in, kind_of, perfect_caller, prompt_of, title_of
from bench.turns import Agent, Connector, Received, Server, server, turn

CANCELLED_NOTICE = "Previous verification cancelled"


@dataclass
class Cluster:
    instances: list[Server]
    connector: Connector
    http: ClientSession
    agents: list[Agent]
    targets: Iterator[Any]  # devtenant users worth verifying, each used once
    truth: Any  # bench.truth.GroundTruth
    env: dict[str, str]
    tmp: Path
    logs: list[Path] = field(default_factory=list)


def instance_env(database_url: str, users: int, seed: int, keys: tuple[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env.update({"WATCHWORD_DEMO": "true", "WATCHWORD_DATABASE_URL": database_url, "WATCHWORD_DEMO_USERS": str(users),
                "WATCHWORD_DEMO_SEED": str(seed), "WATCHWORD_STATE_KEY": keys[0], "WATCHWORD_SESSION_KEY": keys[1],
                "WATCHWORD_LOG_LEVEL": "WARNING", **extra})
    return env


@contextlib.asynccontextmanager
async def postgres_database(url: str, prefix: str) -> AsyncIterator[str]:
    """A new PostgreSQL database beside the one `url` names (so runs never collide), dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def cluster(count: int, database_url: str, tmp: Path, *, users: int = 200, seed: int = 1,
                  agents: int = 4, **extra_env: str) -> AsyncIterator[Cluster]:
    """`count` instances on `database_url`, started together (they migrate the database together, too)."""
    from bench.truth import GroundTruth
    from devtenant import playground
    from devtenant.generate import generate_org
    from verification import Policy

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # devtenant anchors its org there
    org = await asyncio.to_thread(generate_org, seed, users, anchor)
    helpdesk = [org.users[u] for u in org.transitive_user_members(org.helpdesk_group_id)]
    people = [u for u in helpdesk if u.account_enabled and not u.is_service_account][:agents]
    team = [Agent(u.id, u.display_name, f"a:cluster-{u.id}", org.tenant_id) for u in people]
    targets = iter(playground.verifiable_people(org, exclude=[a.user_id for a in team]))
    keys = (Fernet.generate_key().decode(), Fernet.generate_key().decode())
    env = instance_env(database_url, users, seed, keys, **extra_env)
    command = [sys.executable, "app.py", "--port", "0", "--no-playground"]
    connector = Connector()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(connector.serving())
        logs = [tmp / f"instance-{n}.log" for n in range(count)]
        instances = await asyncio.gather(*(stack.enter_async_context(server(command, env, log)) for log in logs))
        http = await stack.enter_async_context(ClientSession(timeout=ClientTimeout(total=120)))
        yield Cluster(list(instances), connector, http, team, targets, GroundTruth(org, datetime.now(UTC), Policy()),
                      env, tmp, logs)


def _card(received: Received) -> dict[str, Any]:
    return (cards_in(received.activity) or [{}])[0]


def _first_card(activity: dict[str, Any]) -> bool:
    shown = (cards_in(activity) or [{}])[0]
    return kind_of(shown) in ("question", "decision", "notice") and title_of(shown) != CANCELLED_NOTICE


def _next_card(activity: dict[str, Any]) -> bool:
    return kind_of((cards_in(activity) or [{}])[0]) in ("question", "decision", "notice")


@dataclass
class Outcome:
    target: str
    title: str  # the decision card's title, or the notice that ended it
    turns_by_instance: dict[int, int]
    questions: int


async def verification(c: Cluster, agent: Agent, route: Callable[[int], int], *, target: Any = None,
                       max_turns: int = 20, skip_refused: bool = False) -> Outcome:
    """One verification, turn n sent to instance route(n), answered with the Submit button as the employee would.
    Ends at a decision or a notice (a refusal, an error the bot told the agent about). With `skip_refused`,
    someone refused before any question (thin data, risky sign-ins...) is passed over for the next target."""
    turns: dict[int, int] = {}

    async def send(n: int, text: str, accept: Any, activity: dict[str, Any] | None = None) -> dict[str, Any]:
        index = route(n) % len(c.instances)
        turns[index] = turns.get(index, 0) + 1
        reply = await turn(c.http, c.connector, c.instances[index].url, agent, text, accept, None, activity)
        return _card(reply)

    person = target if target is not None else next(c.targets)
    shown = await send(0, f"verify {person.user_principal_name}", _first_card)
    for _ in range(10 if skip_refused and target is None else 0):
        if kind_of(shown) == "question":
            break
        person = next(c.targets)
        shown = await send(0, f"verify {person.user_principal_name}", _first_card)
    caller = perfect_caller(c.truth, person.id)
    questions = 0
    while kind_of(shown) == "question" and questions < max_turns:
        said = caller(prompt_of(shown))
        data = next(a["data"] for a in actions(shown) if a.get("verb") == "answer")
        questions += 1
        shown = await send(questions, said, _next_card,
                           agent.click(c.connector.url, "answer", {**data, "answer": said}))
    if title_of(shown).startswith(CHECKING_SIGN_INS):  # the decision follows in the chat once the risk is weighed
        shown = await _decision_after_checking(c, agent)
    return Outcome(person.id, title_of(shown), turns, questions)


async def _decision_after_checking(c: Cluster, agent: Agent, wait_s: float = 90.0) -> dict[str, Any]:
    """The card that follows "Questions complete: checking Microsoft's sign-in logs" in the agent's chat."""
    inbox = c.connector.inbox.get(agent.conversation, [])
    since = 1 + max(at for at, received in enumerate(inbox) if title_of(_card(received)).startswith(CHECKING_SIGN_INS))

    def decided(activity: dict[str, Any]) -> bool:
        return _next_card(activity) and not title_of((cards_in(activity) or [{}])[0]).startswith(CHECKING_SIGN_INS)

    return _card(await c.connector.next_message(agent.conversation, since, decided, wait_s))
