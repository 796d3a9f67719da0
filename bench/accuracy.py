"""How often Watchword verifies the real employee, and how often it verifies an impostor.

    python -m bench.accuracy --seed 1                 # organisations of 150, 300 and 2,000 people
    python -m bench.accuracy --seed 1 --quick         # the same, 40 targets each: about a minute
    python -m bench.accuracy --seed 1 --users 2000    # one organisation

Through the product's real path: devtenant serves a generated organisation over https in this process; the
product's `GraphDirectory` (msal tokens, the shared HTTP client, $batch, built as app wiring builds it from
`Settings.with_devtenant`) loads each sampled target's context with `load_context`; `VerificationSession`
with the default `Policy` then questions simulated callers (bench/callers.py):

* the genuine employee, answering from devtenant's ground truth (bench/truth.py), NOT from the loaded
  context, with a forgetful memory (see --help): so a wrong read by the Graph layer shows up as genuine failures.
  With the possession code (they have a chat with Watchword and read the code out) and their manager (who
  confirms with --manager-confirms); and again with questions only;
* impostors, none of whom has the code (their target's manager, when asked, is fooled with --manager-fooled):
  random (names, groups, roles from the directory), informed (the public org chart, reading the wording),
  teammate insider (a real peer: the team's meetings, project partners, chats, contacts and groups), LinkedIn
  (title, department, manager, cross-team collaborators first), and replay (a day's worth of calls, spreading
  guesses, learning whatever the cards show: nothing about single answers).

Self-service ("reset my password" in the person's own chat) is started for every ordinary target as the dialog
starts it (its policy, and the manager only when the product could ask them in Teams: they have a chat with
Watchword, or the tenant lets Watchword install itself for them, read through the product's own token) and played by
the same forgetful employee, their manager confirming with --manager-confirms; the figures say how many it could ask
anything at all (also as in a tenant without the install permission) and how many it verified.

Each context is loaded once and reused by every caller. Targets are people (service accounts excluded);
privileged ones are refused before any question and counted apart (thin data is a genuine failure of the
questions-only path, and impostors are not played where questions alone are refused).
A random impostor's pass rate of 1e-4 cannot be seen in a few hundred sessions, so each target also gets
many cheap impostor attempts: the started session is resumed from its `to_dict()` snapshot (the product's
own resume path; the question plan is generated once per target) and played again by a fresh impostor, until
the session can no longer verify them (`can_still_pass`: after the policy's wrong answers the product carries on
for the agent's sake, and the rest of the call changes nothing). The replay impostor's calls are played out in full
(what one call says shapes the next); its day of calls is started once per target and resumed for each campaign.

Sign-in logs are throttled at 5 requests per 10 s per tenant (Graph, and devtenant), and the product keeps
under that with its own window: loading 300 contexts back to back would leave most without sign-ins, which
a helpdesk verifying a few callers a minute never sees. By default the bench raises both limits and says so
in its output (`--sign-ins throttled` keeps them and reports how many contexts came without sign-ins).

Prints figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bench.callers import (
    Caller,
    GenuineCaller,
    InformedImpostor,
    Kind,
    Memory,
    RandomImpostor,
    ReplayImpostor,
    Said,
    converse,
)
from bench.truth import ACCEPTED, BIG_MEETING_SALIENCE, GroundTruth
from devtenant.generate import generate_org
from devtenant.graph_api.teamwork import teamwork
from devtenant.graph_api.throttling import SlidingWindow, throttles
from devtenant.model import Org
from devtenant.server import RunningDevTenant, running_devtenant
from devtenant.state import DevTenantConfig
from dialogs.self_service_dialog import self_service_factors, self_service_policy
from graph.client import build_http_client
from graph.directory import DirectoryError, GraphUnavailable, LoadedContext
from graph.graph_directory import GraphDirectory
from graph.tokens import TokenSource
from settings import Settings
from verification import (
    Decision,
    Form,
    MatchResult,
    OrgKnowledge,
    Outcome,
    Party,
    Policy,
    Question,
    RiskAssessment,
    Source,
    Step,
    UserContext,
    VerificationSession,
    assess_risk,
    match_answer,
)
from verification.factors import Attestation, Factor
from verification.names import normalize
from verification.questions.chats import chat_partners
from verification.questions.contacts import contact_parties
from verification.questions.mail import mail_senders
from verification.questions.meetings import meeting_partners
from verification.session import FACTOR_QUESTION_ID

NOW = datetime(2026, 11, 26, 14, tzinfo=UTC)  # devtenant's activity is anchored here; the product's clock too
SECONDS_PER_ANSWER = 30.0
GRAPH_REPORTS_LIMIT = 5  # sign-in log requests per 10 s per app and tenant (Graph's documented limit)
RAISED_REPORTS_LIMIT = 10_000
REFUSALS = (Outcome.PRIVILEGED, Outcome.LOCKED_OUT, Outcome.BLOCKED_BY_RISK, Outcome.NOT_ENOUGH_QUESTIONS)
TARGETS: dict[str, tuple[str, float]] = {
    "genuine_pass_rate": (">=", 0.97),
    "informed_impostor_pass_rate": ("<=", 0.005),
    "random_impostor_pass_rate": ("<=", 0.0001),
    "median_questions_genuine": ("<=", 3),
}
IMPOSTORS = ("random", "informed", "teammate", "linkedin", "replay")
# The run's targets (issue 8), over every organisation size: genuine rates per size, impostors pooled.
SUMMARY_TARGETS: dict[str, tuple[str, float]] = {
    "genuine_pass_rate_thin_data": (">=", 0.95),
    "median_questions_genuine": ("<=", 3),
    "self_service_reachable_rate": (">=", 0.9),
    "random_impostor_pass_rate": ("<=", 0.0001),
    **{f"{kind}_impostor_pass_rate": ("<=", 0.005) for kind in IMPOSTORS if kind != "random"},
}


@dataclass(frozen=True)
class Noise:
    """The genuine caller's recall noise (see bench.callers.GenuineCaller)."""

    forget: float
    first_name_only: float
    nickname: float
    typo: float
    dont_know: float
    knows_surname: float
    plain_letters: float
    dont_know_hard: float  # contacts and mail: the hardest to recall
    team_slip: float

    def describe(self) -> dict[str, float]:
        return {"forget_a_person": self.forget, "first_name_only": self.first_name_only, "nickname": self.nickname,
                "typo": self.typo, "dont_know": self.dont_know, "dont_know_contacts_and_mail": self.dont_know_hard,
                "knows_surname_when_asked": self.knows_surname, "accents_dropped": self.plain_letters,
                "names_someone_met_only_with_the_team": self.team_slip,
                "big_meeting_colleague_salience": BIG_MEETING_SALIENCE}


@dataclass(frozen=True)
class TeamsReach:
    """Whom Watchword can ask in Teams, as the product decides it (`ProactiveMessenger.can_ask_manager`): people with a
    chat with Watchword (in devtenant, the helpdesk group, who have it installed), and anyone else when the tenant
    granted the optional TeamsAppInstallation.ReadWriteSelfForUser.All (`GraphDirectory.may_install_app`, through
    the product's token)."""

    with_chat: frozenset[str] = frozenset()  # lower-case user ids
    may_install: bool = False

    def can_ask(self, user_id: str, *, install: bool = True) -> bool:
        """`install` False: as in a tenant that withheld the optional permission."""
        return user_id.lower() in self.with_chat or (install and self.may_install)


