"""Is the caller's answer one of the accepted answers? Forgiving of how people talk, strict on identity.

Forgiven: typos (edits scaled to word length, a swap of two letters counting as one), case and accents
(José = jose), nicknames (Bill = William, Kate = Katherine; a mistyped one only beside the surname: "Bil Smith"),
"Firstname L.", "Surname, Firstname", middle names; group names said loosely ("compilers" for "Compilers Team",
any word order, generic words such as Team/Group/DL/All left out, added or mistyped: "Pricing Core Tem"); role
names loosely ("helpdesk admin" for "Helpdesk Administrator").

Strict on which group: names are compared word by word. Every distinguishing word must be said, each
within its own typo budget, numbers exactly; nothing but generic words may be added. An exact (normalised)
name beats names that fit only with typos, so the exact name of a look-alike ("Tier 1 Support Team" when
"Tier 2 Support Team" is accepted, "Madrid Music Lovers" for "Paris Music Lovers") is WRONG, and the exact
name of the caller's own group is CORRECT even when a look-alike exists.

Results:
* CORRECT — the answer points at accepted answers only. A bare first name (or surname) is CORRECT only
  when it cannot point at anyone else: among the people the question knows (accepted + look-alikes) and,
  when the tenant's name counts are known, in the whole tenant ("Xiomara" yes, "David" no).
* PARTIAL — the answer fits an accepted answer AND someone else: "Alan" when Alan Turing is accepted but
  the department also has Alan Smith, or "David" when the tenant has 30 Davids. Earns reduced bits
  (policy.partial_credit): the caller may well be right, but an impostor saying common first names
  would be too.
* WRONG — fits no accepted answer (including a true answer the wording excluded, e.g. the manager).
* SKIPPED — "I don't know", "I'm not sure", "no idea", "not a clue", "can't remember", "dunno", "skip", "pass",
  empty, and the other everyday ways of saying it (`without_hedges`): never counted as wrong. A hedge around a
  name ("not sure, maybe Tim Berners-Lee") is an answer, judged on the name.
* UNSCORED — true, but proves nothing: names only people (or groups) already credited earlier in the session
  (the session decides this), or people the question knows to be true but shares with the target's team or a
  huge meeting (`Question.known`): no bits, and not wrong either.
Only the first name in "Alan and Katherine" counts: one answer, one guess.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import lru_cache

from verification.names import (
    allowed_edits,
    close,
    given_exact,
    name_forms,
    normalize,
    tokens,
    typo_distance,
    within_edits,
)
from verification.questions.model import AnswerType, Candidate, Form, Question


class MatchResult(StrEnum):
    CORRECT = "correct"
    PARTIAL = "partial"
    WRONG = "wrong"
    SKIPPED = "skipped"
    UNSCORED = "unscored"  # true, but proves nothing (already credited, or known to the team): no bits, not wrong


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict and why, in words that never contain the accepted answer or the caller's text.
    `keys`: the accepted candidates the answer fits (internal ids; the session uses them so one person
    cannot be credited twice, and keeps them with the other secrets)."""

    result: MatchResult
    reason: str
    keys: tuple[str, ...] = ()
    # A bare first name for someone outside the organisation: the chance that one guess of a first name fits an
    # accepted outsider as well as this one does (its share of people, times the outsiders accepted). The session
    # credits what guessing it is worth when that beats partial credit; None otherwise.
    hit_chance: float | None = None


# "Don't know", said every way people say it on the phone: each phrase is matched as whole words on the normalised
# text (so "I'm not sure" is "i m not sure", "can't" is "can t"), anywhere in the answer. What is left once these
# phrases and filler words are taken out decides: nothing -> a skip; a name -> an answer, hedges removed ("not sure,
# maybe Tim Berners-Lee" names Tim).
_NEG = (r"(?:do\s+not|don\s*t|dont|doesn\s*t|didn\s*t|did\s+not|can\s*t|cant|cannot|can\s+not|could\s*n\s*t|"
        r"couldnt|could\s+not|not|no\s+longer)")
