"""The strong factors: what the code in the person's own Teams and their manager's confirmation change.

    python -m bench.factors --seed 1 --users 300 --trials 100

Through the product's real path as bench.accuracy (devtenant over https, GraphDirectory.load_context, the default
Policy), each sampled target is verified by:

* the genuine employee who reads the code right (every person with a chat with Watchword), then answers from
  memory with bench.accuracy's default recall noise: pass rate and questions asked;
* the genuine employee with no chat (no code) whose manager confirms: the thin-data way through;
* the same employee with questions alone (no code, no manager), for reference;
* an informed impostor who cannot see the code ("they can't see a code") and whose manager does not vouch ("I don't
  know": the manager called the real person, or did not answer), and one who guesses a code (which stops the
  verification unless it matches: 1 in 10^6, checked by `--code-guesses` real guesses against real codes);
* self-service: whether `reset my password` can ask anything at all (not refused up front) for ordinary people,
  with the self-service policy of dialogs/self_service_dialog.py and their manager as a factor, against the old one
  (28 bits, no multiple choice, no manager).

Prints figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bench.accuracy import (
    NOW,
    REFUSALS,
    SECONDS_PER_ANSWER,
    TeamsReach,
    _load_all,
    _rate,
    self_service_reachable,
    upper_bound_95,
)
from bench.callers import Caller, GenuineCaller, InformedImpostor
from bench.truth import GroundTruth
from devtenant.generate import generate_org
from graph.directory import LoadedContext
from verification import Decision, Outcome, Policy, Step, VerificationSession, assess_risk
from verification.factors import Attestation, CodeCheck, Factor, check_code, new_code

CODE = frozenset({Factor.POSSESSION})
MANAGER = frozenset({Factor.MANAGER})


def play(session: VerificationSession, step: Step, caller: Caller, now: list[datetime], *,
         read_code: Callable[[str], str | None], manager: Attestation | None) -> Decision:
    """Drive a session with its factors: show the code when offered (the caller reads it, or cannot: None), ask the
    manager (who answers at once), answer the questions."""
    code = ""
    for _ in range(200):
        if step.decision is not None:
            return step.decision
        if Factor.POSSESSION in step.offer:
            code = session.issue_code()
            step = session.requested(Factor.POSSESSION)
        elif Factor.MANAGER in step.offer:
            step = session.requested(Factor.MANAGER, delivered=manager is not None)
        elif Factor.POSSESSION in step.awaiting and step.prompt is None:
            said = read_code(code)
            step = session.decline_code() if said is None else session.enter_code(said)
        elif Factor.MANAGER in step.awaiting and manager is not None:
            step = session.attest(manager)
        elif step.prompt is not None:
            now[0] += timedelta(seconds=SECONDS_PER_ANSWER)
            step = session.answer(caller(step.prompt))
        else:
            raise RuntimeError("the session waits for nothing it can be given")
    raise RuntimeError("the session did not decide")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    policy = Policy()
    org = generate_org(args.seed, args.users, NOW)
    truth = GroundTruth(org, NOW, policy)
    targets = [u.id for u in random.Random(args.seed).sample(truth.people, min(args.trials, len(truth.people)))]
    loads = asyncio.run(_load_all(org, targets, argparse.Namespace(
        seed=args.seed, fault_rate=0.0, concurrency=1, sign_ins="raised")))
    runs: dict[str, list[Decision]] = {k: [] for k in ("code", "manager", "questions", "impostor", "impostor_guess")}
    reachable = {"now": 0, "before": 0, "people": 0}
    refused = 0
    for uid in targets:
        loaded = loads.contexts.get(uid)
        if loaded is not None:
            refused += _target(uid, loaded, truth, policy, args, runs, reachable, loads.teams)
    matches, near = _code_guesses(args.code_guesses, args.seed)
    figures = _figures(args, runs, reachable, refused, matches, near, time.perf_counter() - started)
    _print(figures)
    print(json.dumps(figures))
    return 0


def _target(uid: str, loaded: LoadedContext, truth: GroundTruth, policy: Policy, args: argparse.Namespace,
            runs: dict[str, list[Decision]], reachable: dict[str, int], teams: TeamsReach) -> bool:
    """Every run for one target; True when it was refused up front (and nothing else was run)."""
    context, knowledge = loaded.context, loaded.org
    risk = assess_risk(context, policy)
    memory = truth.memory(uid)
    has_manager = context.manager is not None

    def session(kind: str, available: frozenset[Factor], chosen: Policy = policy,
                ) -> tuple[VerificationSession, Step, list[datetime]]:
        now = [context.fetched_at]
        s = VerificationSession(lambda: now[0], seed=f"{args.seed}:{uid}:{kind}")
        return s, s.start(context, knowledge, chosen, risk, 0, available), now

    def genuine(kind: str) -> GenuineCaller:
        return GenuineCaller(memory, random.Random(f"{args.seed}:{uid}:{kind}"), forget=0.2, first_name_only=0.3,
                             typo=0.1, knows_surname=0.9, nickname=0.3, dont_know=0.05, plain_letters=0.5)

    s, step, now = session("questions", frozenset())
    if step.decision is not None and step.decision.outcome in REFUSALS \
            and step.decision.outcome is not Outcome.NOT_ENOUGH_QUESTIONS:
        return True
    runs["questions"].append(step.decision if step.decision is not None else
                             play(s, step, genuine("questions"), now, read_code=lambda c: None, manager=None))
    s, step, now = session("code", CODE)
    runs["code"].append(play(s, step, genuine("code"), now, read_code=lambda c: c, manager=None))
    if has_manager:
        s, step, now = session("manager", MANAGER)
        runs["manager"].append(play(s, step, genuine("manager"), now, read_code=lambda c: None,
                                    manager=Attestation.CONFIRMED))
    impostor = InformedImpostor(truth.chart(uid), random.Random(f"{args.seed}:{uid}:impostor"))
    s, step, now = session("impostor", CODE | (MANAGER if has_manager else frozenset()))
    runs["impostor"].append(play(s, step, impostor, now, read_code=lambda c: None, manager=Attestation.UNSURE))
    guesser = random.Random(f"{args.seed}:{uid}:guess")
    impostor = InformedImpostor(truth.chart(uid), random.Random(f"{args.seed}:{uid}:impostor_guess"))
    s, step, now = session("impostor_guess", CODE)
    runs["impostor_guess"].append(play(s, step, impostor, now, manager=None,
                                       read_code=lambda c: f"{guesser.randrange(10 ** 6):06d}"))
    # Self-service: can it ask anything at all?
    reachable["people"] += 1
    reachable["now"] += self_service_reachable(context, knowledge, policy, risk, f"{args.seed}:{uid}:self",
                                               teams.can_ask(context.manager.id if context.manager else ""))
    old = replace(policy, required_bits=policy.required_bits + 8, max_wrong=1, allow_multiple_choice=False,
                  possession_code=False)
    s, step, _ = session("self_before", frozenset(), old)
    reachable["before"] += step.decision is None or step.decision.outcome not in REFUSALS
    return False


def _code_guesses(n: int, seed: int) -> tuple[int, int]:
    """(matches, near misses) of `n` random guesses, each against a fresh code."""
    rng = random.Random(seed)
    matches = near = 0
    for _ in range(n):
        _, sealed = new_code()
        result = check_code(f"{rng.randrange(10 ** 6):06d}", sealed)
        matches += result is CodeCheck.MATCH
        near += result is CodeCheck.NEAR_MISS
    return matches, near


def _figures(args: argparse.Namespace, runs: dict[str, list[Decision]], reachable: dict[str, int], refused: int,
             matches: int, near: int, seconds: float) -> dict[str, object]:
    def rate(kind: str) -> float | None:
        decisions = runs[kind]
        return _rate(sum(d.verified for d in decisions), len(decisions)) if decisions else None

    def questions(kind: str) -> float | None:
        asked = [d.questions_asked for d in runs[kind] if d.verified]
        return statistics.median(asked) if asked else None

    impostor_passes = sum(d.verified for d in runs["impostor"])
    guess_passes = sum(d.verified for d in runs["impostor_guess"])
    people = max(1, reachable["people"])
    return {
        "bench": "factors", "seed": args.seed, "users": args.users, "targets": len(runs["code"]),
        "refused_up_front": refused,
        "genuine_pass_rate_with_code": rate("code"), "median_questions_genuine_with_code": questions("code"),
        "genuine_pass_rate_manager_no_code": rate("manager"),
        "median_questions_genuine_manager_no_code": questions("manager"),
        "genuine_pass_rate_questions_only": rate("questions"),
        "median_questions_genuine_questions_only": questions("questions"),
        "informed_impostor_no_code_manager_unsure_pass_rate": rate("impostor"),
        "informed_impostor_no_code_manager_unsure_pass_rate_upper_95":
            upper_bound_95(impostor_passes, len(runs["impostor"])),
        "informed_impostor_guessing_the_code_pass_rate": rate("impostor_guess"),
        "informed_impostor_guessing_the_code_pass_rate_upper_95":
            upper_bound_95(guess_passes, len(runs["impostor_guess"])),
        "random_code_guesses": args.code_guesses, "random_code_guess_matches": matches,
        "random_code_guess_near_misses": near,
        "self_service_reachable_rate": reachable["now"] / people,
        "self_service_reachable_rate_before": reachable["before"] / people,
        "seconds": round(seconds, 1),
    }


def _print(f: dict[str, object]) -> None:
    out = sys.stdout
    out.write(f"bench.factors: seed {f['seed']}, {f['users']} people, {f['targets']} targets "
              f"({f['refused_up_front']} refused up front)\n")
    for key, value in f.items():
        if key not in ("bench", "seed", "users", "targets", "refused_up_front"):
            out.write(f"  {key}: {value}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.factors", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--trials", type=int, default=100, help="targets")
    p.add_argument("--code-guesses", type=int, default=20_000, help="random code guesses against fresh codes")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