@dataclass
class LoadReport:
    contexts: dict[str, LoadedContext] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    ended_by_graph_errors: int = 0  # the people search or the context load gave up on Graph
    elapsed_ms: list[float] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    without_sign_ins: Counter[str] = field(default_factory=Counter)  # reason -> contexts
    unavailable: Counter[str] = field(default_factory=Counter)  # source -> contexts
    seconds: float = 0.0
    throttle: str = ""
    teams: TeamsReach = field(default_factory=TeamsReach)


@dataclass
class Tally:
    """Everything the simulation counts."""

    targets: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    federated: int = 0
    genuine: list[Decision] = field(default_factory=list)
    genuine_by_source: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, result) -> answers
    misses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, cause) -> failed tries
    failed_sessions: Counter[str] = field(default_factory=Counter)  # cause -> failed genuine sessions
    failed_endings: Counter[str] = field(default_factory=Counter)
    # One line per failed genuine session with the code: what was asked, how each went, what the plan still held.
    failed_trails: list[str] = field(default_factory=list)
    impostor_trails: list[str] = field(default_factory=list)  # one line per impostor verified: questions, factors
    informed: list[bool] = field(default_factory=list)
    informed_fresh: list[bool] = field(default_factory=list)
    informed_hits: Counter[str] = field(default_factory=Counter)  # kinds impostors answered right
    random: list[bool] = field(default_factory=list)
    random_fresh: list[bool] = field(default_factory=list)
    random_hits: Counter[str] = field(default_factory=Counter)
    teammate: list[bool] = field(default_factory=list)
    teammate_hits: Counter[str] = field(default_factory=Counter)
    linkedin: list[bool] = field(default_factory=list)
    linkedin_hits: Counter[str] = field(default_factory=Counter)
    replay: list[bool] = field(default_factory=list)  # one per campaign of max_attempts_per_day calls
    replay_hits: Counter[str] = field(default_factory=Counter)
    # The replay impostor's multiple-choice answers: (answered, right, picked from options seen in an earlier call).
    replay_choice: list[tuple[bool, bool]] = field(default_factory=list)
    # The genuine employee when questions are all there is (no chat with Watchword, so no code): refusals for thin
    # data count as failures here.
    genuine_questions_only: list[bool] = field(default_factory=list)
    questions_only_asked: list[int] = field(default_factory=list)
    self_service: list[bool] = field(default_factory=list)  # reachable (not refused up front) per ordinary user
    # The same in a tenant that did not grant the optional install permission (managers with a chat only).
    self_service_no_install: list[bool] = field(default_factory=list)
    self_service_verified: list[bool] = field(default_factory=list)  # the genuine employee, per ordinary user
    slack: list[tuple[float, bool]] = field(default_factory=list)  # (capacity - required, verified) per session
    by_misses: Counter[tuple[int, bool]] = field(default_factory=Counter)  # (questions not right, verified)
    agreement: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, both/product_only/truth_only)
    disagreements: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # examples
    seconds: float = 0.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.trials, args.random_attempts, args.informed_attempts = 40, 10, 3
        args.teammate_attempts, args.replay_campaigns = 3, 1
    sizes = [args.users] if args.users else [int(n) for n in args.sizes.split(",")]
    started = time.perf_counter()
    noise = Noise(args.forget, args.first_name_only, args.nickname, args.typo, args.dont_know, args.knows_surname,
                  args.plain_letters, args.dont_know_hard, args.team_slip)
    runs: dict[int, tuple[dict[str, Any], Tally]] = {}
    for users in sizes:
        runs[users] = _run(users, args, noise)
    figures = _summary(runs, noise, args, time.perf_counter() - started)
    _print_summary(figures)
    print(json.dumps(figures))
    return 0


def _run(users: int, args: argparse.Namespace, noise: Noise) -> tuple[dict[str, Any], Tally]:
    """One organisation of `users` accounts: generate, load the sampled targets' contexts, play every caller."""
    started = time.perf_counter()
    policy = Policy()
    org = generate_org(args.seed, users, NOW)
    gc.freeze()  # the org lives as long as the run: keep the collector from walking it again and again
    truth = GroundTruth(org, NOW, policy)
    targets = [u.id for u in random.Random(args.seed).sample(truth.people, min(args.trials, len(truth.people)))]
    generated = time.perf_counter() - started
    loads = asyncio.run(_load_all(org, targets, args))
    tally = simulate(truth, loads, targets, policy, noise, args)
    run_args = argparse.Namespace(**{**vars(args), "users": users})
    figures = _figures(run_args, truth, loads, tally, generated, time.perf_counter() - started)
    _print_report(run_args, truth, loads, tally, figures)
    gc.unfreeze()
    return figures, tally


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sizes", default="150,300,2000", help="organisations to run, in accounts, comma-separated")
    p.add_argument("--users", type=int, default=0, help="one organisation of this many accounts instead of --sizes")
    p.add_argument("--trials", type=int, default=120, help="targets per organisation, each met by every caller")
    p.add_argument("--quick", action="store_true", help="40 targets and fewer impostor attempts: a minute or so")
    p.add_argument("--random-attempts", type=int, default=160,
                   help="extra random-impostor attempts per target (over 40,000 over the three default sizes, "
                        "enough for a 95%% upper bound under the 1e-4 target when none passes)")
    p.add_argument("--informed-attempts", type=int, default=8,
                   help="extra informed (and LinkedIn) impostor attempts per target")
    p.add_argument("--teammate-attempts", type=int, default=8, help="extra teammate-insider attempts per target")
    p.add_argument("--manager-confirms", type=float, default=0.8,
                   help="a real employee's manager answers the Teams card and confirms (else: I don't know)")
    p.add_argument("--manager-fooled", type=float, default=0.02,
                   help="an impostor's target's manager confirms anyway (else: I don't know)")
    p.add_argument("--replay-campaigns", type=int, default=4,
                   help="campaigns per target of the replay impostor, each as many calls as a day's attempts")
    p.add_argument("--replay-reads-options", action="store_true",
                   help="the replay impostor answers free-recall questions with names it saw among an earlier call's "
                        "multiple-choice options for the same source (each set holds one true answer)")
    p.add_argument("--sign-ins", choices=("raised", "throttled"), default="raised",
                   help="raised: lift the 5-per-10-s sign-in log limit in devtenant and the product for the run; "
                        "throttled: keep it (most contexts then load without sign-ins)")
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="share of Graph requests devtenant fails as Graph does under load (429, 503, a hang then "
                        "504); verifications_ended_by_graph_errors counts those the product could not carry through")
    p.add_argument("--trails", action="store_true",
                   help="print every failed genuine session (with the code): questions, answers, factors, plan left; "
                        "and every impostor verified")
    p.add_argument("--concurrency", type=int, default=1,
                   help="context loads in flight (1: reproducible, since caches fill in load order)")
    g = p.add_argument_group("genuine caller's recall noise (probabilities)")
    # More forgetful than the earlier model (forget 0.2, don't know 0.05, typo 0.1, first name 0.3, surname 0.9).
    g.add_argument("--forget", type=float, default=0.3, help="a person they dealt with does not come to mind")
    g.add_argument("--first-name-only", type=float, default=0.4, help="says just the first name")
    g.add_argument("--nickname", type=float, default=0.3, help="uses a nickname when one exists")
    g.add_argument("--typo", type=float, default=0.15, help="the agent mistypes one letter")
    g.add_argument("--dont-know", type=float, default=0.1, help="blanks on a question (meetings, chats, groups)")
    g.add_argument("--dont-know-hard", type=float, default=0.3, help="blanks on a contacts or mail question")
    g.add_argument("--knows-surname", type=float, default=0.85, help="can give the full name when asked")
    g.add_argument("--plain-letters", type=float, default=0.5, help="the agent types without accents")
    g.add_argument("--team-slip", type=float, default=0.15,
                   help="ignores 'none of your teammates' and names someone met only with the team")
    return p


