"""A verification's question plan as it is stored and held between turns: what the session needs to ask its
questions and to match the answers, each thing once.

The plan is the person's questions (wording, form, shown options, bits) and, for matching, the candidates each
question knows: the accepted answers, their look-alikes, and the true-but-worthless answers. Nothing of the
organisation beyond those. The same people come back question after question (a follow-up repeats its first
question's lists, the multiple-choice versions share a pool, a colleague is a look-alike in several questions), so
each candidate is written once in a table and each list of candidates once; a question points at its lists.
Only choosing the questions used the `explanation` and it is not kept.

    data = encode_plan(session.plan())     # bytes: JSON, to encrypt and store, or to hold
    plan = decode_plan(data)               # questions sharing one tuple per list, one Candidate per person
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from verification.context import Source
from verification.questions.model import AnswerType, Candidate, Form, Question

FORMAT = "plan/1"
# A person is a row of Candidate's fields in order, its trailing fields left out while they hold Candidate's defaults
# (given ... given_share), so `Candidate(*row)` reads it back as it was: JSON keeps their types.
_DEFAULTS = tuple(f.default for f in fields(Candidate))[2:]


def encode_plan(plan: Sequence[Question]) -> bytes:
    """The plan as compact JSON (UTF-8)."""
    people: dict[Candidate, int] = {}
    lists: dict[tuple[int, ...], int] = {}

    def ref(candidates: Sequence[Candidate]) -> int:
        ids = tuple(people.setdefault(c, len(people)) for c in candidates)
        return lists.setdefault(ids, len(lists))

    questions = [[q.id, q.kind, q.source.value, q.prompt, q.form.value, q.answer_type.value, q.bits, q.guesses,
                  q.ease, ref(q.accepted), ref(q.confusers), ref(q.known), list(q.options), q.correct_option,
                  q.follows] for q in plan]
    body = {"format": FORMAT, "people": [_row(c) for c in people], "lists": [list(ids) for ids in lists],
            "questions": questions}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_plan(data: bytes) -> tuple[Question, ...]:
    """The questions `encode_plan` wrote. Raises ValueError (or KeyError, TypeError) on anything else."""
    body = json.loads(data)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError("not a question plan")
    people = [Candidate(*row) for row in body["people"]]  # each person once: the plan's bulk, decoded every turn
    lists = [tuple(people[i] for i in ids) for ids in body["lists"]]
    return tuple(Question(
        id=q[0], kind=q[1], source=Source(q[2]), prompt=q[3], form=Form(q[4]), answer_type=AnswerType(q[5]),
        bits=float(q[6]), guesses=int(q[7]), explanation="", ease=float(q[8]), accepted=lists[q[9]],
        confusers=lists[q[10]], known=lists[q[11]], options=tuple(q[12]), correct_option=q[13], follows=q[14],
    ) for q in body["questions"])


def _row(c: Candidate) -> list[Any]:
    row: list[Any] = [c.key, c.display, c.given, c.surname, c.given_count, c.surname_count, c.external, c.given_share]
    while len(row) > 2 and row[-1] == _DEFAULTS[len(row) - 3]:
        row.pop()
    return row
