"""Simulated callers for verification sessions: the genuine employee, a random impostor, an informed impostor.

Each caller is a function from the `Prompt` a session shows to the words the agent types, and answers only
from plain data it is given, never from the session's plan or the product's context:

* `GenuineCaller` recalls from a `Memory` of what the employee really did (who they met, chatted with, heard
  from, saved, which groups and roles they hold), with human noise: forgetting, "I don't know", first names
  and nicknames, typos, accents dropped by the agent.
* `InformedImpostor` knows the public org chart around the target (`Chart`) and reads the question's
  wording: manager, teammates, reports, skip-level and department colleagues first (minus the ones the
  wording rules out), then anyone; groups biggest first (the ones the wording allows); common roles.
* `RandomImpostor` guesses names, groups and roles uniformly from the directory.

All randomness comes from the caller's seeded `random.Random`, so a run is reproducible. bench/accuracy.py
fills these from devtenant's ground truth; tests/verification from a hand-built fixture.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from nicknames import NickNamer

from verification import Decision, Prompt, VerificationSession
from verification.factors import Attestation, Factor
from verification.names import normalize, tokens
from verification.questions.roles import COMMON_ROLES
from verification.session import FULL_NAME_PROMPT, Step

Caller = Callable[[Prompt], str]
PEOPLE_SOURCES = frozenset({"meetings", "chats", "mail", "contacts", "hierarchy"})
DONT_KNOW = "I don't know"


class Relation(StrEnum):
    """How the public org chart relates a person to the target (what a question's wording can rule out)."""

    MANAGER = "manager"
    SKIP = "skip"  # the manager's manager
    TEAM = "team"  # the manager's other reports
    REPORT = "report"
    DEPT = "dept"
    OTHER = "other"  # elsewhere in the organisation
    EXTERNAL = "external"


# What each wording of a people question rules out (verification/questions/people.py states it to the caller).
RULED_OUT: Mapping[str, frozenset[Relation]] = {
    "anyone": frozenset(),
    "outside_team": frozenset({Relation.MANAGER, Relation.SKIP, Relation.TEAM, Relation.REPORT}),
    "outside_department": frozenset({Relation.MANAGER, Relation.SKIP, Relation.TEAM, Relation.REPORT, Relation.DEPT}),
    "outside_organisation": frozenset(Relation) - {Relation.EXTERNAL},
}


@dataclass(frozen=True, slots=True)
class Kind:
    """A question's kind split up: "meetings.met_again.outside_team" -> meetings, met, again, outside_team."""

    source: str
    family: str
    scope: str
    again: bool

    @classmethod
    def parse(cls, kind: str) -> Kind:
        parts = kind.split(".")
        family = parts[1] if len(parts) > 1 else ""
        again = family.endswith("_again")
        return cls(parts[0], family.removesuffix("_again"), parts[2] if len(parts) > 2 else "anyone", again)

    @property
    def ruled_out(self) -> frozenset[Relation]:
        return RULED_OUT.get(self.scope, frozenset())


# --- the genuine employee ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Recollection:
    """One thing the employee could say: a person (full name as they know it), a group or a role.

    `weight` is salience (how likely it comes to mind before the others); `note` says where the fact comes
    from ("1:1 meeting", "private meeting only", "meeting chat"), for a bench's analysis of failures."""

    name: str
    relation: Relation = Relation.OTHER
    weight: float = 1.0
    given: str | None = None  # a person's first name: lets the caller say just that, or a nickname
    note: str = ""
    recall: float = 1.0  # chance the employee knows this at all (e.g. low for a security group they are in)
    with_team: bool = False  # only ever together with a teammate (a team or project meeting, a team chat)


@dataclass(frozen=True)
class Memory:
    """What the employee really did, by topic: a source ("meetings", "chats", "mail", "contacts", "groups",
    "roles") or a source and family ("hierarchy.manager", "meetings.in_subject"), the latter first."""

    topics: Mapping[str, Sequence[Recollection]]

    def recall(self, kind: Kind) -> list[Recollection]:
        """Everything that fits the question, the wording's exclusions applied."""
        found = self.topics.get(f"{kind.source}.{kind.family}")
        if found is None:
            found = self.topics.get(kind.source, ())
        return [r for r in found if r.relation not in kind.ruled_out]

    def recognise(self, kind: Kind, options: Sequence[str]) -> list[int]:
        """Multiple choice: the options the employee knows to be true for this question (no wording applies)."""
        found = self.topics.get(f"{kind.source}.{kind.family}")
        known = {normalize(r.name) for r in (self.topics.get(kind.source, ()) if found is None else found)}
        return [i for i, option in enumerate(options) if normalize(option) in known]


@dataclass(frozen=True, slots=True)
class Said:
    """One answer of a genuine caller, for failure analysis: the question, what was meant, what was typed."""

    question_id: str
    kind: str
    attempt: int
    meant: Recollection | None  # None for "I don't know"
    text: str
    noise: tuple[str, ...]  # first_name, nickname, typo, plain_letters, clarify_unknown


@dataclass
class GenuineCaller:
    """The real employee, answering from `memory` with recall noise (each a probability):

    forget — a person they dealt with does not come to mind (decided once per person and source per
        session); groups and roles are not forgotten this way, only by their own `Recollection.recall`;
    dont_know — blanks on a question and says "I don't know"; `dont_know_by_source` overrides it per source
        (contacts and mail are the hardest to recall);
    team_slip — ignores "none of your teammates" in the wording and names someone only ever met or chatted with
        together with a teammate (true, but worth nothing);
    first_name_only — says just the first name (the session then asks for the full name);
    nickname — uses a short form of the first name when the nicknames table has one (Bill for William);
    typo — the agent's typing: one letter swapped, dropped, doubled or replaced;
    plain_letters — the agent types without accents (José -> Jose);
    knows_surname — answers "their full name?" with it (else "I don't know").
    Never repeats someone already named in the session (the wording asks for someone new)."""

    memory: Memory
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    forget: float = 0.0
    first_name_only: float = 0.0
    typo: float = 0.0
    knows_surname: float = 1.0
    nickname: float = 0.0
    dont_know: float = 0.0
    plain_letters: float = 0.0
    dont_know_by_source: Mapping[str, float] = field(default_factory=dict)
    team_slip: float = 0.0
    said: set[str] = field(default_factory=set)
    log: list[Said] = field(default_factory=list)
    _forgotten: dict[tuple[str, str], bool] = field(default_factory=dict)
    _tried: dict[str, list[str]] = field(default_factory=dict)
    _blank: set[str] = field(default_factory=set)
    _last: tuple[Recollection, str] | None = None  # meant, and the first-name form used for it

    def __post_init__(self) -> None:
        self.said = {normalize(n) for n in self.said}

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return self._full_name(prompt)
        kind = Kind.parse(prompt.kind)
        if prompt.options:
            known = self.memory.recognise(kind, prompt.options)
            text = prompt.options[known[0]] if known else "no idea"
            self._log(prompt, None if not known else Recollection(text, note="recognised option"), text, ())
            return text
        blank = self.dont_know_by_source.get(kind.source, self.dont_know)
        if prompt.question_id not in self._tried and self.rng.random() < blank:
            self._blank.add(prompt.question_id)
        if prompt.question_id in self._blank:
            return self._log(prompt, None, DONT_KNOW, ("blank",))
        tried = self._tried.setdefault(prompt.question_id, [])
        heeds_team = "teammates" in prompt.text and self.rng.random() >= self.team_slip
        fresh = [r for r in self.memory.recall(kind)
                 if normalize(r.name) not in self.said and r.name not in tried and not self._forgets(kind.source, r)
                 and not (heeds_team and r.with_team)]
        if not fresh:
            return self._log(prompt, None, DONT_KNOW, ("nothing_left",))
        meant = _weighted_pick(self.rng, fresh)
        tried.append(meant.name)
        self.said.add(normalize(meant.name))
        text, noise = self._say(meant)
        return self._log(prompt, meant, text, noise)

    def _forgets(self, source: str, r: Recollection) -> bool:
        key = (source, r.name)
        if key not in self._forgotten:
            remembers = r.recall * (1.0 - self.forget if source in PEOPLE_SOURCES else 1.0)
            self._forgotten[key] = self.rng.random() >= remembers
        return self._forgotten[key]

    def _say(self, r: Recollection) -> tuple[str, tuple[str, ...]]:
        noise: list[str] = []
        given = r.given
        full = r.name
        if given and given in full and self.rng.random() < self.nickname:
            short = _nickname(given, self.rng)
            if short:
                full = full.replace(given, short, 1)
                given = short
                noise.append("nickname")
        text = full
        if given and len(tokens(r.name)) > 1 and self.rng.random() < self.first_name_only:
            text = given
            noise.append("first_name")
        self._last = (r, given or "")
        return self._noisy(text, noise)

    def _noisy(self, text: str, noise: list[str]) -> tuple[str, tuple[str, ...]]:
        if self.rng.random() < self.plain_letters:
            plain = _plain(text)
            if plain != text:
                text = plain
                noise.append("plain_letters")
        if self.rng.random() < self.typo:
            text = _typo(text, self.rng)
            noise.append("typo")
        return text, tuple(noise)

    def _full_name(self, prompt: Prompt) -> str:
        if self._last is None or self.rng.random() >= self.knows_surname:
            return self._log(prompt, self._last[0] if self._last else None, DONT_KNOW, ("clarify_unknown",))
        meant, given = self._last
        full = meant.name
        if given and meant.given and given != meant.given:
            full = full.replace(meant.given, given, 1)
        text, noise = self._noisy(full, [])
        return self._log(prompt, meant, text, ("clarify", *noise))

    def _log(self, prompt: Prompt, meant: Recollection | None, text: str, noise: tuple[str, ...]) -> str:
        self.log.append(Said(prompt.question_id, prompt.kind, 1, meant, text, noise))
        return text


# --- impostors --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    size: int
    tenant_wide: bool = False


@dataclass(frozen=True)
class Chart:
    """The public directory around the target, as an informed impostor reads it.

    `tiers`: people in guessing order, each tier labelled with its relation to the target (manager,
    teammates, reports, skip-level, then the department closest first); `everyone`: the rest of the
    directory, guessed uniformly once the tiers run out; `groups` with their sizes; `hints`: words of the
    target's department, title and office (groups named like them come first); `roles`: the tenant's
    roles, most held first."""

    tiers: Sequence[tuple[Relation, Sequence[str]]]
    everyone: Sequence[str] = ()
    groups: Sequence[GroupInfo] = ()
    hints: frozenset[str] = frozenset()
    roles: Sequence[str] = ()
    big_group: int = 50  # the wording "a smaller one" rules out lists bigger than this (the product's own rule)


@dataclass
class InformedImpostor:
    """Guesses down the public ranking, reading the wording; full names, so "their full name?" costs nothing.
    Multiple choice: one of the options that look most alike (the right one hides among look-alikes)."""

    chart: Chart
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    said: list[str] = field(default_factory=list)
    _queue: dict[str, list[str]] = field(default_factory=dict)
    _last: str = ""

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return self._last or DONT_KNOW
        kind = Kind.parse(prompt.kind)
        if prompt.options:
            return self._choose(kind, prompt.options)
        queue = self._queue.get(prompt.question_id)
        if queue is None:
            queue = self._queue[prompt.question_id] = self._guesses(kind, prompt.text)
        if "haven't named already" in prompt.text or kind.again:
            queue[:] = [n for n in queue if n not in self.said]
        if not queue:
            return "no idea"
        self._last = queue.pop(0)
        self.said.append(self._last)
        return self._last

    def _guesses(self, kind: Kind, text: str) -> list[str]:
        if kind.source == "groups":
            return self._group_guesses(text)
        if kind.source == "roles":
            return [*self.chart.roles, *(r for r in COMMON_ROLES if r not in self.chart.roles)]
        if Relation.OTHER in kind.ruled_out:  # someone from outside the organisation: the directory names nobody
            return []
        out: list[str] = []
        # The wording rules people out wherever else they appear (the manager is in the department too).
        seen = {p for relation, people in self.chart.tiers if relation in kind.ruled_out for p in people}
        for relation, people in self.chart.tiers:
            if relation in kind.ruled_out:
                continue
            tier = [p for p in people if p not in seen]
            self.rng.shuffle(tier)
            out.extend(tier)
            seen.update(tier)
        # After the named tiers: anyone else, uniformly (a handful is plenty: two tries per question).
        rest = [p for p in self.rng.sample(list(self.chart.everyone), min(20, len(self.chart.everyone)))
                if p not in seen]
        return out + rest

    def _group_guesses(self, text: str) -> list[str]:
        groups = list(self.chart.groups)
        if "company-wide" in text.lower() or "smaller one" in text.lower():
            groups = [g for g in groups if not g.tenant_wide and g.size <= self.chart.big_group]
        self.rng.shuffle(groups)  # ties in size: any order
        named = sorted((g for g in groups if self._named_like(g.name)), key=lambda g: -g.size)
        rest = sorted((g for g in groups if not self._named_like(g.name)), key=lambda g: -g.size)
        return [g.name for g in (*named, *rest)]

    def _named_like(self, name: str) -> bool:
        return bool(set(tokens(name)) & self.chart.hints)

    def _choose(self, kind: Kind, options: Sequence[str]) -> str:
        if kind.source == "groups":
            sizes = {normalize(g.name): g for g in self.chart.groups}

            def look(option: str) -> object:
                g = sizes.get(normalize(option))
                band = next(i for i, top in enumerate((10, 25, 50, 10**9)) if (g.size if g else 0) <= top)
                return self._named_like(option), band
        else:
            rank = {normalize(p): i for i, (_, people) in enumerate(self.chart.tiers) for p in people}

            def look(option: str) -> object:
                return rank.get(normalize(option), len(self.chart.tiers))
        classes = [look(o) for o in options]
        modal = Counter(classes).most_common(1)[0][0]
        return self.rng.choice([o for o, c in zip(options, classes, strict=True) if c == modal])


@dataclass
class RandomImpostor:
    """Knows nothing about the target: names, groups and roles uniformly from the directory, full names."""

    names: Sequence[str]
    groups: Sequence[str]
    roles: Sequence[str]
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _last: str = ""

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return self._last or DONT_KNOW
        if prompt.options:
            return self.rng.choice(prompt.options)
        source = Kind.parse(prompt.kind).source
        pool = self.groups if source == "groups" else self.roles if source == "roles" else self.names
        self._last = self.rng.choice(pool) if pool else DONT_KNOW
        return self._last


@dataclass
class TeammateInsider:
    """A real peer of the target: answers from what the team shares and from their own footprint. `guesses` maps a
    question's source to the names the peer would say, most likely first (the team's meetings and project partners,
    the people the peer chats with and saves; never the target's 1:1s, private chats or mail); `groups`: the peer's
    own groups (the team's). Anything else, and multiple choice the peer recognises nothing in, as `fallback`."""

    guesses: Mapping[str, Sequence[tuple[str, Relation]]]
    groups: Sequence[str]
    known: frozenset[str]  # every name the peer could recognise among options (normalised)
    fallback: InformedImpostor
    _queue: dict[str, list[str]] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)
    _last: str = ""

    def __call__(self, prompt: Prompt) -> str:
        if prompt.text == FULL_NAME_PROMPT:
            return self._last or DONT_KNOW
        kind = Kind.parse(prompt.kind)
        if prompt.options:
            mine = [o for o in prompt.options if normalize(o) in self.known]
            return mine[0] if mine else self.fallback(prompt)
        queue = self._queue.get(prompt.question_id)
        if queue is None:
            if kind.source == "groups":
                queue = list(self.groups)
            elif kind.source == "roles":
                return self.fallback(prompt)
            else:
                queue = [n for n, rel in self.guesses.get(kind.source, ()) if rel not in kind.ruled_out]
            self._queue[prompt.question_id] = queue
        queue[:] = [n for n in queue if n not in self.said]
        if not queue:
            return self.fallback(prompt)
        self._last = queue.pop(0)
        self.said.append(self._last)
        return self._last


