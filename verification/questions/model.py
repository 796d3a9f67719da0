"""The Question value object and the candidates it is answered against."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from verification.context import Source


class Form(StrEnum):
    FREE_RECALL = "free_recall"
    MULTIPLE_CHOICE = "multiple_choice"


class AnswerType(StrEnum):
    PERSON = "person"
    GROUP = "group"
    ROLE = "role"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible answer: accepted, or a look-alike kept so the matcher can tell them apart.

    `given_count`/`surname_count`: how many tenant members share that given name / surname (0 when
    unknown). A bare first name is full proof only when it points to one person tenant-wide; for an
    `external` person (outside the tenant) it never is: the world is full of Joans. `given_share`, for an external
    person: how common their first name (with its nicknames) is among people at large, estimated from the tenant's
    own names (0 when unknown); a bare first name then proves what guessing that name is worth."""

    key: str
    display: str
    given: str | None = None
    surname: str | None = None
    given_count: int = 0
    surname_count: int = 0
    external: bool = False
    given_share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "display": self.display, "given": self.given, "surname": self.surname,
                "given_count": self.given_count, "surname_count": self.surname_count, "external": self.external,
                "given_share": self.given_share}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        return cls(d["key"], d["display"], d.get("given"), d.get("surname"),
                   int(d.get("given_count", 0)), int(d.get("surname_count", 0)), bool(d.get("external", False)),
                   float(d.get("given_share", 0.0)))


@dataclass(frozen=True, slots=True)
class Question:
    """One question for the agent to read out.

    `accepted` and `confusers` never leave the domain: they are not rendered, not in the transcript, and
    not in repr() (so a stray log line cannot leak them). `known`: answers that are TRUE by the wording but prove
    nothing (someone the target's team meets or chats with together, a colleague from a huge meeting): naming one
    earns no bits and is not wrong. `bits` is what a correct answer is worth
    against the informed impostor, with `guesses` tries; `explanation` says why, for the audit. `ease`
    is our estimate that the genuine user answers it (used only to choose questions)."""

    id: str
    kind: str  # e.g. "meetings.outside_team"
    source: Source
    prompt: str
    form: Form
    answer_type: AnswerType
    bits: float
    guesses: int
    explanation: str
    ease: float
    accepted: tuple[Candidate, ...] = field(repr=False)
    confusers: tuple[Candidate, ...] = field(default=(), repr=False)
    options: tuple[str, ...] = ()  # multiple choice: shown to the caller, in order (A, B, C...)
    correct_option: int | None = field(default=None, repr=False)
    follows: str | None = None  # a follow-up ("one more") asked once this kind was answered, right or wrong
    known: tuple[Candidate, ...] = field(default=(), repr=False)

    @property
    def expected_bits(self) -> float:
        return self.bits * self.ease

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "source": self.source.value, "prompt": self.prompt,
            "form": self.form.value, "answer_type": self.answer_type.value, "bits": self.bits,
            "guesses": self.guesses, "explanation": self.explanation, "ease": self.ease,
            "accepted": [c.to_dict() for c in self.accepted],
            "confusers": [c.to_dict() for c in self.confusers],
            "options": list(self.options), "correct_option": self.correct_option, "follows": self.follows,
            "known": [c.to_dict() for c in self.known],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Question:
        return cls(
            id=d["id"], kind=d["kind"], source=Source(d["source"]), prompt=d["prompt"], form=Form(d["form"]),
            answer_type=AnswerType(d["answer_type"]), bits=float(d["bits"]), guesses=int(d["guesses"]),
            explanation=d["explanation"], ease=float(d["ease"]),
            accepted=tuple(Candidate.from_dict(c) for c in d["accepted"]),
            confusers=tuple(Candidate.from_dict(c) for c in d["confusers"]),
            options=tuple(d.get("options", ())), correct_option=d.get("correct_option"), follows=d.get("follows"),
            known=tuple(Candidate.from_dict(c) for c in d.get("known", ())),
        )
