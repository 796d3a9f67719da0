"""python -m bench.fuzz: property-based fuzzing (hypothesis) of a running Watchword, from outside.

Watchword runs as `make run` runs it (demo mode on devtenant, its own process). Hypothesis then sends it, through
its public endpoints only:
- activities to /api/messages: real helpdesk agents' and strangers' envelopes with arbitrary JSON where Teams puts
  text, values, channel data, conversation kinds, and arbitrary types;
- card payloads: Action.Submit values and Action.Execute invokes with the verbs Watchword's cards use (and others),
  with arbitrary data, in personal and group chats;
- the admin console as a signed-in admin: its pages with arbitrary filters and cursors, its forms with arbitrary
  fields, with and without the CSRF token.
The property everywhere: never a 5xx. Afterwards the process must still be healthy: /healthz answers, and `help`
still gets its card. `make test` runs a few seconds of it (tests/test_fuzz.py); `make bench` runs longer.
Last line JSON: examples, server_errors, healthy, seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
BOT_ID = "28:watchword-fuzz"
VERBS = ("answer", "skip", "cancel", "choose", "verify", "reset", "reset_confirm", "reset_cancel", "passed_on",
         "yes", "no", "code", "no_code", "oob_no", "mgr_yes", "mgr_unsure", "mgr_no", "done", "check", "none")
COMMANDS = ("help", "verify ", "cancel", "reset my password", "hi", "")
CONSOLE_PAGES = ("/admin/users", "/admin/audit", "/admin/policy", "/admin/settings/integrations",
                 "/admin/audit/export.json", "/admin/audit/export.csv", "/admin/entra/connect", "/admin/teams-app")
CONSOLE_FORMS = ("/admin/policy", "/admin/entra/connect", "/admin/audit/verify", "/admin/users/exclude",
                 "/admin/entra/check", "/admin/users/sync")
QUERY_KEYS = ("after", "before", "q", "show", "subject", "actor", "action", "outcome", "since", "until", "next")
FORM_KEYS = ("tenant", "seq", "hash", "user_id", "exclude", "helpdesk_group_id", "self_service", "sources",
             "block_on_high_risk", "refuse_when_roles_unknown", "strong_factor_after_limit", "possession_code",
             "manager_attestation", "security_contact_id", "confirm", "back", "q")

# JSON as Teams could send it, and as an attacker would: nested, odd keys, big and small numbers.
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=60))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=16), inner, max_size=5), max_leaves=24)
TEXT = st.one_of(st.text(max_size=300), st.sampled_from(COMMANDS).flatmap(
    lambda command: st.text(max_size=40).map(lambda rest: command + rest)))
FIELD = st.one_of(st.text(max_size=120), st.integers().map(str), st.sampled_from(["", "0", "-1", "9" * 30, "true"]),
                  st.binary(max_size=60).map(lambda b: b.decode("latin-1")))


@dataclass(frozen=True)
class Target:
    """The running Watchword, the channel it replies to, who talks to it, and an admin's console cookie."""

    app: str
    channel: str
    tenant_id: str
    agents: tuple[tuple[str, str], ...]  # (object id, name) of real helpdesk agents
    people: tuple[str, ...]  # display names worth verifying
    cookie: dict[str, str]  # sent as a header: the console's answers slide it, and the jar would follow
    csrf: str


@dataclass
class Tally:
    examples: int = 0
    server_errors: list[str] = field(default_factory=list)


def envelope(target: Target, agent: tuple[str, str], conversation: str, kind: str) -> dict[str, Any]:
    user_id, name = agent
    return {"id": uuid.uuid4().hex, "timestamp": datetime.now(UTC).isoformat(), "channelId": "msteams",
            "serviceUrl": target.channel, "from": {"id": f"29:{user_id}", "name": name, "aadObjectId": user_id},
            "recipient": {"id": BOT_ID, "name": "Watchword"},
            "conversation": {"id": conversation, "conversationType": kind, "tenantId": target.tenant_id},
            "channelData": {"tenant": {"id": target.tenant_id}}}