@dataclass
class ReplayImpostor:
    """Calls again and again (other agents, other conversations), learning from whatever the cards show. They show
    nothing about single answers, so the only sound strategy is to spread guesses: each attempt says, for every
    question, the next guesses not said in an earlier attempt (an informed impostor's order).

    `reads_options`: the cards show multiple-choice options, and each set holds one true answer; a free-recall question
    about the same source in a later call is answered first with names seen among that source's options (one from each
    set, spread across calls), then as before.

    Multiple choice, always: every option set shown is kept, per source; when a later call's options about the same
    source overlap a set seen before, the options in common are picked first (the intersection attack: were decoys
    drawn anew each call, the right answer would be the one option shown both times), then as before."""

    make: Callable[[], Caller]
    spent: dict[str, set[str]] = field(default_factory=dict)  # question kind -> names said in earlier attempts
    reads_options: bool = False
    seen: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # source -> option sets shown
    choices: dict[str, list[frozenset[str]]] = field(default_factory=dict)  # source -> option sets shown, all calls
    # This call's multiple-choice questions (by question id): whether the pick was an option an earlier call showed.
    intersected: dict[str, bool] = field(default_factory=dict)

    def attempt(self) -> Caller:
        inner = self.make()
        spent = self.spent
        self.intersected = {}
        last: list[str] = [""]

        def call(prompt: Prompt) -> str:
            if prompt.text == FULL_NAME_PROMPT:
                return last[0] if last[0] and self.reads_options else inner(prompt)
            source = Kind.parse(prompt.kind).source
            if prompt.options:
                sets = self.seen.setdefault(source, [])
                shown = tuple(sorted(prompt.options))  # the same set in another order is the same set
                if self.reads_options and shown not in sets:
                    sets.append(shown)
                return self._intersect(source, prompt) or inner(prompt)
            tried = spent.setdefault(prompt.kind, set())
            if self.reads_options and source in PEOPLE_SOURCES:
                # Round-robin over the option sets seen: each set's next name not said yet.
                for depth in range(max((len(o) for o in self.seen.get(source, ())), default=0)):
                    for options in self.seen.get(source, ()):
                        if depth < len(options) and options[depth] not in tried:
                            tried.add(options[depth])
                            last[0] = options[depth]
                            return options[depth]
            for _ in range(50):
                text = inner(prompt)
                if text not in tried or text in (DONT_KNOW, "no idea"):
                    tried.add(text)
                    last[0] = ""
                    return text
            return DONT_KNOW
        return call

    def _intersect(self, source: str, prompt: Prompt) -> str | None:
        """The option shown alongside the most earlier option sets of this source (ties: the first listed), or None
        when no earlier set shares an option with this one. Records this set for later calls."""
        options = frozenset(prompt.options)
        earlier = self.choices.setdefault(source, [])
        counts = Counter(o for s in earlier if s != options for o in s & options)
        if options not in earlier:
            earlier.append(options)
        if not counts:
            return None
        best = max(counts.values())
        self.intersected[prompt.question_id] = True
        return next(o for o in prompt.options if counts.get(o) == best)