_KNOW = (r"(?:know|knw|remember|remeber|rember|recall|recollect|sure|certain|think\s+of|say|tell|name|"
         r"come\s+up\s+with|place|recognise|recognize|be\s+sure)")
_DONT_KNOW = re.compile(r"\b(?:" + "|".join((
    rf"{_NEG}\s+(?:(?:really|quite|actually|totally|entirely|100|100\s+percent)\s+)?{_KNOW}",
    r"no\s+(?:idea|clue|clues|notion|recollection|memory|memories|one\s+comes\s+to\s+mind|name\s+comes\s+to\s+mind)",
    r"(?:nobody|no\s+one|nothing|noone|none)\s+(?:comes?|springs?)\s+to\s+mind",
    r"(?:not|haven\s*t|have\s+not|havent)\s+(?:got\s+)?(?:a|the\s+(?:faintest|foggiest|slightest))\s+(?:clue|idea)",
    r"not\s+the\s+(?:faintest|foggiest|slightest)(?:\s+idea)?",
    r"not\s+that\s+i\s+(?:can\s+|could\s+)?(?:recall|remember|know|think\s+of)",
    r"(?:beats|search|ask)\s+me", r"(?:drawing|draw|drew|drawn)\s+a\s+blank",
    r"(?:my\s+)?mind\s+(?:s|is|has|went|goes)(?:\s+gone)?\s+blank",
    r"(?:i\s+)?(?:forget|forgot|forgotten)", r"(?:it\s+)?escapes\s+me",
    r"idk|dunno|donno|dno|dunnno|unsure|uncertain|clueless|give\s+up|no\s+one|not\s+really",
)) + r")\b")
# Words that say nothing once the caller has said they do not know ("sorry, I really can't remember their name").
_DONT_KNOW_FILLERS = frozenset("""
i m im am is it s its really honestly actually just sorry afraid to be the this that one question please any
anyone anybody them him her who their his name names surname last first full there let me think off top of my
head right now offhand at moment anymore though but and or maybe on in for with a an have got what which whom
honest either rather would will can cannot you we all oh ah hm hmm hmmm uh um umm er erm uhm well so okay ok
yeah yes thanks sure quite completely totally simply wait sec hang goodness gosh god lord blimey dear mate
unfortunately genuinely idea clue lot many people person group groups team teams role roles email emails
emailed chat chats chatted meeting meetings met contact contacts saved recently lately week weeks today
yesterday else other another more these those options option none answer need move go ahead onto here
""".split())
# Single words that mean "don't know" only when nothing else is said ("Pass", "No, sorry", "Next question"), never
# inside a name ("Tim Next", "Skipper Jones").
_SKIP_WORDS = frozenset({"pass", "skip", "next", "no", "none", "nobody", "noone", "nothing", "nope", "nah", "n", "na",
                         "dunno", "idk"})
_FILLERS = frozenset({"um", "uh", "er", "erm", "hmm", "well", "so", "oh", "sorry", "okay", "ok", "honestly",
                      "actually", "please", "uhm", "ah"})


def without_hedges(text: str | None) -> str:
    """The answer with every "don't know" phrase taken out (normalised): "" when nothing but hedges and filler
    words was said. "Not sure, maybe Tim Berners-Lee" -> "maybe tim berners lee"."""
    said = normalize(text or "")
    if not said:
        return ""
    stripped = " ".join(_DONT_KNOW.sub(" ", said).split())
    words = stripped.split()
    if all(w in _DONT_KNOW_FILLERS or w in _SKIP_WORDS for w in words) and (
            stripped != said or any(w in _SKIP_WORDS for w in words)):
        return ""
    return stripped


def is_skip(text: str | None) -> bool:
    """The caller does not know: nothing said, or nothing but everyday ways of saying they do not know."""
    return not without_hedges(text)


def match_answer(question: Question, text: str | None) -> Match:
    said = without_hedges(text)
    if not said:
        return Match(MatchResult.SKIPPED, "the caller did not know")
    assert text is not None
    # Hedged answers are judged on what is left ("not sure, maybe Tim" names Tim); an answer with no hedge keeps
    # its punctuation (separators matter: "Ada, Tim" names Ada).
    text = text if said == normalize(text) else said
    if question.form is Form.MULTIPLE_CHOICE:
        return _match_choice(question, text)
    if question.answer_type is AnswerType.PERSON:
        return match_person(text, question.accepted, question.confusers, question.known)
    return match_named(text, question.accepted, question.confusers, question.answer_type, question.known)