# --- loading contexts through the product -------------------------------------------------------------------

async def _load_all(org: Org, targets: list[str], args: argparse.Namespace) -> LoadReport:
    report = LoadReport()
    config = DevTenantConfig(seed=args.seed, users=len(org.users), fault_rate=args.fault_rate)
    async with running_devtenant(config, org=org) as dt:
        # As app wiring does it: settings pointed at devtenant, one token source, one shared HTTP client.
        settings = Settings().with_devtenant(dt.ready)
        tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                             client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
        http = build_http_client(settings.ca_file)
        directory = GraphDirectory(tokens, http, settings.graph_url, settings.client_id, clock=lambda: NOW)
        report.throttle = _sign_in_throttle(dt, directory, args.sign_ins)
        report.teams = TeamsReach(frozenset(u.lower() for u in teamwork(dt.state).installed),
                                  await directory.may_install_app(settings.tenant_id))
        gate = asyncio.Semaphore(max(1, args.concurrency))
        started = time.perf_counter()

        async def load(uid: str) -> None:
            async with gate:
                try:
                    # As an agent starts one: find the person by name (step 1), then read their context.
                    await directory.find_people(settings.tenant_id, org.users[uid].display_name)
                    loaded = await directory.load_context(settings.tenant_id, uid)
                except DirectoryError as err:
                    report.failures[type(err).__name__ + ": " + str(err)] += 1
                    if isinstance(err, GraphUnavailable):
                        report.ended_by_graph_errors += 1
                    return
            report.contexts[uid] = loaded

        try:
            await asyncio.gather(*(load(uid) for uid in targets))
            # Sign-in logs are read beside each load (graph/context_loader.py): collect them as a decision would.
            for uid, loaded in list(report.contexts.items()):
                report.contexts[uid] = loaded = await loaded.with_sign_ins()
                report.elapsed_ms.append(loaded.elapsed_ms)
                report.round_trips.append(loaded.round_trips)
                report.requests.append(loaded.requests)
                for source, why in loaded.context.unavailable.items():
                    report.unavailable[source] += 1
                    if source == Source.SIGN_INS.value:
                        report.without_sign_ins[why] += 1
        finally:
            report.seconds = time.perf_counter() - started
            await directory.aclose()  # first: its background refresh must not run into a closed client
            await http.aclose()
            tokens.close()
    return report


def _sign_in_throttle(dt: RunningDevTenant, directory: GraphDirectory, mode: str) -> str:
    if mode == "throttled":
        return (f"Graph's {GRAPH_REPORTS_LIMIT} requests per 10 s per tenant (devtenant's throttle and the "
                "product's own window unchanged)")
    # devtenant's limit is per running tenant; the product's window lives in its context loader (not yet
    # configurable through GraphDirectory, so set here, loudly).
    book = throttles(dt.state)
    book.reports = SlidingWindow(RAISED_REPORTS_LIMIT, book.reports.window_s)
    window = getattr(getattr(directory, "_loader", None), "reports_window", None)
    if window is None or not hasattr(window, "limit"):
        raise SystemExit("bench.accuracy: GraphDirectory no longer has _loader.reports_window; run with "
                         "--sign-ins throttled, or teach the bench the new way to raise it")
    window.limit = RAISED_REPORTS_LIMIT
    return (f"RAISED for this bench: devtenant's sign-in log throttle and the product's own window lifted from "
            f"{GRAPH_REPORTS_LIMIT} to {RAISED_REPORTS_LIMIT} requests per 10 s, as if callers arrived at a "
            "helpdesk's pace; --sign-ins throttled keeps Graph's limit")


# --- the simulation -----------------------------------------------------------------------------------------

def simulate(truth: GroundTruth, loads: LoadReport, targets: list[str], policy: Policy, noise: Noise,
             args: argparse.Namespace) -> Tally:
    tally = Tally(targets=len(targets))
    started = time.perf_counter()
    for uid in targets:
        loaded = loads.contexts.get(uid)
        if loaded is not None:
            _simulate_target(uid, loaded, truth, policy, noise, args, tally, loads.teams)
    tally.seconds = time.perf_counter() - started
    return tally


