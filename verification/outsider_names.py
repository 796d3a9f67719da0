"""Plausible names of people from outside the organisation: decoys for "which one of these people from outside your
organisation ...?".

A supplier or a client the caller saved in their contacts (or met, or chatted with) is often the only thing they alone
know, and a caller who blanks on "name someone ..." then had nothing else to try: the multiple-choice form took its
decoys from the directory, and a colleague is false by that wording at once. So these decoys are common first names
and surnames of the countries a business deals with (Faker's person lists, with Faker's weights where it has them).

What keeps the right answer from standing out among them:

* it is only ever a name these lists could have produced: its first name and surname both in one locale's lists
  (else an impostor who knows the lists picks the one name not in them); `decoys` returns nothing otherwise;
* every option comes from that locale and is shown in the lists' own spelling, "First Surname";
* no two options share a first name or a surname;
* a decoy is never a name the caller's own data holds (anyone they met, chatted with, heard from or saved): false by
  the wording, and nobody the real person could half-recognise;
* the decoys depend on the person and the right answer only, not on the session: calling again shows the same
  options around the same right answer, so comparing calls singles nothing out; and the draw is keyed by the
  tenant's secret, so nobody can recompute it to test which option, taken as the answer, yields the others.

The lists load once per process (a few tenths of a second of CPU, most of it importing Faker), off the event loop
when a directory snapshot is prepared (`warm`, from graph/tenant_facts.py), so no verification waits for them.
Choosing the outsiders' versions then adds about 0.3 ms of CPU to a start (5.1 -> 5.4 ms for `generate_questions`,
40 people of a 2,000-person devtenant organisation).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import random
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from verification.names import normalize

# Latin-script locales of the countries most businesses deal with. Where a surname changes with the person's gender
# (Polish, Czech, Slovak, Latvian), a decoy's surname is drawn for its first name's gender, as the lists give them.
LOCALES = ("en_US", "en_GB", "en_IE", "en_NZ", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_BE", "fr_CA", "es_ES",
           "es_MX", "it_IT", "nl_NL", "nl_BE", "pt_PT", "pt_BR", "sv_SE", "da_DK", "no_NO", "fi_FI", "tr_TR",
           "hr_HR", "sl_SI", "pl_PL", "cs_CZ", "sk_SK", "lv_LV", "hu_HU")
MIN_SURNAMES = 60  # fewer and the decoys of one locale repeat too often to stay distinct from each other
DRAWS = 200  # tries for a set of decoys before giving up


@dataclass(frozen=True, slots=True)
class _Names:
    """One list: the names as spelled, their cumulative weights, and each name's spelling by normalised form."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]
    spelling: dict[str, str]

    @classmethod
    def of(cls, raw: object) -> _Names:
        if isinstance(raw, dict):
            names, weights = tuple(str(n) for n in raw), tuple(float(w) for w in raw.values())
        else:
            names = tuple(str(n) for n in raw)  # type: ignore[attr-defined]
            weights = (1.0,) * len(names)
        return cls(names, tuple(accumulate(weights)), {_key(n): n for n in names})

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.names, cum_weights=self.cumulative)[0]


@dataclass(frozen=True, slots=True)
class _Locale:
    """A locale's first names and the surnames that go with them, by gender."""

    first: tuple[_Names, _Names]  # female, male
    surnames: tuple[_Names, _Names]

    def spell(self, given: str, surname: str) -> tuple[str, str] | None:
        """The lists' own spelling of a first name and a surname that goes with it, or None when not in them."""
        for first, last in zip(self.first, self.surnames, strict=True):
            if given in first.spelling and surname in last.spelling:
                return first.spelling[given], last.spelling[surname]
        return None

    def draw(self, rng: random.Random) -> tuple[str, str]:
        gender = rng.randrange(2)
        return self.first[gender].draw(rng), self.surnames[gender].draw(rng)


@lru_cache(maxsize=1)
def lexicon() -> dict[str, _Locale]:
    """Every usable locale's lists, loaded on first use."""
    out: dict[str, _Locale] = {}
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider

        def names(*attributes: str, provider: object = provider) -> _Names:
            return _Names.of(next(v for a in attributes if (v := getattr(provider, a, None)) and len(v) > 1))

        surnames = (names("last_names_female", "unisex_last_names", "last_names"),
                    names("last_names_male", "unisex_last_names", "last_names"))
        if min(len(s.names) for s in surnames) >= MIN_SURNAMES:
            first = (names("first_names_female", "first_names"), names("first_names_male", "first_names"))
            out[locale] = _Locale(first, surnames)
    return out


def decoys(name: str, n: int, avoid: Collection[str], key: bytes, person: str,
           answer: str) -> tuple[str, list[str]] | None:
    """The right answer's `name` as the options show it, and `n` decoys beside it; None when the name is not one the
    lists could have produced (it would stand out) or not enough decoys were found. `avoid`: normalised full names
    never to show (everyone the person's data names); `person` and `answer` (the right answer's key) seed the draw,
    keyed by the tenant's secret `key` (OrgKnowledge.choice_key) so that nobody can recompute it."""
    fits = _spellings(name)
    if not fits:
        return None
    digest = hmac.new(key, f"outsider-decoys:{person}:{answer}".encode(), hashlib.sha256).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - only spreads decoys, see the module doc
    locale, (first, last) = fits[rng.randrange(len(fits))]
    names = lexicon()[locale]
    used_given, used_surnames = {_key(first)}, {_key(last)}
    out: list[str] = []
    for _ in range(DRAWS):
        if len(out) == n:
            break
        decoy_given, decoy_surname = names.draw(rng)
        g, s = _key(decoy_given), _key(decoy_surname)
        full = f"{decoy_given} {decoy_surname}"
        if g in used_given or s in used_surnames or normalize(full) in avoid:
            continue
        used_given.add(g)
        used_surnames.add(s)
        out.append(full)
    return (f"{first} {last}", out) if len(out) == n else None


def _key(name: str) -> str:
    """A name word as the lists are looked up by: O'Ruane, Hans-Josef and Ruiz Díaz as oruane, hansjosef, ruizdiaz."""
    return normalize(name).replace(" ", "")


def _spellings(name: str) -> list[tuple[str, tuple[str, str]]]:
    """Each locale whose lists hold the name, with their spelling of its first name and surname. The name is tried
    split after each of its words, so "Nisa van der Heijden" and "Maria José García" are found whole; "Clarke, Joan"
    is read as Joan Clarke."""
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    words = name.split()
    surnames, given = _index()
    found: dict[str, tuple[str, str]] = {}
    for cut in range(1, len(words)):
        first_key, last_key = _key(" ".join(words[:cut])), _key(" ".join(words[cut:]))
        for locale, gender, last in surnames.get(last_key, ()):
            first = given.get((locale, gender, first_key))
            if first is not None:
                found.setdefault(locale, (first, last))
    return sorted(found.items())


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, list[tuple[str, int, str]]], dict[tuple[str, int, str], str]]:
    """Surname -> (locale, gender, spelling), and (locale, gender, first name) -> spelling: every locale's lists
    looked up at once."""
    surnames: dict[str, list[tuple[str, int, str]]] = {}
    given: dict[tuple[str, int, str], str] = {}
    for locale, names in lexicon().items():
        for gender in (0, 1):
            for key, spelt in names.surnames[gender].spelling.items():
                surnames.setdefault(key, []).append((locale, gender, spelt))
            for key, spelt in names.first[gender].spelling.items():
                given[(locale, gender, key)] = spelt
    return surnames, given


def warm() -> None:
    """Load the lists and their index now (off the event loop), not in the first verification that needs them."""
    _index()