# --- people ----------------------------------------------------------------------------------------

class Strength(IntEnum):
    NONE = 0
    SURNAME = 1
    GIVEN = 2
    FULL = 3


_PERSON_FILLERS = _FILLERS | frozenset({
    "i", "think", "it", "was", "its", "maybe", "probably", "with", "met", "mr", "mrs", "ms", "miss",
    "mx", "dr", "prof", "my", "colleague", "the", "guess", "that", "is", "would", "be", "from", "called",
    "perhaps", "but", "possibly",
})
_SEPARATORS = re.compile(r",|;|/|&|\band\b|\bor\b|\bplus\b", re.IGNORECASE)


def match_person(text: str, accepted: Sequence[Candidate], confusers: Sequence[Candidate],
                 known: Sequence[Candidate] = ()) -> Match:
    """`known`: true by the question's wording but worth nothing; an answer that names only such people is UNSCORED."""
    verdict = _judge_person(_person_words(text), accepted, confusers, known)
    if verdict.result is MatchResult.WRONG and _SEPARATORS.search(text):
        first = _SEPARATORS.split(text, maxsplit=1)[0]
        verdict = _judge_person(_person_words(first), accepted, confusers, known)
    return verdict


_CONTRACTION = re.compile(r"\b(?:it|that|he|she|who|i)['’](?:s|m|d)\b", re.IGNORECASE)


def _person_words(text: str) -> tuple[str, ...]:
    return tuple(w for w in tokens(_CONTRACTION.sub(" ", text)) if w not in _PERSON_FILLERS)


def is_bare_name(text: str) -> bool:
    """One word that could be a first name or a surname ("Tim"): worth asking for the full name."""
    return not is_skip(text) and len(_person_words(text)) == 1 and not _SEPARATORS.search(text)


def with_full_name(bare: str, follow_up: str) -> str:
    """Combine "Tim" with the answer to "their full name?": "Berners-Lee" -> "Tim Berners-Lee". When the answer
    says the first name again, it is the full name on its own, even if the first name comes back with a slip of
    the agent's fingers or as the name it is short for ("Bil", then "Bill Smith"; "Bill", then "William Smith"):
    putting both together would name nobody."""
    if is_skip(follow_up):
        return bare
    said = _person_words(follow_up)
    repeated = any(_same_first_name(b, w) for b in _person_words(bare) for w in said)
    return follow_up if repeated else f"{bare} {follow_up}"


def _same_first_name(a: str, b: str) -> bool:
    """Two typed words for one first name: equal, within the typo budget, or linked by the nicknames table."""
    return close(a, b) or given_exact(a, b)


# The most edits allowed_edits grants any word (it is capped).
_MOST_EDITS = allowed_edits(sys.maxsize)


def _most_edits(word: str) -> int:
    """The most edits between `word` and any word `close` to it: the other is at most _MOST_EDITS longer, and
    allowed_edits grows with length. So one C pass (within_edits) with this cutoff finds every word that might
    be close, and few others (a short word has few neighbours)."""
    return allowed_edits(len(word) + _MOST_EDITS)


@dataclass(frozen=True, slots=True)
class _Name:
    """A candidate's name, split up as person_strength compares it. Worked out once per name, not once per
    answer: the same people come back answer after answer, question after question."""

    given: tuple[str, ...]
    plain_given: tuple[str, ...]  # each given word normalised again, for the typo budget (names.close)
    nicknames: tuple[str, ...]  # the given words' nickname forms (Bill, Will for William), the given words left out
    surname: tuple[str, ...]
    display: tuple[str, ...]
    forms: tuple[str, ...]  # the full name said exactly: given surname, surname given, display
    form_words: tuple[int, ...]  # words in each form (_fuzzy_phrase matches only forms of another length)
    words: tuple[str, ...]  # every word above that a typed word is compared with by `close`, each once


