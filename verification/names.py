"""Text normalisation shared by the generators and the answer matcher: diacritics, case, nicknames.

Kept apart from matching.py because the generators also need "could these two names be confused?"
to decide which non-accepted people to keep beside a question (see questions/model.py `confusers`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from nicknames import NickNamer
from rapidfuzz import process
from rapidfuzz.distance import OSA

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
# Characters that NFKD does not decompose but people type without.
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "œ": "oe", "ı": "i"})


@lru_cache(maxsize=65536)  # names repeat endlessly across questions and sessions
def normalize(text: str) -> str:
    """'  José  MÜLLER-Smith ' -> 'jose muller smith': no accents, lower case, words split by spaces."""
    lowered = text.casefold().translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", lowered)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", stripped).replace("_", " ").split())


@lru_cache(maxsize=65536)
def tokens(text: str | None) -> tuple[str, ...]:
    return tuple(normalize(text).split()) if text else ()


def allowed_edits(length: int) -> int:
    """Typos tolerated for a word of this length: none for short words (Ann/Ian would collide),
    then one per five letters, at most three."""
    if length <= 3:
        return 0
    return min(3, 1 + (length - 4) // 5)


def typo_distance(a: str, b: str, cutoff: int | None = None) -> int:
    """Edits between two strings, a swap of neighbouring letters counting as one slip ("Supoprt" is one
    typo from "Support", not two): optimal string alignment distance."""
    return OSA.distance(a, b, score_cutoff=cutoff)


def within_edits(word: str, choices: Sequence[str], most: int) -> list[str]:
    """The choices at most `most` typo_distance from the word: one pass in C over hundreds of names, where a
    loop of typo_distance calls pays Python's call overhead for every pair."""
    return [c for c, _, _ in process.extract(word, choices, scorer=OSA.distance, score_cutoff=most, limit=None)]


def close(typed: str, actual: str) -> bool:
    """Equal within the typo budget of the longer word (both already normalised)."""
    if typed == actual:
        return True
    budget = allowed_edits(max(len(typed), len(actual)))
    return budget > 0 and typo_distance(typed, actual, budget) <= budget


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=4096)
def name_forms(given: str) -> frozenset[str]:
    """A given name and the names the nicknames table links to it directly, either way (William ->
    Bill, Will; Kate -> Katherine). Siblings through a shared formal name (Al -> Albert -> Bert) are
    left out on purpose: the table is broad and a loose match helps impostors more than callers."""
    base = normalize(given)
    if not base:
        return frozenset()
    nn = _nicknamer()
    return frozenset(normalize(f) for f in {base} | nn.nicknames_of(base) | nn.canonicals_of(base))


def given_exact(typed: str, given: str) -> bool:
    """The typed word is this given name or a nickname linked to it (Bill ~ William), without typos."""
    actual = normalize(given)
    return typed == actual or typed in name_forms(actual) or actual in name_forms(typed)


_SENIORITY = {"senior", "sr", "junior", "jr", "lead", "principal", "staff", "chief", "head", "associate",
              "assistant", "i", "ii", "iii", "iv", "of", "and", "the"}


def title_core(title: str | None) -> frozenset[str]:
    """A title's words once seniority is ignored: 'Senior Software Engineer' -> {software, engineer}."""
    return frozenset(tokens(title)) - _SENIORITY if title else frozenset()


def similar_titles(a: str | None, b: str | None) -> bool:
    """'Senior Software Engineer' ~ 'Software Engineer II': same words once seniority is ignored."""
    core_a = title_core(a)
    return bool(core_a) and core_a == title_core(b)
