"""The typo arithmetic the matcher relies on for speed: one C pass must find what a loop of typo_distance finds."""

from __future__ import annotations

import random
import string

from verification.matching import _most_edits, _word_fits
from verification.names import close, typo_distance, within_edits


def _words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choices("aeinrst" + string.digits[:2], k=rng.randint(1, 12))) for _ in range(n)]


def test_within_edits_finds_exactly_the_words_typo_distance_allows():
    rng = random.Random(7)
    choices = _words(rng, 300)
    for word in _words(rng, 40):
        for most in range(4):
            expected = {c for c in choices if typo_distance(word, c) <= most}
            assert set(within_edits(word, choices, most)) == expected


def test_words_that_fit_are_never_further_apart_than_most_edits():
    """So searching within _most_edits(word) misses no word that `close` or _word_fits would accept."""
    rng = random.Random(11)
    words = _words(rng, 400)
    for word in words[:100]:
        for other in words:
            if close(word, other) or _word_fits(word, other):
                assert typo_distance(word, other) <= _most_edits(word)