# Names worked out, held by bytes rather than count: a _Name was ~1.6 KB (its frozensets most of it), so 16,384 of them
# were ~26 MB, and a burst of verifications answering at once filled them all (200 at 50,000 people: ~170 KB per open
# verification, bench.load). Its word sets are tuples now (a handful of words each, only ever iterated or tested
# against a frozenset): ~0.5 KB with its memo entry. 1,024 (~0.5 MB) hold the names of the answers in flight (an
# answer compares a few dozen); one worked out again costs ~8 us.
NAME_MEMO_ENTRIES = 1024


@lru_cache(maxsize=NAME_MEMO_ENTRIES)
def _name(given: str | None, surname: str | None, display: str) -> _Name:
    given_words = tokens(given) or tokens(display)[:1]
    surname_words = tokens(surname) or tokens(display)[-1:]
    display_words = tokens(display)
    plain_given = tuple(normalize(g) for g in given_words)
    forms = (" ".join(given_words + surname_words), " ".join(surname_words + given_words), " ".join(display_words))
    nicknames = tuple(sorted(frozenset().union(*(name_forms(g) for g in plain_given)) - frozenset(plain_given)))
    return _Name(given_words, plain_given, nicknames, surname_words, display_words, forms,
                 tuple(len(f.split()) for f in forms),
                 tuple(dict.fromkeys(plain_given + surname_words + display_words + nicknames)))


def _name_of(c: Candidate) -> _Name:
    return _name(c.given, c.surname, c.display)


@dataclass(frozen=True, slots=True)
class _Said:
    """The caller's words, with everything the candidates' names are compared against found in one go per
    answer: the typo neighbours of each word among all their name words, and of the whole phrase among all
    their full-name forms (instead of a typo_distance call per word, candidate and part of a name)."""

    words: tuple[str, ...]
    typed: str
    count: int  # words in `typed`
    near: Mapping[str, frozenset[str]]  # typed word -> the name words it is `close` to
    near_forms: frozenset[str]  # the full-name forms the whole phrase is within its typo budget of

    @classmethod
    def of(cls, words: tuple[str, ...], names: Sequence[_Name]) -> _Said:
        typed = " ".join(words)
        vocabulary = list(frozenset().union(*(n.words for n in names)))
        # within_edits finds every pair that could be close; `close` itself still decides (exactly as before).
        near = {w: frozenset(x for x in within_edits(w, vocabulary, _most_edits(w)) if close(w, x)) for w in set(words)}
        forms = list(frozenset().union(*(n.forms for n in names)))
        budget = allowed_edits(len(typed))
        near_forms = frozenset(f for f in within_edits(typed, forms, budget) if _phrase_close(typed, (f,)))
        return cls(words, typed, len(typed.split()), near, near_forms)


def person_strength(words: tuple[str, ...], c: Candidate) -> tuple[Strength, bool]:
    """How strongly the words name this candidate, and whether without typos (exact beats fuzzy, so
    "Joan" names Joan Clarke, not John Backus one typo away)."""
    if not words:
        return Strength.NONE, False
    name = _name_of(c)
    return _strength(_Said.of(words, (name,)), name)


def _strength(said: _Said, name: _Name) -> tuple[Strength, bool]:
    """person_strength, the answer's words prepared once for all the candidates."""
    if said.typed in name.forms:
        return Strength.FULL, True
    saw_given = saw_surname = saw_initial = saw_nickname = False
    exact = True
    for w in said.words:
        near = said.near[w]
        if any(given_exact(w, g) for g in name.given):
            saw_given = True
        elif not near.isdisjoint(name.plain_given):  # not exact (above), but within the typo budget of one
            saw_given, exact = True, False
        elif w in name.surname or not near.isdisjoint(name.surname):
            saw_surname, exact = True, exact and w in name.surname
        elif len(w) == 1 and any(s.startswith(w) for s in name.surname):
            saw_initial = True
        elif not near.isdisjoint(name.nicknames):  # a nickname with a typo ("Bil" for Bill): only with the surname
            saw_nickname, exact = True, False
        elif near.isdisjoint(name.display):
            return _fuzzy_phrase(said, name)  # a word that belongs to someone else: "Alan Smith"
    if (saw_given or saw_nickname) and (saw_surname or saw_initial):
        return Strength.FULL, exact
    if saw_given:
        return Strength.GIVEN, exact
    if saw_surname:
        return Strength.SURNAME, exact
    return _fuzzy_phrase(said, name)