# --- driving a session ------------------------------------------------------------------------------------

def converse(session: VerificationSession, step: Step, caller: Caller, now: list[datetime],
             seconds_per_answer: float = 30.0, on_answer: Callable[[Step, str], None] | None = None,
             has_code: bool = False, manager: Callable[[], Attestation] | None = None,
             stop_when_lost: bool = False) -> Decision:
    """Play a started session to its decision: each answer takes `seconds_per_answer` of the session's clock
    (`now[0]`, which the session's clock reads). `on_answer(step, text)` sees each step before its answer.

    The possession code, when the session offers it: the dialog shows it in the person's own Teams; a caller who
    `has_code` (the real employee, at their desk) reads it out right, anyone else says they cannot see it. The
    manager, when offered: `manager()` is their answer (None: the card could not be delivered). A session still
    waiting for something the simulation cannot give ends unverified. `stop_when_lost`: once the session can no longer
    verify the caller (`VerificationSession.can_still_pass`), cancel it instead of playing out the questions it would
    still ask: the same outcome (not verified), for a fraction of the work (benchmarks play thousands of impostors).
    """
    while not step.done:
        if stop_when_lost and not session.can_still_pass:
            step = session.cancel("The caller can no longer be verified (simulation stopped early).")
            break
        if Factor.POSSESSION in step.offer:
            code = session.issue_code()
            step = session.requested(Factor.POSSESSION)
            step = session.enter_code(code) if has_code else session.decline_code()
            continue
        if Factor.MANAGER in step.offer:
            step = session.requested(Factor.MANAGER, delivered=manager is not None)
            if manager is not None:
                step = session.attest(manager())
            continue
        if step.prompt is None:  # waiting for a factor the simulation cannot give
            step = session.cancel("The simulation has no manager to ask.")
            break
        assert step.prompt is not None
        text = caller(step.prompt)
        if on_answer is not None:
            on_answer(step, text)
        now[0] += timedelta(seconds=seconds_per_answer)
        step = session.answer(text)
    assert step.decision is not None
    return step.decision


