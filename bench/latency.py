"""How long from "verify X" to the first question, against a devtenant with injected latency.

    python -m bench.latency --latency-ms 100 [--users 500 --seed 1 --repetitions 5 --signins-latency-ms 3000]

devtenant runs in its own process (as Graph is another machine: its CPU must not count as ours), with
`--latency-ms` added to every Graph request. For several people in turn, the clock runs from the moment
the target is chosen (the people search is timed apart, `search_ms`, just before: the agent typed the person's display
name; `time_from_name_ms` is both) to the first question being ready: `load_context`,
the provisional sign-in risk and `VerificationSession.start` with the default policy. Sign-in logs take
`--signins-latency-ms` more on devtenant's side (Microsoft's reports API is slow) and are read beside the rest:
`time_to_decision_ready_ms` runs on until their risk reached the session (`update_risk`), which a decision
waits for. Graph round trips are counted
by an httpx hook on the product's own HTTP client (every request it sends is a Graph request; tokens are
warmed up first and come from msal's own session). For comparison, the same people are read NAIVELY:
one request per source, one after another, with the same client and token.

The reports API allows 5 sign-in requests per 10 s per tenant and both readings ask for sign-ins, so
verifications are paced (about one per 2 s per reading): a pause between repetitions, outside the
measured time. The first verification fills the per-tenant caches (population, domains, role usage, group
catalogue, a page of users) and starts the background refresh (the whole directory, every group's size and small
groups' members), which each later one waits for (`settle`); the first is reported apart as `cold_*`, and the
medians are over the others.

Prints figures, then one line of JSON: latency_ms, graph_round_trips, time_to_first_question_ms,
naive_time_ms, naive_round_trips (and a few more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from graph.client import build_http_client
from graph.graph_directory import GraphDirectory
from graph.tokens import TokenSource
from settings import Settings
from verification.policy import Policy
from verification.risk import assess_risk
from verification.session import VerificationSession

PACE_S = 4.2  # two readings ask for sign-ins: stay within 5 reports requests per 10 s


def start_devtenant(args: argparse.Namespace) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtenant", "--port", "0", "--seed", str(args.seed), "--users", str(args.users),
         "--latency-ms", str(args.latency_ms), "--log-level", "WARNING",
         "--endpoint-latency-ms", f"/auditLogs/signIns={args.signins_latency_ms}"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise SystemExit(f"devtenant did not start (exit code {proc.returncode})")
    return proc, json.loads(line)


class Counter:
    """Counts the HTTP requests the product's client sends (all of them go to Graph)."""

    def __init__(self) -> None:
        self.requests = 0

    async def hook(self, request: httpx.Request) -> None:
        self.requests += 1


async def naive_reading(http: httpx.AsyncClient, graph: str, token: str, user_id: str) -> int:
    """One request per source, in order, as a first implementation would; returns the requests made."""
    headers = {"Authorization": f"Bearer {token}"}
    eventual = {**headers, "ConsistencyLevel": "eventual"}
    now = datetime.now(UTC)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    u = f"{graph}/users/{user_id}"
    person = "id,displayName,givenName,surname,userPrincipalName,mail,jobTitle,department,officeLocation"
    count = 0

    async def get(url: str, h: dict[str, str] = headers, **params: str) -> Any:
        nonlocal count
        count += 1
        response = await http.get(url, headers=h, params=params or None)
        return response.json() if response.status_code == 200 and response.content else {}

    profile = await get(u, **{"$select": person})
    manager = await get(f"{u}/manager", **{"$select": person})
    await get(f"{u}/directReports", **{"$select": person})
    if manager.get("id"):
        await get(f"{graph}/users/{manager['id']}/directReports", **{"$select": person})
        await get(f"{graph}/users/{manager['id']}/manager", **{"$select": person})
    await get(f"{u}/calendarView", startDateTime=(now - timedelta(days=14)).strftime(iso),
              endDateTime=(now + timedelta(days=3)).strftime(iso), **{"$top": "1000"})
    await get(f"{u}/transitiveMemberOf/microsoft.graph.group", eventual, **{"$count": "true", "$top": "999"})
    await get(f"{u}/chats", **{"$expand": "members,lastMessagePreview"})
    await get(f"{u}/contacts", **{"$top": "1000"})
    await get(f"{u}/messages", **{"$select": "from,receivedDateTime", "$top": "1000"})
    await get(f"{graph}/roleManagement/directory/roleAssignments", **{"$filter": f"principalId eq '{user_id}'",
                                                                      "$expand": "roleDefinition"})
    await get(f"{graph}/auditLogs/signIns", **{"$filter": f"userId eq '{user_id}'", "$top": "1000"})
    if profile.get("department"):
        await get(f"{graph}/users", eventual, **{"$filter": f"department eq '{profile['department']}'",
                                                 "$count": "true", "$top": "999", "$select": person})
    await get(f"{graph}/users/$count", eventual)
    await get(f"{graph}/domains")
    return count