def _fuzzy_phrase(said: _Said, name: _Name) -> tuple[Strength, bool]:
    """Words split or run together ("JoseMuller", "Berners Lee Tim"): the whole phrase within the typo
    budget. Only when the word counts differ: same-count typos were judged word by word (so the short
    "Ann" never stretches to "Ian")."""
    if said.near_forms.isdisjoint(name.forms):  # the usual case, decided without a loop
        return Strength.NONE, False
    uneven = (f for f, n in zip(name.forms, name.form_words, strict=True) if n != said.count)
    return (Strength.FULL, False) if any(f in said.near_forms for f in uneven) else (Strength.NONE, False)


def _phrase_close(typed: str, forms: Sequence[str]) -> bool:
    budget = allowed_edits(len(typed))
    return any(f and (typed == f or (budget and typo_distance(typed, f, budget) <= budget))
               for f in forms)


def _judge_person(words: tuple[str, ...], accepted: Sequence[Candidate], confusers: Sequence[Candidate],
                  known: Sequence[Candidate] = ()) -> Match:
    if not words:
        return Match(MatchResult.WRONG, "names nobody the question accepts")
    true_but_known = {c.key for c in known}
    people = [(c, _name_of(c), True) for c in accepted]
    people += [(c, _name_of(c), False) for c in (*confusers, *known)]
    said = _Said.of(words, [name for _, name, _ in people])
    scored = [(c, _strength(said, name), ok) for c, name, ok in people]
    best = max((s for _, s, _ in scored), default=(Strength.NONE, False))
    if best[0] is Strength.NONE:
        return Match(MatchResult.WRONG, "names nobody the question accepts")
    hits = [(c, ok) for c, s, ok in scored if s == best]
    right = [c for c, ok in hits if ok]
    if not right and hits and all(c.key in true_but_known for c, _ in hits):
        return Match(MatchResult.UNSCORED, "names someone true but known to the team (or from a huge meeting)")
    if not right:
        return Match(MatchResult.WRONG, "names someone the question does not accept")
    keys = tuple(c.key for c in right)
    if len(right) < len(hits):
        return Match(MatchResult.PARTIAL, "fits an accepted person and someone else", keys)
    if best[0] is Strength.FULL:
        return Match(MatchResult.CORRECT, "full name", keys)
    verdict = _judge_bare_name(best[0], right, sum(c.external for c in accepted))
    return Match(verdict.result, verdict.reason, keys, verdict.hit_chance)


def _judge_bare_name(strength: Strength, right: Sequence[Candidate], outsiders: int = 0) -> Match:
    """A first name or surname alone, fitting only accepted people among those the question knows. `outsiders`:
    how many accepted people are outside the organisation (any of them a bare first name could fit)."""
    part = "first name" if strength is Strength.GIVEN else "surname"
    if any(c.external for c in right):
        shares = [c.given_share for c in right]
        chance = outsiders * max(shares) if strength is Strength.GIVEN and min(shares) > 0 else None
        return Match(MatchResult.PARTIAL, f"{part} alone, for someone outside the organisation",
                     hit_chance=chance)
    counts = [c.given_count if strength is Strength.GIVEN else c.surname_count for c in right]
    if any(n == 0 for n in counts):  # tenant-wide counts unknown: judge among known people only
        return Match(MatchResult.CORRECT, f"{part} alone, unique among the people the question knows")
    if max(counts) <= len(right):
        return Match(MatchResult.CORRECT, f"{part} alone, unique in the tenant")
    return Match(MatchResult.PARTIAL, f"{part} alone, shared by {max(counts)} people in the tenant")


# --- groups and roles ------------------------------------------------------------------------------

