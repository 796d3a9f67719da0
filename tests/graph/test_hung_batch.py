"""A $batch that hangs is asked again in time: Graph's gateway gives up on a hung request only after ~30 s, so the
client's own per-attempt timeout decides how much of a verification's 8 s budget one hang costs (issue 9)."""

from __future__ import annotations

import asyncio
import json

import httpx

from graph.batch import QUICK_ATTEMPT_S, BatchItem, Deadline, send_batch

BUDGET_S = 8.0  # graph_directory.DEFAULT_BUDGET_S: what the agent (and the caller on the phone) waits at most


class Token:
    async def get_authorization_token(self, uri: str, additional_authentication_context: object = None) -> str:
        return "token"


def scripted_graph(answers: list[str]) -> httpx.MockTransport:
    """Answers each $batch in turn: "hang" (silent until the client's own timeout ends the attempt, as a real
    connection would), "throttled" (429, Retry-After 1 s, as devtenant's faults) or "ok"."""

    async def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if answer == "hang":
            await asyncio.sleep(request.extensions["timeout"]["read"])
            raise httpx.ReadTimeout("no answer", request=request)
        if answer == "throttled":
            return httpx.Response(429, headers={"Retry-After": "1"}, request=request)
        return httpx.Response(200, json={"responses": [{"id": "profile", "status": 200, "headers": {},
                                                        "body": {"id": "u"}}]}, request=request)

    return httpx.MockTransport(handle)


async def test_a_profile_whose_batch_hangs_twice_and_is_throttled_once_still_arrives_within_the_budget() -> None:
    # A 20% fault rate (a third of them hangs) makes this sequence happen a few times in a hundred verifications.
    # Waiting half the budget on the first hang left too little for the throttle's Retry-After and the second hang.
    script = ["hang", "throttled", "hang", "ok"]
    async with httpx.AsyncClient(transport=scripted_graph(script)) as http:
        results = await send_batch(http, "https://graph.example/v1.0", Token(),  # type: ignore[arg-type]
                                   [BatchItem("profile", "/users/u")], Deadline.after(BUDGET_S),
                                   attempt_s=QUICK_ATTEMPT_S)
    assert results["profile"].ok
    assert script == []


class Tokens:
    def for_tenant(self, tenant_id: str, graph_url: str) -> Token:
        return Token()


async def test_a_warm_starts_profile_is_asked_again_alone_when_the_one_batch_it_shares_hangs() -> None:
    # A warm tenant's start sends its profile in the one $batch with everything else (one HTTP request fewer):
    # should that batch hang, the profile is asked again alone after QUICK_ATTEMPT_S, as it was when it always
    # travelled alone, and the start goes on with the rest marked timed out instead of ending.
    from datetime import UTC, datetime

    from graph.context_loader import ContextLoader
    from graph.tenant_facts import DirectorySnapshot
    from verification.context import Person

    me = Person("u", "Ada Lovelace", department="Engineering")
    sent: list[list[str]] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        sent.append([i["id"] for i in items])
        if len(items) > 1:  # the shared batch: hangs
            await asyncio.sleep(request.extensions["timeout"]["read"])
            raise httpx.ReadTimeout("no answer", request=request)
        body = {"value": []} if "signIns" in items[0]["url"] else {"id": "u", "displayName": "Ada Lovelace"}
        return httpx.Response(200, json={"responses": [{"id": items[0]["id"], "status": 200, "headers": {},
                                                        "body": body}]}, request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        loader = ContextLoader(tokens=Tokens(), http=http, graph_url="https://graph.example/v1.0",  # type: ignore[arg-type]
                               clock=lambda: datetime(2026, 12, 7, tzinfo=UTC))
        facts = {"population": 1, "group_count": 0, "domains": (), "role_usage": (), "catalogue": (),
                 "users": DirectorySnapshot((me,), {}, complete=True)}
        for part, value in facts.items():
            loader.tenant_facts.cache.put(("t", part), value)
        loader.tenant_facts._refreshed["t"] = loader.tenant_facts.monotonic()  # no background refresh here
        began = asyncio.get_running_loop().time()
        loaded = await loader.load("t", "u", Deadline.after(5.0))
        took = asyncio.get_running_loop().time() - began
        await loader.aclose()
    assert loaded.context.profile.id == "u"
    assert loaded.context.unavailable["meetings"] == "timed out"
    profile_alone = [ids for ids in sent if len(ids) == 1 and ids[0].startswith("profile")]
    assert len(profile_alone) == 1 and took < 5.5