def activities(target: Target) -> st.SearchStrategy[dict[str, Any]]:
    agents = st.sampled_from(target.agents) | st.tuples(st.uuids().map(str), st.text(max_size=20))
    kinds = st.sampled_from(["personal", "groupChat", "channel"]) | st.text(max_size=10)
    conversations = st.sampled_from(["a:fuzz-1", "a:fuzz-2", "19:fuzz@thread.v2"]) | st.text(min_size=1,
                                                                                          max_size=30)
    extra = st.dictionaries(st.sampled_from(["value", "channelData", "entities", "attachments", "replyToId", "name",
                                             "locale", "membersAdded", "from", "conversation", "recipient"]),
                            JSON, max_size=3)
    types = st.sampled_from(["message", "invoke", "conversationUpdate", "installationUpdate", "event", "typing"])

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        body = envelope(target, draw(agents), draw(conversations), draw(kinds))
        body.update(type=draw(types | st.text(min_size=1, max_size=12)), text=draw(TEXT))
        body.update(draw(extra))
        return body

    return build()


def card_payloads(target: Target) -> st.SearchStrategy[dict[str, Any]]:
    verbs = st.sampled_from(VERBS) | st.text(max_size=12)
    data = st.dictionaries(st.sampled_from(["answer", "query", "code", "ref", "choice", "id", "question", "session",
                                            "person"]) | st.text(max_size=8), JSON | TEXT, max_size=4)
    people = st.sampled_from(target.people) if target.people else st.just("someone")

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        conversation, kind = draw(st.sampled_from([("a:fuzz-1", "personal"), ("19:fuzz@thread.v2", "groupChat")]))
        body = envelope(target, draw(st.sampled_from(target.agents)), conversation, kind)
        if draw(st.booleans()):  # start something first, now and then, so the verbs reach a dialog
            body.update(type="message", text="verify " + draw(people))
            return body
        verb, values = draw(verbs), draw(data)
        if draw(st.booleans()):
            body.update(type="message", value={"verb": verb, **values}, replyToId=draw(st.text(max_size=20)))
        else:
            body.update(type="invoke", name="adaptiveCard/action",
                        value={"action": {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **values}},
                               "trigger": "manual"})
        return body

    return build()


def console_queries() -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    cursors = st.one_of(FIELD, JSON.map(lambda v: _b64(json.dumps(v))), st.integers(min_value=1, max_value=20).map(
        lambda depth: _b64("[" * depth * 60)))
    return st.tuples(st.sampled_from(CONSOLE_PAGES), st.dictionaries(st.sampled_from(QUERY_KEYS), cursors,
                                                                     max_size=4))


def console_forms() -> st.SearchStrategy[tuple[str, dict[str, str], bool]]:
    return st.tuples(st.sampled_from(CONSOLE_FORMS), st.dictionaries(st.sampled_from(FORM_KEYS) | st.text(max_size=10),
                                                                     FIELD, max_size=6), st.booleans())


def _cookie(target: Target) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in target.cookie.items())}


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- running the properties -------------------------------------------------------------------------------
def run_properties(target: Target, examples: int, tally: Tally, seed: int | None = None) -> None:
    """Each property with `examples` examples; a 5xx is recorded and fails that property (hypothesis shrinks it)."""
    http = httpx.Client(timeout=60.0)
    config = settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
                      suppress_health_check=list(HealthCheck), print_blob=False)

    def check(response: httpx.Response, what: str) -> None:
        tally.examples += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{response.status_code} {what[:300]}")
            raise AssertionError(f"{response.status_code} for {what[:300]}")

    @config
    @given(activities(target))
    def posted_activities(body: dict[str, Any]) -> None:
        check(http.post(f"{target.app}/api/messages", json=body), json.dumps(body)[:300])

    @config
    @given(card_payloads(target))
    def clicked_cards(body: dict[str, Any]) -> None:
        check(http.post(f"{target.app}/api/messages", json=body), json.dumps(body)[:300])

    @config
    @given(console_queries())
    def console_pages(page: tuple[str, dict[str, str]]) -> None:
        path, query = page
        check(http.get(f"{target.app}{path}", params=query, headers=_cookie(target)), f"GET {path} {query}")

    @config
    @given(console_forms())
    def console_posts(form: tuple[str, dict[str, str], bool]) -> None:
        path, fields, with_token = form
        data = {**fields, **({"csrf_token": target.csrf} if with_token else {})}
        check(http.post(f"{target.app}{path}", data=data, headers=_cookie(target), follow_redirects=False),
              f"POST {path} {fields}")

    try:
        for prop in (posted_activities, clicked_cards, console_pages, console_posts):
            try:
                prop()
            except AssertionError:
                continue  # recorded in the tally; the other properties still run
    finally:
        http.close()


