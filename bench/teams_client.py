"""Watchword's side of a Teams chat as a client sees it, for benchmarks and end-to-end tests: what kind of card
arrived, the question on it as the caller hears it, and a caller who answers from devtenant's ground truth.

Cards are the Adaptive Card JSON the bot sent (templates/cards/): read by their buttons' verbs and their text,
as a person reads them, plus one thing a Teams client holds but does not show, the question's id in the
buttons' data (it names the question's kind, which the simulated caller needs to know what is asked about).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bench.callers import GenuineCaller, Memory
from bench.truth import ACCEPTED, GroundTruth
from verification import Form, Prompt

DECISION_TITLES = frozenset({"Verified", "Not verified", "Can't verify this way", "Timed out", "Locked out",
                             "Blocked: risky sign-ins", "Refused: privileged administrator", "Cancelled",
                             "Stop: the account holder says it is not them"})
_VERB_KINDS = (("answer", "question"), ("reset_confirm", "reset_confirm"), ("passed_on", "password"),
               ("choose", "people_choice"))


# The card that answers the last question while the sign-in risk is still being read: not a decision, which follows
# in the same chat (dialogs/session_keeper.py).
CHECKING_SIGN_INS = "Questions complete: checking"


def texts(element: Any) -> Iterator[str]:
    """Every TextBlock's and TextRun's text, in reading order."""
    if isinstance(element, dict):
        if element.get("type") in ("TextBlock", "TextRun") and isinstance(element.get("text"), str):
            yield element["text"]
        for key in ("body", "items", "columns", "inlines"):
            for child in element.get(key) or []:
                yield from texts(child)
    elif isinstance(element, list):
        for child in element:
            yield from texts(child)


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's buttons: its actions and those of its ActionSets."""
    out = list(card.get("actions") or [])
    stack = list(card.get("body") or [])
    while stack:
        element = stack.pop()
        if isinstance(element, dict):
            if element.get("type") == "ActionSet":
                out += element.get("actions") or []
            stack += [*(element.get("items") or []), *(element.get("columns") or [])]
    return out


def title_of(card: dict[str, Any]) -> str:
    return next(texts(card), "")


def verbs_of(card: dict[str, Any]) -> list[str]:
    return [str(a.get("verb") or (a.get("data") or {}).get("verb")) for a in actions(card)]


def kind_of(card: dict[str, Any]) -> str:
    """question, reset_confirm, password, people_choice, decision, person (who is being verified) or notice."""
    verbs = verbs_of(card)
    for verb, kind in _VERB_KINDS:
        if verb in verbs:
            return kind
    title = title_of(card)
    if title in DECISION_TITLES and "Next step" in texts(card):
        return "decision"
    return "person" if title == "Verifying" else "notice"


def cards_in(activity: dict[str, Any]) -> list[dict[str, Any]]:
    """The Adaptive Cards attached to an activity (or a Playground message), as JSON."""
    return [a["content"] for a in activity.get("attachments") or [] if isinstance(a.get("content"), dict)]


def prompt_of(card: dict[str, Any]) -> Prompt:
    """The question on a question card as the caller hears it (text, options), and which question."""
    data = next(a["data"] for a in actions(card) if a.get("verb") == "answer")
    question_id = str(data["question"])
    kind = question_id.split("#", 1)[0]  # a question's versions are "kind", "kind#2"...
    body = card["body"]
    text = next(t for element in body if element.get("type") == "RichTextBlock" for t in texts(element))
    choices = next((e["choices"] for e in body if e.get("type") == "Input.ChoiceSet"), [])
    return Prompt(question_id=question_id, kind=kind, source=kind.split(".", 1)[0],  # type: ignore[arg-type]
                  form=Form.MULTIPLE_CHOICE if choices else Form.FREE_RECALL, text=text,
                  options=tuple(c["title"] for c in choices), bits=0.0)


def accepted_memory(truth: GroundTruth, uid: str) -> Memory:
    """What the employee really did that the product's rules should accept, all of it remembered."""
    return Memory({topic: [replace(r, recall=1.0) for r in facts if r.note == ACCEPTED]
                   for topic, facts in truth.memory(uid).topics.items()})


def perfect_caller(truth: GroundTruth, uid: str) -> GenuineCaller:
    """The real employee with a perfect memory, and an agent who types carefully: no noise at all."""
    return GenuineCaller(accepted_memory(truth, uid), random.Random(f"perfect:{uid}"))