def _simulate_target(uid: str, loaded: LoadedContext, truth: GroundTruth, policy: Policy, noise: Noise,
                     args: argparse.Namespace, tally: Tally, teams: TeamsReach) -> None:
    context, org = loaded.context, loaded.org
    risk = assess_risk(context, policy)
    tag = f"{args.seed}:{uid}"
    tally.federated += context.is_federated
    memory = truth.memory(uid)
    _compare_facts(uid, context, org, memory, truth, policy, tally)
    code = frozenset({Factor.POSSESSION})
    # The manager, when the target has one Watchword can reach: asked by the policy when questions fall short.
    factors = code | ({Factor.MANAGER} if context.manager is not None else set())
    rng = random.Random(f"{tag}:manager")

    def real_manager() -> Attestation:  # the person really is on the phone: the manager confirms, or does not know
        return Attestation.CONFIRMED if rng.random() < args.manager_confirms else Attestation.UNSURE

    def fooled_manager() -> Attestation:  # nobody they know is on the phone: unsure, now and then fooled
        return Attestation.CONFIRMED if rng.random() < args.manager_fooled else Attestation.UNSURE

    def start(kind: str, available: frozenset[Factor] = frozenset(), session_policy: Policy = policy
              ) -> tuple[VerificationSession, Step, list[datetime]]:
        now = [context.fetched_at]
        session = VerificationSession(lambda: now[0], seed=f"{tag}:{kind}")
        return session, session.start(context, org, session_policy, risk, 0, available), now

    def genuine_caller(kind: str) -> GenuineCaller:
        return GenuineCaller(memory, random.Random(f"{tag}:{kind}"), forget=noise.forget,
                             first_name_only=noise.first_name_only, typo=noise.typo,
                             knows_surname=noise.knows_surname, nickname=noise.nickname, dont_know=noise.dont_know,
                             plain_letters=noise.plain_letters, team_slip=noise.team_slip,
                             dont_know_by_source={"contacts": noise.dont_know_hard, "mail": noise.dont_know_hard})

    # The genuine employee, questions only (no chat with Watchword): a refusal for thin data is their failure.
    session, step, now = start("genuine-questions")
    plan = _plan(session)  # before the decision drops it
    if step.done and step.decision is not None and step.decision.outcome in REFUSALS \
            and step.decision.outcome is not Outcome.NOT_ENOUGH_QUESTIONS:
        tally.refused[step.decision.outcome.value] += 1  # the same for every caller: counted once, apart
        return
    thin = step.done
    if thin:
        tally.refused[Outcome.NOT_ENOUGH_QUESTIONS.value] += 1
        tally.genuine_questions_only.append(False)
    else:
        decision = converse(session, step, genuine_caller("genuine-questions"), now, SECONDS_PER_ANSWER)
        tally.genuine_questions_only.append(decision.verified)
        tally.questions_only_asked.append(decision.questions_asked)
    # Self-service from their own Teams, as the dialog starts it: can it ask anything at all, and does the person get
    # through (their manager, asked when the questions fall short, confirms as at the helpdesk)?
    manager_id = context.manager.id if context.manager is not None else ""
    tally.self_service_no_install.append(self_service_reachable(
        context, org, policy, risk, f"{tag}:self-service", teams.can_ask(manager_id, install=False)))
    now = [context.fetched_at]
    session, step = start_self_service(context, org, policy, risk, f"{tag}:self-service", teams.can_ask(manager_id),
                                       lambda: now[0])
    reached = _reachable(step)
    tally.self_service.append(reached)
    own = random.Random(f"{tag}:self-service-manager")  # the helpdesk sessions' draws stay as they were

    def confirms() -> Attestation:
        return Attestation.CONFIRMED if own.random() < args.manager_confirms else Attestation.UNSURE

    tally.self_service_verified.append(reached and converse(
        session, step, genuine_caller("self-service"), now, SECONDS_PER_ANSWER, manager=confirms).verified)

    # The genuine employee with the code in their own Teams (the usual case: they have a chat with Watchword).
    session, step, now = start("genuine", factors)
    asked_plan = _plan(session)
    genuine = genuine_caller("genuine")
    decision = converse(session, step, genuine, now, SECONDS_PER_ANSWER, has_code=True, manager=real_manager)
    tally.genuine.append(decision)
    # Questions-only capacity without follow-ups (a missed first question takes its "one more" with it), counting
    # as many versions of a multiple-choice kind as the session may ask: "thin data" is what questions can reach.
    kinds: dict[str, list[float]] = {}
    for q in plan.values():
        if q.follows is None:
            kinds.setdefault(q.kind, []).append(q.bits)
    per_kind = max(1, policy.multiple_choice_per_source)
    bits = [b for values in kinds.values() for b in sorted(values, reverse=True)[:per_kind]]
    best = sorted(bits, reverse=True)[:policy.max_questions]
    tally.slack.append((sum(best) - decision.bits_required, decision.verified))
    misses = sum(1 for t in decision.transcript if t.result != MatchResult.CORRECT.value
                 and t.question_id != FACTOR_QUESTION_ID)
    tally.by_misses[(min(misses, 2), decision.verified)] += 1
    _analyse_genuine(uid, decision, genuine, asked_plan, memory, truth, policy, tally)

    # Impostors: none has the code (offered, they cannot read it out); the manager is asked when questions fall
    # short and is now and then fooled. One fresh session each, then many resumed from that session's snapshot
    # (the same plan: the product's resume path).
    # Where questions alone cannot verify anyone (thin data), the product refuses before any question: no attempt.
    if thin:
        return
    chart = truth.chart(uid)
    linkedin = truth.linkedin_chart(uid)
    insider = truth.insider(uid, f"{tag}:teammate")
    models: list[tuple[str, int, list[bool], Counter[str], list[bool] | None]] = [
        ("informed", args.informed_attempts, tally.informed, tally.informed_hits, tally.informed_fresh),
        ("random", args.random_attempts, tally.random, tally.random_hits, tally.random_fresh),
        ("linkedin", args.informed_attempts, tally.linkedin, tally.linkedin_hits, None),
    ]
    if insider is not None:
        models.append(("teammate", args.teammate_attempts, tally.teammate, tally.teammate_hits, None))
    for kind, attempts, passes, hits, fresh in models:
        session, step, now = start(kind, factors)
        snapshot, plan = session.to_dict(), session.plan()

        def caller(i: int, kind: str = kind) -> Caller:
            rng = random.Random(f"{tag}:{kind}:{i}")
            if kind == "informed":
                return InformedImpostor(chart, rng)
            if kind == "linkedin":
                return InformedImpostor(linkedin, rng)
            if kind == "teammate":
                assert insider is not None
                return replace(insider, fallback=InformedImpostor(chart, rng), _queue={}, said=[])
            return RandomImpostor(truth.names, truth.group_names, truth.role_names, rng)

        decision = converse(session, step, caller(0), now, SECONDS_PER_ANSWER, manager=fooled_manager,
                            stop_when_lost=True)
        if fresh is not None:
            fresh.append(decision.verified)
        passes.append(decision.verified)
        _count_hits(decision, hits)
        _impostor_trail(tally, kind, uid, decision)
        for i in range(1, attempts + 1):
            now = [context.fetched_at]
            resumed = VerificationSession.from_dict(snapshot, lambda now=now: now[0], plan)
            decision = converse(resumed, resumed.check(), caller(i), now, SECONDS_PER_ANSWER, manager=fooled_manager,
                                stop_when_lost=True)
            passes.append(decision.verified)
            _count_hits(decision, hits)
            _impostor_trail(tally, kind, uid, decision)

    # The replay impostor: a day's worth of calls (new sessions, new agents), spreading guesses across them since
    # the cards say nothing about single answers. After the day's limit only the code or the manager can verify.
    # Each call of the day is a session of its own (its own seed, so its own options and decoys), started once per
    # target and resumed from its snapshot for every campaign: campaigns differ in the impostor, not the plans.
    calls = []
    for call in range(policy.max_attempts_per_day):
        session, _, _ = start(f"replay:{call}", factors)
        calls.append((session.to_dict(), session.plan()))
    for c in range(args.replay_campaigns):
        replay = ReplayImpostor(lambda c=c: InformedImpostor(chart, random.Random(f"{tag}:replay:{c}")),
                                reads_options=args.replay_reads_options)
        passed = False
        for snapshot, plan in calls:
            now = [context.fetched_at]
            resumed = VerificationSession.from_dict(snapshot, lambda now=now: now[0], plan)
            decision = converse(resumed, resumed.check(), replay.attempt(), now, SECONDS_PER_ANSWER,
                                manager=fooled_manager)  # played out: what a call says feeds the next one
            _count_hits(decision, tally.replay_hits)
            passed = passed or decision.verified
            right = {MatchResult.CORRECT.value, MatchResult.PARTIAL.value}
            choices = [t for t in decision.transcript if t.form == Form.MULTIPLE_CHOICE.value]
            picked = replay.intersected
            tally.replay_choice.extend((t.result in right, picked.get(t.question_id, False)) for t in choices)
        tally.replay.append(passed)


