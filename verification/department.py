"""A department's people, indexed once for every verification of anyone in it.

What a people question needs of the target's department is the same for everyone in it: who is a human being
(decoys are people, never a room), who sits in which office and has which title (the impostor's tiers), and
which name words belong to whom (look-alikes). In a 50,000-person tenant a department holds thousands: worked
out per verification, that is most of a start's CPU, and it grows with the organisation. So graph/ builds one
`DepartmentIndex` per department and directory snapshot, shares it (immutable) between every verification until
the snapshot is refreshed, and hands it over in `OrgKnowledge.department_index`. Without one (no complete
snapshot, or tests) `of(org)` builds it from `OrgKnowledge.department_members`, for that verification only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from verification.context import OrgKnowledge, Person
from verification.names import allowed_edits, close, title_core, tokens
from verification.people import person_is_human


def office_key(office: str | None) -> str:
    """Offices compare trimmed and case-insensitively ("London HQ " is "london hq")."""
    return (office or "").strip().lower()


def name_words(p: Person) -> tuple[str, ...]:
    """The words of a person's given name and surname: what a caller's answer is looked up by."""
    return (*tokens(p.given_name), *tokens(p.surname))


@dataclass(frozen=True, slots=True, eq=False)
class NameIndex:
    """Ids by name word, and the words within the typo budget of a word (memoised: shared indexes are asked about
    the same names verification after verification; the answer depends on nothing else)."""

    ids_by_word: Mapping[str, frozenset[str]]
    words: tuple[str, ...]
    _close: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, people: Iterable[Person], like: NameIndex | None = None) -> NameIndex:
        """`like`: the same department's index from the previous snapshot. When the name words are the same (people
        come and go, names rarely do), its typo neighbours, already worked out, carry over."""
        found: dict[str, set[str]] = {}
        for p in people:
            for word in name_words(p):
                found.setdefault(word, set()).add(p.id)
        ids_by_word = {w: frozenset(ids) for w, ids in found.items()}
        if like is not None and like.ids_by_word.keys() == ids_by_word.keys():
            return cls(ids_by_word, like.words, like._close)
        return cls(ids_by_word, tuple(found))

    def close_words(self, word: str) -> tuple[str, ...]:
        """The index's words a caller could mean by `word` with typos (names.close keeps the budget of the longer
        word: search wide, then keep what it keeps). Exact and nickname forms are looked up in `ids_by_word`."""
        found = self._close.get(word)
        if found is None:
            budget = allowed_edits(len(word) + 3)
            found = tuple(name for name, _, _ in process.extract(word, self.words, scorer=OSA.distance,
                                                                  score_cutoff=budget, limit=None)
                          if close(word, name)) if budget and self.words else ()
            self._close[word] = found
        return found


@dataclass(frozen=True, slots=True, eq=False)
class DepartmentIndex:
    """The department's members (in the directory's order) and what the generators look up in them."""

    members: tuple[Person, ...]
    ids: frozenset[str]
    by_id: Mapping[str, Person]
    humans: tuple[Person, ...]  # members that are human beings (verification/people.py), in order: decoy pool
    human_ids: frozenset[str]
    by_office: Mapping[str, frozenset[str]]  # office_key -> ids
    by_title: Mapping[frozenset[str], frozenset[str]]  # title_core -> ids (titles without a core left out)
    names: NameIndex

    @classmethod
    def build(cls, members: Sequence[Person], like: DepartmentIndex | None = None) -> DepartmentIndex:
        """`like`: the department's index from the previous snapshot, whose memoised work carries over."""
        unique: dict[str, Person] = {}
        for p in members:
            unique.setdefault(p.id, p)
        people = tuple(unique.values())
        humans = tuple(p for p in people if person_is_human(p))
        by_office: dict[str, set[str]] = {}
        by_title: dict[frozenset[str], set[str]] = {}
        for p in people:
            office = office_key(p.office_location)
            if office:
                by_office.setdefault(office, set()).add(p.id)
            core = title_core(p.job_title)
            if core:
                by_title.setdefault(core, set()).add(p.id)
        return cls(
            members=people, ids=frozenset(unique), by_id=unique, humans=humans,
            human_ids=frozenset(p.id for p in humans),
            by_office={k: frozenset(v) for k, v in by_office.items()},
            by_title={k: frozenset(v) for k, v in by_title.items()},
            names=NameIndex.build(people, like.names if like is not None else None),
        )

    def same_office(self, office: str | None) -> frozenset[str]:
        key = office_key(office)
        return self.by_office.get(key, frozenset()) if key else frozenset()

    def similar_title(self, title: str | None) -> frozenset[str]:
        """Ids whose title is the same once seniority is ignored (verification/names.py `similar_titles`)."""
        core = title_core(title)
        return self.by_title.get(core, frozenset()) if core else frozenset()


EMPTY = DepartmentIndex.build(())


def of(org: OrgKnowledge) -> DepartmentIndex:
    """The target's department indexed: the shared index graph/ built for the snapshot when it indexes exactly
    `org.department_members` (the same tuple), else one built here from them."""
    shared = org.department_index
    if shared is not None and shared.members is org.department_members:
        return shared
    return DepartmentIndex.build(org.department_members) if org.department_members else EMPTY