# Words that say nothing about WHICH group: optional in an answer, typo-tolerant, never enough on their own.
_GROUP_GENERIC = frozenset({"team", "teams", "group", "groups", "dl", "list", "lists", "distribution", "the", "grp",
                            "sg", "channel", "m365", "o365", "m", "o", "365", "mailing", "security", "all", "my",
                            "our", "i", "im", "in", "am", "a", "and", "of", "member", "members"})
_ROLE_GENERIC = frozenset({"role", "roles", "the", "a", "an", "i", "m", "im", "am", "hold", "have", "my", "entra",
                           "azure", "microsoft", "365", "m365", "o365", "o", "directory", "ad", "aad", "s", "it"})
_ROLE_WORDS = {"admin": "administrator", "admins": "administrator", "administrators": "administrator",
               "adm": "administrator", "auth": "authentication", "pwd": "password", "passwords": "password",
               "users": "user", "mgr": "manager", "sec": "security"}
_LETTERS_OR_DIGITS = re.compile(r"[^\W\d_]+|\d+")


def _named_words(name: str, answer_type: AnswerType) -> tuple[str, ...]:
    """'SG-Tier2 Support' -> ('sg', 'tier', '2', 'support'): digits apart from letters, so "Tier2" is "Tier 2"."""
    text = normalize(name)
    if answer_type is AnswerType.ROLE:
        text = text.replace("help desk", "helpdesk").replace("service desk", "servicedesk")
    words = tuple(part for w in text.split() for part in _LETTERS_OR_DIGITS.findall(w))
    return tuple(_ROLE_WORDS.get(w, w) for w in words) if answer_type is AnswerType.ROLE else words


def _generic_words(answer_type: AnswerType) -> frozenset[str]:
    return _ROLE_GENERIC if answer_type is AnswerType.ROLE else _GROUP_GENERIC


def _word_fits(typed: str, actual: str) -> bool:
    """One word for another: exact, or within the typo budget of its length; numbers exactly ("1" is not "2")."""
    if typed == actual:
        return True
    if any(map(str.isdigit, typed + actual)):  # map, not a generator: this runs for every pair of words
        return False
    return close(typed, actual)


@lru_cache(maxsize=4096)  # the same few words, each checked against every generic word (30 typo distances)
def _generic_like(word: str, generic: frozenset[str]) -> bool:
    """A generic word, or one slip away from one ("Tem" for "Team", "Gruop" for "Group")."""
    return word in generic or (len(word) >= 3 and any(len(g) >= 4 and typo_distance(word, g, 1) <= 1
                                                      for g in generic))


def named_fit(typed: Sequence[str], actual: Sequence[str], generic: frozenset[str]) -> bool | None:
    """Does the answer name this group (or role), word by word? None if not; else whether without typos.

    Every distinguishing word of the name must be said (each within its own typo budget, numbers exactly),
    in any order; generic words may be left out, added or mistyped; nothing else may be added. So "Tier 1
    Support Team" never fits "Tier 2 Support Team", nor "Paris Music Lovers" "Madrid Music Lovers"."""
    core = [i for i, w in enumerate(actual) if w not in generic] or list(range(len(actual)))
    free = list(range(len(actual)))
    pending = []
    for w in typed:
        j = next((j for j in free if actual[j] == w), None)
        if j is None:
            pending.append(w)
        else:
            free.remove(j)
    exact = True
    for w in pending:
        j = next((j for j in free if _word_fits(w, actual[j])), None)
        if j is not None:
            free.remove(j)
            exact = False
        elif not _generic_like(w, generic):
            return None
    if any(j in free for j in core):
        return None
    return exact


@dataclass(frozen=True, slots=True)
class _Named:
    """A group's or role's name as named_fit reads it, worked out once per name (a tenant's groups come back in
    every group question): its words, the words it requires said (named_fit's `core`), and run together."""

    words: tuple[str, ...]
    core: frozenset[str]
    joined: str


@lru_cache(maxsize=65536)
def _named(name: str, answer_type: AnswerType) -> _Named:
    words = _named_words(name, answer_type)
    generic = _generic_words(answer_type)
    return _Named(words, frozenset(w for w in words if w not in generic) or frozenset(words), "".join(words))


