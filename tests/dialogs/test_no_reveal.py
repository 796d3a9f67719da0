"""Whole verifications in Teams, answered right or wrong: nothing the agent sees may tell the two apart.

One verification answers every question wrong; each other one answers exactly one question right (the n-th) and the
rest wrong. Every card the agent's chat shows, from `verify` to the decision, must be the same in all of them once
the question itself is set aside (its wording and the order of multiple-choice options: another session's secret
seed shuffles them). One right answer is far from the bits needed, so every run ends "not verified"; what is
compared is whether the agent could have learnt, at any point, that an answer was right.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from bot.cards import card_text
from tests.dialogs.fakes import ALAN, MARGARET, TENANT
from tests.dialogs.harness import Chat, Teams, is_question, open_teams, truthful_answer
from tests.store.support import FakeClock, sqlite_copy
from verification import Source
from verification.policy import Policy

# The tenant's default policy asks free recall first and rarely gets to multiple choice within its questions; this
# one, with fewer sources and more questions, goes on to every multiple-choice kind those sources have.
CHOICES_TOO = Policy(sources=frozenset({Source.CHATS, Source.MEETINGS, Source.GROUPS}), max_questions=12)

WRONG_PERSON = "Zebedee Quayle"  # nobody in the fixture's tenant
WRONG_GROUP = "Zebedee Appreciation Society"


async def _wrong_answer(teams: Teams, chat: Chat) -> str:
    question = await teams.current_question(chat)
    assert question is not None
    options = question.get("options") or []
    if options:
        return next(o for i, o in enumerate(options) if i != question["correct_option"])
    return WRONG_GROUP if question["answer_type"] != "person" else WRONG_PERSON


def _normalised(card: dict[str, Any]) -> str:
    """The card's text with the question's own wording and options set aside (and no per-card ids)."""
    card = copy.deepcopy(card)
    if is_question(card):
        for element in card.get("body", []):
            if element.get("type") == "RichTextBlock":
                element["inlines"] = [{"type": "TextRun", "text": "<the question>"}]
            if element.get("type") == "Input.ChoiceSet":
                element["choices"] = [{"title": "<option>", "value": "<option>"} for _ in element["choices"]]
    return card_text(card)


async def _verify(tmp_path: Path, sqlite_template: Path, name: str, right_at: int | None,
                  policy: Policy | None = None) -> tuple[list[str], list[str]]:
    """One verification of Alan by Margaret on a fresh store; (kinds asked, what the agent's chat showed)."""
    clock = FakeClock()
    kinds: list[str] = []
    async with open_teams(sqlite_copy(sqlite_template, tmp_path / name), clock) as teams:
        if policy is not None:
            await teams.store.policies.put(TENANT, policy, actor="test")
        agent = teams.chat(MARGARET)
        await agent.say("verify Alan Turing")
        for number in range(1, 3 * Policy().max_questions):
            question = await teams.current_question(agent)
            if question is None:
                break
            kinds.append(question["kind"])
            right = number == right_at
            text = await truthful_answer(teams, agent, ALAN) if right else await _wrong_answer(teams, agent)
            await agent.answer(text)
        else:
            raise AssertionError(f"still asking:\n{agent.text()}")
        return kinds, [_normalised(card) for card in agent.cards()]


async def _same_whatever_is_right(tmp_path: Path, sqlite_template: Path, policy: Policy | None
                                  ) -> tuple[list[str], list[str]]:
    label = "default" if policy is None else "choices"
    kinds, all_wrong = await _verify(tmp_path, sqlite_template, f"{label}-wrong", None, policy)
    assert all_wrong[-1].startswith("Not verified") and len(kinds) >= 4
    for n in range(1, len(kinds) + 1):
        asked, shown = await _verify(tmp_path, sqlite_template, f"{label}-right-{n}", n, policy)
        assert asked == kinds, f"answering question {n} ({kinds[n - 1]}) right changed what was asked next"
        assert shown == all_wrong, f"answering question {n} ({kinds[n - 1]}) right changed what the agent saw"
    return kinds, all_wrong


async def test_agent_sees_the_same_cards_whether_any_one_answer_was_right_or_wrong(
        tmp_path: Path, sqlite_template: Path) -> None:
    kinds, all_wrong = await _same_whatever_is_right(tmp_path, sqlite_template, None)
    more, _ = await _same_whatever_is_right(tmp_path, sqlite_template, CHOICES_TOO)
    asked = set(kinds) | set(more)
    sources = {kind.split(".", 1)[0] for kind in asked}
    assert {"chats", "meetings", "groups", "mail", "contacts"} <= sources, asked  # every question kind of the
    assert {k for k in asked if k.endswith(".choice")} == {"chats.chatted.choice", "meetings.met.choice",
                                                           "groups.member_of.choice"}, asked  # fixture's person
    assert any("_again." in k for k in asked), asked  # and the "one more" follow-ups
    text = "\n".join(all_wrong).lower()
    for leak in ("ask again", "try 2", "one more", "haven't named", "bits", "wrong answer", "correct", "earned"):
        assert leak not in text, leak