async def healthy(target: Target, connector: Any) -> bool:
    """/healthz answers and a helpdesk agent's `help` still gets its card."""
    async with httpx.AsyncClient(timeout=30.0) as http:
        if (await http.get(f"{target.app}/healthz")).status_code != 200:
            return False
        conversation = f"a:health-{uuid.uuid4().hex[:8]}"
        since = connector.mark(conversation)
        body = {**envelope(target, target.agents[0], conversation, "personal"), "type": "message", "text": "help"}
        if (await http.post(f"{target.app}/api/messages", json=body)).status_code >= 300:
            return False
    try:
        await connector.next_message(conversation, since, lambda activity: bool(activity.get("attachments")), 30)
    except TimeoutError:
        return False
    return True


async def fuzz(examples: int, users: int = 60, seed: int | None = None) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from admin.session import COOKIE_NAME, Admin, ConsoleSession, SessionCodec
    from bench.turns import Connector, server
    from devtenant import playground
    from devtenant.generate import generate_org

    key = Fernet.generate_key().decode()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="watchword-fuzz-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
        env.update({"WATCHWORD_DEMO": "true",
                    "WATCHWORD_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'watchword.db'}",
                    "WATCHWORD_DEMO_USERS": str(users), "WATCHWORD_DEMO_SEED": "1", "WATCHWORD_SESSION_KEY": key,
                    "WATCHWORD_LOG_LEVEL": "WARNING"})
        anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # devtenant anchors its org there
        org = await asyncio.to_thread(generate_org, 1, users, anchor)
        helpdesk = [org.users[u] for u in org.transitive_user_members(org.helpdesk_group_id)]
        agents = tuple((u.id, u.display_name) for u in helpdesk if u.account_enabled)
        admins = [org.users[u] for u in org.transitive_user_members(org.admins_group_id)]
        people = tuple(p.display_name for p in playground.verifiable_people(org, exclude=[a for a, _ in agents]))[:5]
        connector = Connector()
        command = [sys.executable, "app.py", "--port", "0", "--no-playground"]
        async with connector.serving(), server(command, env, Path(tmp) / "app.log") as app:
            codec = SessionCodec(key)
            session = ConsoleSession.new(codec.clock())
            session.admin = Admin(oid=admins[0].id, tenant_id=org.tenant_id, name=admins[0].display_name,
                                  username=admins[0].user_principal_name, via="group", signed_in_at=codec.clock())
            target = Target(app=app.url, channel=connector.url + "/", tenant_id=org.tenant_id, agents=agents,
                            people=people, cookie={COOKIE_NAME: codec.dumps(session)}, csrf=session.csrf)
            tally = Tally()
            await asyncio.to_thread(run_properties, target, examples, tally, seed)
            ok = await healthy(target, connector)
            alive = app.process.returncode is None
    return {"examples": tally.examples, "server_errors": len(tally.server_errors), "healthy": ok and alive,
            "seconds": round(time.perf_counter() - started, 1), "first_errors": tally.server_errors[:3]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=400, help="examples per property (4 properties)")
    parser.add_argument("--users", type=int, default=60, help="devtenant's size")
    parser.add_argument("--seed", type=int, default=None, help="derandomise (same examples every run)")
    args = parser.parse_args(argv)
    result = asyncio.run(fuzz(args.examples, args.users, args.seed))
    print(f"fuzz: {result['examples']} requests, {result['server_errors']} server errors, "
          f"healthy afterwards: {result['healthy']}, {result['seconds']} s", file=sys.stderr)
    for error in result["first_errors"]:
        print(f"  {error}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if result["server_errors"] == 0 and result["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