def _fitted_words(typed: Sequence[str], names: Sequence[_Named]) -> frozenset[str]:
    """The candidates' required words that some typed word fits. A name with a required word outside this set
    cannot fit (named_fit would leave that word unsaid), so most of a thousand names are ruled out by one set
    test. within_edits finds the few words close enough to matter in C; _word_fits still decides each."""
    required = list(frozenset().union(*(n.core for n in names)))
    return frozenset(x for w in set(typed) for x in within_edits(w, required, _most_edits(w)) if _word_fits(w, x))


def _named_verdict(typed: Sequence[str], joined: str, name: _Named, fitted: frozenset[str],
                   generic: frozenset[str]) -> bool | None:
    fit = named_fit(typed, name.words, generic) if name.core <= fitted else None
    if fit is None and joined == name.joined:  # words run together: "Compilersteam"
        fit = True
    return fit


def match_named(text: str, accepted: Sequence[Candidate], confusers: Sequence[Candidate],
                answer_type: AnswerType, known: Sequence[Candidate] = ()) -> Match:
    """A group or role, said loosely. An exact (normalised) name beats names that only fit with typos, as for
    people: the exact name of a look-alike group is WRONG, not a near miss of the accepted one."""
    generic = _generic_words(answer_type)
    typed = _named_words(text, answer_type)
    what = answer_type.value
    if not [w for w in typed if w not in generic]:
        return Match(MatchResult.WRONG, f"names no {what}")
    named = [(c, _named(c.display, answer_type), True) for c in accepted]
    named += [(c, _named(c.display, answer_type), False) for c in (*confusers, *known)]
    fitted = _fitted_words(typed, [name for _, name, _ in named])
    joined = "".join(typed)
    scored = [(c, _named_verdict(typed, joined, name, fitted, generic), ok) for c, name, ok in named]
    fits = [(c, exact, ok) for c, exact, ok in scored if exact is not None]
    if any(exact for _, exact, _ in fits):
        fits = [f for f in fits if f[1]]
    right = [c for c, _, ok in fits if ok]
    keys = tuple(c.key for c in right)
    if right and len(right) < len(fits):
        return Match(MatchResult.PARTIAL, f"fits an accepted {what} and another one", keys)
    if right:
        return Match(MatchResult.CORRECT, f"names an accepted {what}", keys)
    true_but_known = {c.key for c in known}
    if fits and all(c.key in true_but_known for c, _, _ in fits):
        return Match(MatchResult.UNSCORED, f"names a {what} the target's team shares")
    if fits:
        return Match(MatchResult.WRONG, f"names a {what} the question does not accept")
    return Match(MatchResult.WRONG, f"names no accepted {what}")


# --- multiple choice -------------------------------------------------------------------------------

_OPTION = re.compile(r"^(?:option\s+|answer\s+|number\s+)?([a-z]|\d{1,2})$")


def _match_choice(question: Question, text: str) -> Match:
    chosen = _option_index(question, text)
    if chosen is None:
        return Match(MatchResult.WRONG, "did not pick exactly one option")
    if chosen == question.correct_option:
        return Match(MatchResult.CORRECT, "picked the right option", tuple(c.key for c in question.accepted))
    return Match(MatchResult.WRONG, "picked a wrong option")


def _option_index(question: Question, text: str) -> int | None:
    n = len(question.options)
    m = _OPTION.match(normalize(text))
    if m:
        token = m.group(1)
        index = int(token) - 1 if token.isdigit() else ord(token) - ord("a")
        return index if 0 <= index < n else None
    # The option named, judged against the other options (so an exact name beats a near miss of another).
    options = [Candidate(str(i), label) for i, label in enumerate(question.options)]
    fits = []
    for c in options:
        others = [o for o in options if o is not c]
        verdict = (match_person(text, [c], others) if question.answer_type is AnswerType.PERSON
                   else match_named(text, [c], others, question.answer_type))
        if verdict.result is MatchResult.CORRECT:
            fits.append(c)
    return int(fits[0].key) if len(fits) == 1 else None