def start_self_service(context: UserContext, org: OrgKnowledge, policy: Policy, risk: RiskAssessment, seed: str,
                       manager_askable: bool, clock: Callable[[], datetime]) -> tuple[VerificationSession, Step]:
    """"Reset my password" in the person's own chat, started as dialogs/self_service_dialog.py starts it: the
    self-service policy (never the code: a stolen Teams session would see it), and their manager as a factor when
    the dialog's `self_service_factors` says so (`manager_askable`: `TeamsReach.can_ask`, as the product's
    `can_ask_manager` decides)."""
    available = self_service_factors(context.manager, context.profile.id, manager_askable)
    session = VerificationSession(clock, seed=seed)
    return session, session.start(context, org, self_service_policy(policy), risk, 0, available)


def self_service_reachable(context: UserContext, org: OrgKnowledge, policy: Policy, risk: RiskAssessment,
                           seed: str, manager_askable: bool) -> bool:
    """Whether self-service (`start_self_service`) asks anything at all instead of refusing up front. The one
    definition of the figure for bench.accuracy and bench.factors."""
    _, first = start_self_service(context, org, policy, risk, seed, manager_askable, lambda: context.fetched_at)
    return _reachable(first)


def _reachable(first: Step) -> bool:
    return first.decision is None or first.decision.outcome not in REFUSALS


def _compare_facts(uid: str, context: UserContext, org: OrgKnowledge, memory: Memory, truth: GroundTruth,
                   policy: Policy, tally: Tally) -> None:
    """What the product read (through the engine's own filters) against devtenant's records: the people each
    source would accept, the direct groups, the roles. A disagreement is a Graph-layer (or devtenant) bug,
    or a difference by design (Graph shows an attendee's decline only to that attendee)."""
    def people(parties: dict[str, Party]) -> set[str]:
        return {normalize(p.person.display_name if p.person else p.name) for p in parties.values()}

    read = {
        "meetings": people(meeting_partners(context, policy, org)),
        "chats": people(chat_partners(context, policy, org)),
        "mail": people(mail_senders(context, org, policy)), "contacts": people(contact_parties(context, org)),
        "groups (direct)": {normalize(g.name) for g in context.groups if g.is_direct},
        "groups (all)": {normalize(g.name) for g in context.groups},
        "roles": {normalize(r.display_name) for r in context.roles},
    }
    real = {source: {normalize(r.name) for r in memory.topics.get(source, ()) if r.note == ACCEPTED}
            for source in ("meetings", "chats", "mail", "contacts")}
    real["groups (direct)"] = {normalize(g.display_name) for g in truth.org.member_of(uid)}
    real["groups (all)"] = {normalize(g.display_name) for g in truth.org.transitive_member_of(uid)}
    real["roles"] = {normalize(r.display_name) for r in truth.roles_of(uid)}
    for source, got in read.items():
        want = real[source]
        for label, names in (("both", got & want), ("product_only", got - want), ("truth_only", want - got)):
            tally.agreement[(source, label)] += len(names)
            if names and label != "both":
                examples = tally.disagreements.setdefault((source, label), [])
                if len(examples) < 3:
                    examples.append(f"{truth.org.users[uid].display_name}: {', '.join(sorted(names)[:3])}")


def _plan(session: VerificationSession) -> dict[str, Question]:
    """The session's questions as planned at the start (for re-judging a genuine caller's intended answer)."""
    return {q.id: q for q in session.plan()}


def _impostor_trail(tally: Tally, kind: str, uid: str, decision: Decision) -> None:
    """An impostor verified, in one line: each question (kind, bits offered, result) and the factors that held."""
    if decision.verified:
        steps = " | ".join(f"{t.kind} {t.bits_offered:g}b {t.result}" for t in decision.transcript)
        tally.impostor_trails.append(f"{kind} impostor, {uid}: required {decision.bits_required:g}, earned "
                                     f"{decision.bits_earned:g}: {steps}")


def _count_hits(decision: Decision, hits: Counter[str]) -> None:
    if decision.verified:
        hits["PASSED by " + " + ".join(x.value for x in decision.factors)] += 1
    for t in decision.transcript:
        if t.result in (MatchResult.CORRECT.value, MatchResult.PARTIAL.value):
            hits[f"{t.kind} ({t.result})"] += 1


# --- why genuine callers fail ---------------------------------------------------------------------------------

def _analyse_genuine(uid: str, decision: Decision, caller: GenuineCaller, plan: dict[str, Question], memory: Memory,
                     truth: GroundTruth, policy: Policy, tally: Tally) -> None:
    causes: list[str] = []
    for entry in decision.transcript:
        if entry.question_id == FACTOR_QUESTION_ID:  # the code, not a question
            continue
        tally.genuine_by_source[(entry.source, entry.result)] += 1
        question = plan.get(entry.question_id)
        said = [s for s in caller.log if s.question_id == entry.question_id]
        for attempt in range(1, entry.tries + 1):
            outcome = entry.result if attempt == entry.tries else MatchResult.WRONG.value
            if outcome == MatchResult.CORRECT.value:
                continue
            cause = _cause([s for s in said if s.attempt == attempt], question, memory, outcome, truth)
            tally.misses[(entry.source, cause)] += 1
            causes.append(cause)
    if decision.verified:
        return
    if decision.outcome is Outcome.TIMED_OUT:
        ending = "timed out"
    elif decision.wrong_answers >= policy.max_wrong:
        ending = f"{policy.max_wrong} wrong answers"
    else:
        ending = "the remaining questions could not make up the bits"
    tally.failed_endings[ending] += 1
    for cause in set(causes) or {"every answer right, but the questions left could not reach the bits"}:
        tally.failed_sessions[cause] += 1
    tally.failed_trails.append(f"{uid}: " + _trail(decision, caller, plan))


def _trail(decision: Decision, caller: GenuineCaller, plan: dict[str, Question]) -> str:
    """A failed session in one line: each question (kind, bits offered, result, what the caller meant and said,
    with the noise applied), the strong factors, and the planned questions never asked (kind:bits)."""
    steps = []
    for t in decision.transcript:
        if t.question_id == FACTOR_QUESTION_ID:
            steps.append(f"[{t.kind} {t.result}]")
            continue
        said = [s for s in caller.log if s.question_id == t.question_id]
        words = "; ".join(f"{(s.meant.name if s.meant else '-')!s}->{s.text!r}" + (f" {'+'.join(s.noise)}"
                                                                                     if s.noise else "")
                          for s in said)
        steps.append(f"{t.kind} {t.bits_offered:g}b {t.result} ({words})")
    asked = {t.question_id for t in decision.transcript}
    left = sorted(((q.kind, q.bits) for q in plan.values() if q.id not in asked), key=lambda kb: -kb[1])
    return (f"required {decision.bits_required:g}, earned {decision.bits_earned:g}: " + " | ".join(steps)
            + "; never asked: " + (", ".join(f"{k}:{b:g}" for k, b in left) or "nothing"))


