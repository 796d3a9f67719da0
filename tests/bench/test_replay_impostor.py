"""bench.accuracy's replay impostor plays the intersection attack: across its calls, an option shown about the
same source in two different option sets is what it picks (the right answer, were decoys drawn anew each call)."""

from __future__ import annotations

from bench.callers import ReplayImpostor
from verification.context import Source
from verification.questions.model import Form
from verification.session import Prompt


def choice(options: tuple[str, ...], source: Source = Source.CHATS) -> Prompt:
    return Prompt(f"{source.value}.chatted.choice", f"{source.value}.chatted.choice", source, Form.MULTIPLE_CHOICE,
                  "Which one of these people have you chatted with in Teams in the last two weeks?", options, 2.32)


def fallback(prompt: Prompt) -> str:
    return prompt.options[0]


def test_the_replay_impostor_picks_the_option_two_calls_showed_around_the_same_right_answer():
    replay = ReplayImpostor(lambda: fallback)
    assert replay.attempt()(choice(("Ann", "Bob", "Cy", "Dee", "Eve"))) == "Ann"  # nothing to compare yet
    assert replay.attempt()(choice(("Fay", "Gus", "Hal", "Eve", "Ivy"))) == "Eve"  # the one in both
    assert replay.intersected == {"chats.chatted.choice": True}


def test_the_same_options_again_tell_the_replay_impostor_nothing():
    replay = ReplayImpostor(lambda: fallback)
    replay.attempt()(choice(("Ann", "Bob", "Cy", "Dee", "Eve")))
    assert replay.attempt()(choice(("Eve", "Dee", "Cy", "Bob", "Ann"))) == "Eve"  # its own guess, not a comparison
    assert replay.intersected == {}


def test_option_sets_about_another_source_are_not_compared():
    replay = ReplayImpostor(lambda: fallback)
    replay.attempt()(choice(("Ann", "Bob", "Cy", "Dee", "Eve"), Source.MAIL))
    assert replay.attempt()(choice(("Fay", "Gus", "Hal", "Eve", "Ivy"))) == "Fay"
