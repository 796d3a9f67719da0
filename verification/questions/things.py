"""Shared builder for "name a thing" questions (groups, roles): the candidates are named objects the
impostor can list from the directory, ranked by how likely the target holds each."""

from __future__ import annotations

from collections.abc import Sequence

from verification.context import Source
from verification.guessability import Tier, assess_choice, assess_strongest
from verification.policy import Policy
from verification.questions.model import AnswerType, Candidate, Form, Question


def thing_question(kind: str, source: Source, prompt: str, answer_type: AnswerType, accepted: Sequence[Candidate],
                   confusers: Sequence[Candidate], tiers: Sequence[Tier], ease: float, policy: Policy,
                   alternatives: Sequence[Sequence[Tier]] = ()) -> Question:
    """`alternatives`: other plausible impostor rankings of the same candidates; the strongest one counts."""
    g = assess_strongest([tiers, *alternatives], policy.guesses_per_question, policy.max_bits_per_question)
    return Question(
        id=kind, kind=kind, source=source, prompt=prompt, form=Form.FREE_RECALL, answer_type=answer_type,
        bits=g.bits, guesses=policy.guesses_per_question,
        explanation=f"{len(accepted)} accepted answer(s). {g.explanation}", ease=ease,
        accepted=tuple(accepted), confusers=tuple(confusers),
    )


def choice_question(kind: str, source: Source, prompt: str, answer_type: AnswerType, options: Sequence[Candidate],
                    correct: int, classes: Sequence[object], ease: float, question_id: str | None = None) -> Question:
    g = assess_choice(classes, correct)
    return Question(
        id=question_id or kind, kind=kind, source=source, prompt=prompt, form=Form.MULTIPLE_CHOICE,
        answer_type=answer_type,
        bits=g.bits, guesses=1, explanation=f"Multiple choice, {len(options)} options, one right. {g.explanation}",
        ease=ease, accepted=(options[correct],),
        confusers=tuple(o for i, o in enumerate(options) if i != correct),
        options=tuple(o.display for o in options), correct_option=correct,
    )


def size_tiers(label: str, sized: Sequence[tuple[str, int | None]], accepted: set[str]) -> list[Tier]:
    """Tiers by size, biggest first (a bigger group is likelier to hold anyone); unknown sizes last."""
    by_size: dict[int, list[str]] = {}
    for key, size in sized:
        by_size.setdefault(-1 if size is None else size, []).append(key)
    out: list[Tier] = []
    for size in sorted(by_size, reverse=True):
        keys = by_size[size]
        what = "unknown size" if size < 0 else f"{size} members"
        out.append(Tier(f"{label} of {what}", len(keys), sum(k in accepted for k in keys)))
    return out