async def run(args: argparse.Namespace) -> dict[str, Any]:
    proc, ready = start_devtenant(args)
    try:
        settings = Settings().with_devtenant(ready)
        tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                             client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
        http = build_http_client(settings.ca_file)
        counter = Counter()
        http.event_hooks["request"].append(counter.hook)
        directory = GraphDirectory(tokens, http, settings.graph_url, settings.client_id)
        tenant = settings.tenant_id
        token = (await tokens.token(tenant)).access_token  # warm-up: not part of a verification
        targets = await pick_targets(http, settings.graph_url, token, args.repetitions + 1)
        names = await display_names(http, settings.graph_url, token, targets)
        policy = Policy()
        ours: list[dict[str, Any]] = []
        naive: list[dict[str, Any]] = []
        for i, user_id in enumerate(targets):
            await directory.settle()  # the steady state: no background refresh competing with the measure
            started = time.perf_counter()
            sent = counter.requests
            found = await directory.find_people(tenant, names[user_id], limit=8)  # as verify_dialog asks
            search_ms = (time.perf_counter() - started) * 1000
            search_requests = counter.requests - sent
            assert user_id in {p.id for p in found}, names[user_id]
            started = time.perf_counter()
            sent = counter.requests
            loaded = await directory.load_context(tenant, user_id)
            loaded_at = time.perf_counter()
            risk = assess_risk(loaded.context, policy)
            session = VerificationSession(clock=lambda: datetime.now(UTC))
            step = session.start(loaded.context, loaded.org, policy, risk, attempts_in_last_24h=0,
                                 risk_pending=loaded.sign_ins_later is not None)
            done = time.perf_counter()
            complete = await loaded.with_sign_ins()  # as dialogs/session_keeper.py does, in the background
            if session.decision is None:
                session.update_risk(assess_risk(complete.context, policy))
            decision_ready = time.perf_counter()
            ours.append({
                "user": user_id, "ms": (done - started) * 1000, "load_ms": (loaded_at - started) * 1000,
                "search_ms": search_ms, "search_requests": search_requests,
                "decision_ready_ms": (decision_ready - started) * 1000,
                "sign_ins": complete.context.unavailable.get("sign_ins", "read"),
                "engine_ms": (done - loaded_at) * 1000, "rounds": loaded.round_trips,
                "http_requests": counter.requests - sent, "load_requests": loaded.requests,
                "unavailable": dict(loaded.context.unavailable),
                "first": step.prompt.kind if step.prompt else f"decision:{step.decision.outcome.value}",
            })
            started = time.perf_counter()
            count = await naive_reading(http, settings.graph_url, token, user_id)
            naive.append({"ms": (time.perf_counter() - started) * 1000, "requests": count})
            r, n = ours[-1], naive[-1]
            print(f"{'cold' if i == 0 else 'warm'} {user_id}: search {r['search_ms']:.0f} ms in "
                  f"{r['search_requests']} requests, then first question in {r['ms']:.0f} ms "
                  f"(load {r['load_ms']:.0f} + engine {r['engine_ms']:.0f}), {r['rounds']} round trips, "
                  f"risk known at {r['decision_ready_ms']:.0f} ms (sign-ins: {r['sign_ins']}), "
                  f"{r['http_requests']} HTTP requests, first={r['first']}, unavailable={r['unavailable']}; "
                  f"naive {n['ms']:.0f} ms in {n['requests']} requests", flush=True)
            if i < len(targets) - 1:
                await asyncio.sleep(PACE_S)
        await directory.aclose()
        await http.aclose()
        tokens.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    warm, warm_naive = ours[1:], naive[1:]
    return {
        "latency_ms": args.latency_ms,
        "graph_round_trips": max(r["rounds"] for r in warm),
        "time_to_first_question_ms": round(statistics.median(r["ms"] for r in warm), 1),
        "search_ms": round(statistics.median(r["search_ms"] for r in warm), 1),
        "search_requests": max(r["search_requests"] for r in warm),
        "time_from_name_ms": round(statistics.median(r["search_ms"] + r["ms"] for r in warm), 1),
        "time_to_decision_ready_ms": round(statistics.median(r["decision_ready_ms"] for r in warm), 1),
        "signins_latency_ms": args.signins_latency_ms,
        "naive_time_ms": round(statistics.median(n["ms"] for n in warm_naive), 1),
        "naive_round_trips": round(statistics.median(n["requests"] for n in warm_naive)),
        "load_context_ms": round(statistics.median(r["load_ms"] for r in warm), 1),
        "engine_ms": round(statistics.median(r["engine_ms"] for r in warm), 1),
        "http_requests": round(statistics.median(r["http_requests"] for r in warm)),
        "cold_time_to_first_question_ms": round(ours[0]["ms"], 1),
        "cold_graph_round_trips": ours[0]["rounds"],
        "ratio_to_latency": round(statistics.median(r["ms"] for r in warm) / args.latency_ms, 2)
        if args.latency_ms else None,
        "users": args.users,
        "seed": args.seed,
        "repetitions": len(warm),
    }


async def pick_targets(http: httpx.AsyncClient, graph: str, token: str, n: int) -> list[str]:
    """People with a manager and a department (the common case), spread over the directory."""
    response = await http.get(f"{graph}/users", headers={"Authorization": f"Bearer {token}"},
                              params={"$select": "id,givenName,surname,department,jobTitle", "$top": "999",
                                      "$expand": "manager($select=id)"})
    people = [u for u in response.json().get("value", [])
              if u.get("givenName") and u.get("surname") and u.get("department") and u.get("manager")]
    step = max(1, len(people) // (n + 1))
    return [p["id"] for p in people[step::step]][:n]


async def display_names(http: httpx.AsyncClient, graph: str, token: str, ids: list[str]) -> dict[str, str]:
    """What an agent types to find each person: their display name."""
    out = {}
    for user_id in ids:
        response = await http.get(f"{graph}/users/{user_id}", headers={"Authorization": f"Bearer {token}"},
                                  params={"$select": "id,displayName"})
        out[user_id] = str(response.json()["displayName"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repetitions", type=int, default=5, help="warm verifications (after one cold one)")
    parser.add_argument("--signins-latency-ms", type=float, default=1500.0,
                        help="extra latency of sign-in log reads on devtenant (Microsoft's reports API is slow)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(f"median time to first question {result['time_to_first_question_ms']} ms "
          f"({result['ratio_to_latency']}x the injected latency) in {result['graph_round_trips']} round trips; "
          f"naive {result['naive_time_ms']} ms in {result['naive_round_trips']} requests")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
