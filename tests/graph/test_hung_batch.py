"""A $batch that hangs is asked again in time: Graph's gateway gives up on a hung request only after ~30 s, so the
client's own per-attempt timeout decides how much of a verification's 8 s budget one hang costs (issue 9)."""

from __future__ import annotations

import asyncio

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
