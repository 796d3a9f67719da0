"""Multiple choice about colleagues and groups shows the same options around the same right answer on every call:
an impostor who calls twice (or asks two agents) must not find the right answer as the one option shown both times
(the intersection attack). Outsiders' versions: tests/verification/test_outsider_choice.py."""

from __future__ import annotations

from dataclasses import replace

from bot.sealing import FernetSealer
from tests.verification import builders as b
from verification import Policy, generate_questions
from verification.context import Source

POLICY = Policy(multiple_choice_per_source=3)
CALLS = [f"call-{i}" for i in range(12)]


def option_sets(seed: str, source: Source, outsiders: bool = False, key: bytes = b"") -> dict[str, frozenset[str]]:
    """Right answer -> the options shown around it, for one call's multiple-choice versions about `source`."""
    qs = generate_questions(b.context(), replace(b.org(), choice_key=key), POLICY, seed)
    return {q.options[q.correct_option]: frozenset(q.options) for q in qs if q.options and q.source is source
            and ("outside your organisation" in q.prompt) == outsiders}


def _calling_again_shows_the_same_options(source: Source) -> None:
    first = option_sets(CALLS[0], source)
    assert first, f"no multiple choice about {source.value} to compare"
    for seed in CALLS[1:]:
        again = option_sets(seed, source)
        assert again == first
        for right, options in again.items():  # the options in common with the first call: all, not the answer alone
            assert options & first[right] == options


def test_calling_again_shows_the_same_colleague_options_around_the_same_right_answer():
    for source in (Source.CHATS, Source.MEETINGS, Source.MAIL, Source.CONTACTS):
        if option_sets(CALLS[0], source):
            _calling_again_shows_the_same_options(source)
    _calling_again_shows_the_same_options(Source.CHATS)


def test_calling_again_shows_the_same_group_options_around_the_same_right_answer():
    _calling_again_shows_the_same_options(Source.GROUPS)


def test_only_the_order_of_the_options_is_the_calls_own():
    orders = {tuple(q.options) for seed in CALLS for q in generate_questions(b.context(), b.org(), POLICY, seed)
              if q.kind == "chats.chatted.choice"}
    assert len(orders) > 1


def test_two_calls_options_have_no_one_option_in_common_that_names_the_answer():
    """What the replay impostor of bench.accuracy tries: for every pair of calls, any option set about a source that
    overlaps one the other call showed about it overlaps it whole (the same set), so the overlap never narrows."""
    for one, two in zip(CALLS, CALLS[1:], strict=False):
        shown = [(q.kind, set(q.options)) for q in generate_questions(b.context(), b.org(), POLICY, one) if q.options]
        for q in generate_questions(b.context(), b.org(), POLICY, two):
            for kind, options in shown:
                common = options & set(q.options)
                assert kind != q.kind or not common or common == options


def test_the_draw_is_keyed_by_the_tenants_secret_so_nobody_can_recompute_it_from_ids_and_names():
    """Stable draws from public inputs alone would let anyone with our code test which option, taken as the answer,
    yields the others: the options depend on a key derived from the state key, per tenant, as well."""
    sealer = FernetSealer(FernetSealer.generate_key())
    ours, theirs = sealer.choice_key("tenant-a"), sealer.choice_key("tenant-b")
    assert ours == sealer.choice_key("tenant-a") and ours != theirs
    assert ours != FernetSealer(FernetSealer.generate_key()).choice_key("tenant-a")
    for source in (Source.CHATS, Source.GROUPS):
        keyed = option_sets(CALLS[0], source, key=ours)
        assert keyed == option_sets(CALLS[1], source, key=ours)  # still the same on every call
        assert keyed != option_sets(CALLS[0], source, key=theirs) != option_sets(CALLS[0], source)
    assert option_sets(CALLS[0], Source.CONTACTS, outsiders=True, key=ours) != \
        option_sets(CALLS[0], Source.CONTACTS, outsiders=True, key=theirs)