def _cause(said: list[Said], question: Question | None, memory: Memory, outcome: str, truth: GroundTruth) -> str:
    """Why one try of a genuine caller was not right: what they meant, whether the product's own rules
    should accept it, and whether the clean name would have been accepted (then the noise is to blame)."""
    first = next((s for s in said if not s.noise or s.noise[0] not in ("clarify", "clarify_unknown")), None)
    clarify = next((s for s in said if s.noise and s.noise[0] in ("clarify", "clarify_unknown")), None)
    if first is None or question is None:
        return "unexplained (no record of the answer)"
    if question.form is Form.MULTIPLE_CHOICE:
        if first.meant is None:
            return "recognised no option"
        if question.correct_option is not None and normalize(first.text) == normalize(
                question.options[question.correct_option]):
            return "picked the right option, already credited earlier (proves nothing new)"
        return "picked an option true by the wording that the product calls wrong: CHECK the decoys"
    if first.meant is None:
        if "blank" in first.noise:
            return "blanked: said I don't know"
        if not memory.recall(Kind.parse(question.kind)):
            return "remembers nobody this wording allows"
        return "forgot (or had already named) everyone who fits"
    meant = first.meant
    clean = match_answer(question, meant.name).result
    if clean is not MatchResult.CORRECT:
        if meant.note and meant.note != ACCEPTED:
            return f"true, but the product leaves it out: {meant.note}"
        if clean is MatchResult.PARTIAL and truth.namesakes(meant.name) > 1:
            return "a namesake in the tenant shares the full name (partial credit by design)"
        return f"true and within the product's rules, yet judged {clean.value}: CHECK the product"
    tags = [t for t in (*first.noise, *(clarify.noise if clarify else ())) if t != "clarify"]
    if outcome == MatchResult.PARTIAL.value:
        return "partial credit: " + ("+".join(tags) or "ambiguous name")
    return "noise: " + ("+".join(tags) or "none (session state, e.g. a person already credited)")


# --- figures ------------------------------------------------------------------------------------------------

def upper_bound_95(passes: int, attempts: int) -> float:
    """One-sided 95% upper bound on a rate: 3/n with no passes (the rule of three), else the exact
    Clopper-Pearson bound, found by bisection on the binomial tail."""
    if attempts <= 0:
        return 1.0
    if passes == 0:
        return min(1.0, 3.0 / attempts)
    if passes >= attempts:
        return 1.0
    lo, hi = passes / attempts, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _binomial_cdf(passes, attempts, mid) > 0.05:
            lo = mid
        else:
            hi = mid
    return hi


def _binomial_cdf(k: int, n: int, p: float) -> float:
    log_p, log_q = math.log(p), math.log1p(-p)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
                        + (n - i) * log_q) for i in range(k + 1))


def _rate(hits: int, n: int) -> float:
    return hits / n if n else 0.0


def _figures(args: argparse.Namespace, truth: GroundTruth, loads: LoadReport, tally: Tally, generate_s: float,
             total_s: float) -> dict[str, Any]:
    genuine = tally.genuine
    verified = [d for d in genuine if d.verified]
    questions = [d.questions_asked for d in genuine]
    informed, rnd = sum(tally.informed), sum(tally.random)
    predicted = statistics.fmean(2.0 ** -d.bits_earned for d in verified) if verified else None
    figures: dict[str, Any] = {
        "genuine_pass_rate": round(_rate(len(verified), len(genuine)), 4),
        "informed_impostor_pass_rate": _rate(informed, len(tally.informed)),
        "random_impostor_pass_rate": _rate(rnd, len(tally.random)),
        "median_bits_when_verified": round(statistics.median(d.bits_earned for d in verified), 2) if verified else None,
        "median_questions_genuine": statistics.median(questions) if questions else None,
        "genuine_sessions": len(genuine),
        "genuine_verified": len(verified),
        "genuine_pass_rate_lower_95": round(1 - upper_bound_95(len(genuine) - len(verified), len(genuine)), 4),
        "informed_impostor_attempts": len(tally.informed),
        "informed_impostor_passes": informed,
        "informed_impostor_upper_95": upper_bound_95(informed, len(tally.informed)),
        "informed_impostor_fresh_passes": sum(tally.informed_fresh),
        "random_impostor_attempts": len(tally.random),
        "random_impostor_passes": rnd,
        "random_impostor_upper_95": upper_bound_95(rnd, len(tally.random)),
        "random_impostor_fresh_passes": sum(tally.random_fresh),
        "model_predicted_pass_probability": predicted,
        "targets": tally.targets,
        "refused_up_front": dict(sorted(tally.refused.items())),
        "refused_up_front_total": sum(tally.refused.values()),
        "federated_targets": tally.federated,
        "load_failures": sum(loads.failures.values()),
        "fault_rate": args.fault_rate,
        "verifications_ended_by_graph_errors": loads.ended_by_graph_errors,
        "verifications_ended_by_graph_errors_rate": round(_rate(loads.ended_by_graph_errors, tally.targets), 4),
        "contexts_loaded": len(loads.contexts),
        "contexts_without_sign_ins": sum(loads.without_sign_ins.values()),
        "sources_unavailable": dict(sorted(loads.unavailable.items())),
        "sign_in_throttle": "raised" if args.sign_ins == "raised" else "graph",
        "load_p50_ms": round(statistics.median(loads.elapsed_ms), 1) if loads.elapsed_ms else None,
        "load_round_trips_mean": round(statistics.fmean(loads.round_trips), 2) if loads.round_trips else None,
        "genuine_pass_rate_thin_data": _slack_rate(tally, lambda slack: slack < 8),
        "genuine_pass_rate_ample_data": _slack_rate(tally, lambda slack: slack >= 8),
        "genuine_targets_thin_data": sum(1 for slack, _ in tally.slack if slack < 8),
        "genuine_pass_rate_by_misses": {
            label: f"{tally.by_misses[(k, True)]}/{tally.by_misses[(k, True)] + tally.by_misses[(k, False)]}"
            for k, label in ((0, "none"), (1, "one"), (2, "two or more"))},
        "facts_product_vs_truth": {f"{s}: {label}": n for (s, label), n in sorted(tally.agreement.items())},
        "genuine_miss_causes": {f"{s}: {c}": n for (s, c), n in tally.misses.most_common()},
        "genuine_failed_session_causes": dict(tally.failed_sessions.most_common()),
        "seed": args.seed,
        "users": args.users,
        "people": truth.population,
        "generate_seconds": round(generate_s, 2),
        "load_seconds": round(loads.seconds, 2),
        "simulate_seconds": round(tally.seconds, 2),
        "seconds": round(total_s, 2),
    }
    for kind in ("teammate", "linkedin", "replay"):
        results: list[bool] = getattr(tally, kind)
        figures[f"{kind}_impostor_attempts"] = len(results)
        figures[f"{kind}_impostor_passes"] = sum(results)
        figures[f"{kind}_impostor_pass_rate"] = _rate(sum(results), len(results))
        figures[f"{kind}_impostor_upper_95"] = upper_bound_95(sum(results), len(results))
        hits: Counter[str] = getattr(tally, f"{kind}_hits")
        figures[f"{kind}_impostor_right_answers"] = dict(hits.most_common(6))
    figures["informed_impostor_right_answers"] = dict(tally.informed_hits.most_common(6))
    q_only = tally.genuine_questions_only
    figures["genuine_pass_rate_questions_only"] = round(_rate(sum(q_only), len(q_only)), 4)
    figures["genuine_questions_only_sessions"] = len(q_only)
    figures["median_questions_genuine_questions_only"] = (statistics.median(tally.questions_only_asked)
                                                          if tally.questions_only_asked else None)
    figures.update(_self_service_figures([tally]))
    figures["targets_met"] = {key: _met(figures[key], *TARGETS[key]) for key in TARGETS}
    return figures


