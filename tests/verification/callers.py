"""Simulated callers for session tests: the real Alan (with optional recall noise) and an informed
impostor who has read the org chart and guesses the obvious first."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from tests.verification import builders as b
from verification import Decision, OrgKnowledge, Policy, Prompt, UserContext, VerificationSession
from verification.risk import NO_RISK, RiskAssessment
from verification.session import FULL_NAME_PROMPT

_NICKNAMES = {"Katherine": "Kate", "Vint": "Vinton", "Timothy": "Tim"}


@dataclass
class GenuineCaller:
    """Answers from what Alan really did. `forget` drops a remembered name, `first_name_only` says just
    the first name, `typo` swaps two letters, `nickname` uses a short form."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    forget: float = 0.0
    first_name_only: float = 0.0
    typo: float = 0.0
    knows_surname: float = 1.0
    said: set[str] = field(default_factory=set)
    _tried: dict[str, list[str]] = field(default_factory=dict)
    _last: str = ""

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return self._last if self.rng.random() < self.knows_surname else "I don't know"
        names = b.genuine_answers(prompt.kind)
        if prompt.options:
            return next((o for o in prompt.options if o in names), "no idea")
        tried = self._tried.setdefault(prompt.question_id, [])
        fresh = [n for n in names if n not in self.said and n not in tried and self.rng.random() >= self.forget]
        if not fresh:
            return "I don't know"
        name = fresh[0]
        tried.append(name)
        self.said.add(name)
        self._last = name
        return self._say(name)

    def _say(self, name: str) -> str:
        words = name.split()
        if len(words) > 1 and self.rng.random() < self.first_name_only:
            return _NICKNAMES.get(words[0], words[0])
        if len(name) > 6 and self.rng.random() < self.typo:
            i = self.rng.randrange(1, len(name) - 2)
            return name[:i] + name[i + 1] + name[i] + name[i + 2:]
        return name


@dataclass
class InformedImpostor:
    """Knows OrgKnowledge and reads the wording: guesses manager, teammates, skip-level, department
    colleagues (closest first), big groups, the commonest role; picks multiple-choice options from the
    department first."""

    org: OrgKnowledge
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _queue: dict[str, list[str]] = field(default_factory=dict)

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return "I don't know"
        if prompt.options:
            dept = {p.display_name for p in self.org.department_members}
            inside = [o for o in prompt.options if o in dept]
            return self.rng.choice(inside or list(prompt.options))
        queue = self._queue.setdefault(prompt.question_id, self._guesses(prompt.kind))
        return queue.pop(0) if queue else "no idea"

    def _guesses(self, kind: str) -> list[str]:
        source = kind.split(".")[0]
        if source == "groups":
            return [g.name for g in sorted(self.org.groups, key=lambda g: -(g.member_count or 0))]
        if source == "roles":
            return [r.name for r in sorted(self.org.roles, key=lambda r: -r.holders) if not r.is_privileged]
        o = self.org
        tiers = [[o.manager], list(o.peers), list(o.direct_reports), [o.skip_level], list(o.department_members)]
        scope = kind.rsplit(".", 1)[-1]
        skip = {"outside_team": 4, "outside_department": 5}.get(scope, 0)
        out: list[str] = []
        for tier in tiers[skip:]:
            people = [p.display_name for p in tier if p is not None and p.display_name not in out]
            self.rng.shuffle(people)
            out.extend(people)
        return out


def run(caller, context: UserContext | None = None, org: OrgKnowledge | None = None, policy: Policy | None = None,
        risk: RiskAssessment = NO_RISK, seed: str = "seed") -> Decision:
    """Drive one session to its decision, 30 seconds per answer."""
    now = [b.NOW]
    session = VerificationSession(lambda: now[0], seed=seed)
    step = session.start(context or b.context(), org or b.org(), policy or Policy(), risk, 0)
    while not step.done:
        assert step.prompt is not None
        now[0] += timedelta(seconds=30)
        step = session.answer(caller(step.prompt))
    assert step.decision is not None
    return step.decision