# --- helpers ----------------------------------------------------------------------------------------------

def _weighted_pick(rng: random.Random, items: Sequence[Recollection]) -> Recollection:
    total = sum(max(r.weight, 0.0) for r in items)
    if total <= 0:
        return rng.choice(items)
    x = rng.random() * total
    for r in items:
        x -= max(r.weight, 0.0)
        if x < 0:
            return r
    return items[-1]


_NICKNAMER: list[NickNamer] = []


def _nickname(given: str, rng: random.Random) -> str | None:
    """A short form people really say: from the nicknames table, shorter than the name, at least 3 letters."""
    if not _NICKNAMER:
        _NICKNAMER.append(NickNamer())
    first = given.split()[0]
    forms = sorted(n for n in _NICKNAMER[0].nicknames_of(first) if 3 <= len(n) < len(first) and n.isalpha())
    return rng.choice(forms).capitalize() if forms else None


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def _typo(text: str, rng: random.Random) -> str:
    """One slip of the agent's fingers at a random letter: swap with the next, drop, double, or replace."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 2:
        return text
    i = rng.choice(letters[:-1])
    how = rng.randrange(4)
    if how == 0 and text[i + 1].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if how == 1:
        return text[:i] + text[i + 1:]
    if how == 2:
        return text[:i] + text[i] + text[i:]
    near = _KEYBOARD[(_KEYBOARD.find(text[i].lower()) + rng.choice((-1, 1))) % len(_KEYBOARD)]
    return text[:i] + near + text[i + 1:]