def _summary(runs: dict[int, tuple[dict[str, Any], Tally]], noise: Noise, args: argparse.Namespace,
             seconds: float) -> dict[str, Any]:
    """The run's figures: genuine rates per organisation size, impostor rates pooled over sizes (each with its
    one-sided 95% upper bound), the memory model's rates, and each size's detail."""
    out: dict[str, Any] = {}
    tallies = [t for _, t in runs.values()]
    for users, (f, _) in runs.items():
        out[f"genuine_pass_rate_{users}"] = f["genuine_pass_rate"]
        out[f"genuine_pass_rate_lower_95_{users}"] = f["genuine_pass_rate_lower_95"]
        out[f"genuine_pass_rate_questions_only_{users}"] = f["genuine_pass_rate_questions_only"]
    genuine = [d for t in tallies for d in t.genuine]
    out["genuine_pass_rate"] = round(_rate(sum(d.verified for d in genuine), len(genuine)), 4)
    thin = [ok for t in tallies for slack, ok in t.slack if slack < 8]
    out["genuine_pass_rate_thin_data"] = round(_rate(sum(thin), len(thin)), 4) if thin else None
    out["genuine_targets_thin_data"] = len(thin)
    asked = [d.questions_asked for d in genuine]
    out["median_questions_genuine"] = statistics.median(asked) if asked else None
    q_asked = [n for t in tallies for n in t.questions_only_asked]
    out["median_questions_genuine_questions_only"] = statistics.median(q_asked) if q_asked else None
    out.update(_self_service_figures(tallies))
    for kind in IMPOSTORS:
        results = [ok for t in tallies for ok in getattr(t, kind)]
        out[f"{kind}_impostor_pass_rate"] = _rate(sum(results), len(results))
        out[f"{kind}_impostor_upper_95"] = upper_bound_95(sum(results), len(results))
        out[f"{kind}_impostor_attempts"] = len(results)
        out[f"{kind}_impostor_passes"] = sum(results)
    out["replay_impostor_calls_per_campaign"] = Policy().max_attempts_per_day
    choice = [c for t in tallies for c in t.replay_choice]
    out["replay_impostor_choice_answers"] = len(choice)
    out["replay_impostor_choice_right_rate"] = round(_rate(sum(r for r, _ in choice), len(choice)), 4)
    out["replay_impostor_choice_intersected"] = sum(i for _, i in choice)
    out["replay_impostor_choice_intersected_right"] = sum(r and i for r, i in choice)
    out["genuine_memory_model"] = noise.describe()
    out["factors_modelled"] = (
        f"genuine_pass_rate_*: the person has a chat with Watchword and reads out the code; their manager, when "
        f"they have one, is asked when the policy says and confirms with p={args.manager_confirms} (else 'I don't "
        f"know'). *_questions_only: no code, no manager (refusals for thin data count as failures). Impostors never "
        f"have the code; the manager, asked, is fooled with p={args.manager_fooled} (else 'I don't know').")
    out["targets_met"] = {
        **{f"genuine_pass_rate_{users}": _met(f["genuine_pass_rate"], ">=", 0.97) for users, (f, _) in runs.items()},
        **{key: _met(out[key], *SUMMARY_TARGETS[key]) for key in SUMMARY_TARGETS},
        **{f"{kind}_impostor_upper_95": _met(out[f"{kind}_impostor_upper_95"], *SUMMARY_TARGETS[
            f"{kind}_impostor_pass_rate"]) for kind in IMPOSTORS},
    }
    # Compatibility with earlier runs' keys (one organisation): the largest size's detail.
    largest = runs[max(runs)][0]
    for key in ("median_bits_when_verified", "model_predicted_pass_probability", "refused_up_front",
                "federated_targets", "genuine_sessions", "genuine_verified"):
        out[key] = largest[key]
    out["per_size"] = {str(users): {k: v for k, v in f.items() if not isinstance(v, dict) or k == "refused_up_front"}
                       for users, (f, _) in runs.items()}
    out["seed"] = args.seed
    out["seconds"] = round(seconds, 2)
    return out


def _self_service_figures(tallies: Sequence[Tally]) -> dict[str, float]:
    """Of ordinary users (not refused at the helpdesk before any question): self-service asks them anything (with the
    tenant's consent as devtenant gives it, the optional install permission granted; and without that permission),
    and verifies the genuine employee."""
    def rate(name: str) -> float:
        values = [ok for t in tallies for ok in getattr(t, name)]
        return round(_rate(sum(values), len(values)), 4)

    return {"self_service_reachable_rate": rate("self_service"),
            "self_service_reachable_rate_without_install_permission": rate("self_service_no_install"),
            "self_service_genuine_pass_rate": rate("self_service_verified")}


def _print_summary(f: dict[str, Any]) -> None:
    print("\n=== bench.accuracy summary (all organisation sizes) ===")
    sizes = [k.rsplit("_", 1)[1] for k in f if k.startswith("genuine_pass_rate_") and k.rsplit("_", 1)[1].isdigit()
             and "questions_only" not in k and "lower" not in k]
    for n in sizes:
        print(f"  {n:>5} people: genuine {f[f'genuine_pass_rate_{n}']:.3f} with the code "
              f"(lower 95% {f[f'genuine_pass_rate_lower_95_{n}']:.3f}), "
              f"{f[f'genuine_pass_rate_questions_only_{n}']:.3f} with questions only")
    print(f"  thin data {f['genuine_pass_rate_thin_data']} ({f['genuine_targets_thin_data']} targets); median "
          f"questions {f['median_questions_genuine']} with the code, {f['median_questions_genuine_questions_only']} "
          f"questions only")
    print(f"  self-service: reachable {f['self_service_reachable_rate']:.3f} (managers asked by installing Watchword "
          f"for them; {f['self_service_reachable_rate_without_install_permission']:.3f} where the tenant did not grant "
          f"that), genuine employee verified {f['self_service_genuine_pass_rate']:.3f}")
    for kind in IMPOSTORS:
        print(f"  {kind:9} impostor: {f[f'{kind}_impostor_passes']} passes in {f[f'{kind}_impostor_attempts']} "
              f"{'campaigns' if kind == 'replay' else 'attempts'} = {f[f'{kind}_impostor_pass_rate']:.5f}, "
              f"95% upper bound {f[f'{kind}_impostor_upper_95']:.5f}")
    print("  genuine memory model: " + ", ".join(f"{k} {v}" for k, v in f["genuine_memory_model"].items()))
    missed = [k for k, ok in f["targets_met"].items() if ok is False]
    print("  targets " + ("all met" if not missed else "NOT MET: " + ", ".join(missed)))


def _slack_rate(tally: Tally, keep: Callable[[float], bool]) -> float | None:
    kept = [ok for slack, ok in tally.slack if keep(slack)]
    return round(_rate(sum(kept), len(kept)), 4) if kept else None


def _met(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def _print_report(args: argparse.Namespace, truth: GroundTruth, loads: LoadReport, tally: Tally,
                  f: dict[str, Any]) -> None:
    def target(key: str) -> str:
        op, bound = TARGETS[key]
        met = f["targets_met"][key]
        return f"target {op.replace('>=', '≥').replace('<=', '≤')} {bound:g}: {'met' if met else 'NOT MET'}"

    print(f"bench.accuracy: devtenant seed {args.seed}, {args.users} accounts ({truth.population} people), "
          f"{f['targets']} targets; default Policy ({Policy().required_bits:g} bits)")
    print(f"loaded {f['contexts_loaded']} contexts through GraphDirectory.load_context in {loads.seconds:.1f} s "
          f"(p50 {f['load_p50_ms']} ms, {f['load_round_trips_mean']} round trips on average); "
          f"load failures {f['load_failures']}" + "".join(f"\n  {why}: {n}" for why, n in loads.failures.items()))
    print(f"sign-in logs: {loads.throttle}; contexts without sign-ins: {f['contexts_without_sign_ins']}"
          + (f" {dict(loads.without_sign_ins)}" if loads.without_sign_ins else ""))
    if loads.unavailable:
        print(f"sources unavailable (contexts): {dict(loads.unavailable)}")
    refused = ", ".join(f"{k} {v}" for k, v in sorted(tally.refused.items())) or "none"
    print(f"refused before any question: {f['refused_up_front_total']} of {f['contexts_loaded']} ({refused}); "
          f"federated targets {f['federated_targets']} (questioned; the reset itself is refused later)")
    print(f"genuine: {f['genuine_verified']}/{f['genuine_sessions']} verified = {f['genuine_pass_rate']:.3f}, "
          f"95% lower bound {f['genuine_pass_rate_lower_95']:.3f} ({target('genuine_pass_rate')}); "
          f"median {f['median_questions_genuine']} questions ({target('median_questions_genuine')}); "
          f"median {f['median_bits_when_verified']} bits when verified")
    for kind, key in (("informed", "informed_impostor"), ("random", "random_impostor")):
        extra = args.informed_attempts if kind == "informed" else args.random_attempts
        print(f"{kind} impostor: {f[key + '_passes']} passes in {f[key + '_attempts']} attempts "
              f"({f['genuine_sessions']} fresh sessions, {f[key + '_fresh_passes']} passed; + {extra} resumed per "
              f"target) = {f[key + '_pass_rate']:.6f}, 95% upper bound {f[key + '_upper_95']:.6f} "
              f"({target(key + '_pass_rate')})")
    for kind in ("teammate", "linkedin", "replay"):
        unit = "campaigns" if kind == "replay" else "attempts"
        print(f"{kind} impostor: {f[kind + '_impostor_passes']} passes in {f[kind + '_impostor_attempts']} {unit} = "
              f"{f[kind + '_impostor_pass_rate']:.6f}, 95% upper bound {f[kind + '_impostor_upper_95']:.6f}")
    choice = tally.replay_choice
    if choice:
        print(f"  replay impostor's multiple-choice answers: {sum(r for r, _ in choice)} right of {len(choice)} "
              f"({_rate(sum(r for r, _ in choice), len(choice)):.3f}; 1 in {Policy().multiple_choice_options} by "
              f"chance); picked from options shown in an earlier call: {sum(i for _, i in choice)}, of them right "
              f"{sum(r and i for r, i in choice)}")
    for kind, hits in (("informed", tally.informed_hits), ("random", tally.random_hits),
                       ("teammate", tally.teammate_hits), ("linkedin", tally.linkedin_hits),
                       ("replay", tally.replay_hits)):
        if hits:
            print(f"  {kind} impostors' right answers by question: "
                  + ", ".join(f"{k} {n}" for k, n in hits.most_common(8)))
    predicted = f["model_predicted_pass_probability"]
    print("model's own predicted impostor pass probability (mean 2^-bits of verified genuine sessions): "
          + (f"{predicted:.3g}" if predicted is not None else "n/a"))
    print(f"genuine noise: forget {args.forget}, first name only {args.first_name_only}, nickname {args.nickname}, "
          f"typo {args.typo}, I don't know {args.dont_know}, knows surname {args.knows_surname}, "
          f"accents dropped {args.plain_letters}")
    by_source: dict[str, Counter[str]] = {}
    for (source, result), n in tally.genuine_by_source.items():
        by_source.setdefault(source, Counter())[result] += n
    thin = f["genuine_targets_thin_data"]
    print(f"question pool: for {thin} of {f['genuine_sessions']} targets the best {Policy().max_questions} questions "
          f"(follow-ups left out) exceed the required bits by less than 8: genuine pass rate "
          f"{f['genuine_pass_rate_thin_data']} there, {f['genuine_pass_rate_ample_data']} elsewhere")
    print("genuine pass rate by questions not answered right in the session: " + ", ".join(
        f"{label} {v}" for label, v in f["genuine_pass_rate_by_misses"].items()))
    print("facts the product read vs devtenant's records (per target, summed: both / product only / truth only):")
    for source in dict.fromkeys(s for s, _ in tally.agreement):
        a = tally.agreement
        print(f"  {source:16} {a[(source, 'both')]:6} / {a[(source, 'product_only')]:4} / "
              f"{a[(source, 'truth_only')]:4}" + "".join(
                  f"\n      {label}: " + "; ".join(tally.disagreements[(source, label)])
                  for label in ("product_only", "truth_only") if (source, label) in tally.disagreements))
    print("genuine answers by source (question results):")
    for source, results in sorted(by_source.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(results.values())
        print(f"  {source:9} {total:5} asked: " + ", ".join(f"{r} {n}" for r, n in results.most_common())
              + f" ({_rate(results['correct'], total):.1%} right)")
    print("genuine tries that were not right, by cause:")
    for (source, cause), n in tally.misses.most_common(15):
        print(f"  {n:5}  {source}: {cause}")
    failed = f["genuine_sessions"] - f["genuine_verified"]
    print(f"failed genuine sessions ({failed}): ended by " + (", ".join(
        f"{k} {v}" for k, v in tally.failed_endings.most_common()) or "-") + "; causes seen in them:")
    for cause, n in tally.failed_sessions.most_common(10):
        print(f"  {n:5}  {cause}")
    if args.trails:
        print("failed genuine sessions, one by one:")
        for trail in tally.failed_trails:
            print("  - " + trail)
        print("impostors verified, one by one:")
        for trail in tally.impostor_trails:
            print("  - " + trail)
    print(f"time: generate {f['generate_seconds']} s, load {f['load_seconds']} s, simulate {f['simulate_seconds']} s, "
          f"total {f['seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
