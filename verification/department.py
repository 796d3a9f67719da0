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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from verification.context import OrgKnowledge, Person
from verification.names import allowed_edits, close, normalize, title_core, tokens, within_edits
from verification.people import person_is_human


def office_key(office: str | None) -> str:
    """Offices compare trimmed and case-insensitively ("London HQ " is "london hq")."""
    return (office or "").strip().lower()


def name_words(p: Person) -> tuple[str, ...]:
    """The words of a person's given name and surname: what a caller's answer is looked up by."""
    return (*tokens(p.given_name), *tokens(p.surname))


def name_keys(p: Person) -> tuple[str, str, str]:
    """A person's given name, surname and display name, normalised (names.normalize; "" for none)."""
    return normalize(p.given_name or ""), normalize(p.surname or ""), normalize(p.display_name)


BY_LENGTH_FROM = 200  # words: an index with more keeps them by length too (NameIndex._by_length)

# A word's typo neighbours differ from it in length by at most this (names.allowed_edits never allows more than 3).
MAX_LENGTH_GAP = 3


def _neighbours(word: str, candidates: Sequence[str]) -> list[str]:
    """The candidates `close` to `word`: a wide search in C (the typo budget of a word 3 letters longer, what the
    longer word of a pair may allow), then names.close, which keeps the budget of the longer of the two."""
    return [n for n in within_edits(word, candidates, allowed_edits(len(word) + MAX_LENGTH_GAP)) if close(word, n)]


def _neighbours_by_length(word: str, by_length: Mapping[int, Sequence[str]]) -> list[str]:
    """`_neighbours` over words grouped by length: each length searched with the typo budget names.close gives the
    longer of the pair, so only lengths that budget can reach are read, with no wider search to filter afterwards
    (a 7-letter word: 6 to 9 letters, three of them within one edit, rather than 5 to 10 within two)."""
    found: list[str] = []
    for length in range(max(1, len(word) - MAX_LENGTH_GAP), len(word) + MAX_LENGTH_GAP + 1):
        budget = allowed_edits(max(length, len(word)))
        words = by_length.get(length)
        if words and abs(length - len(word)) <= budget:
            found += within_edits(word, words, budget)
    return found


# Words a shared index remembers the typo neighbours of, beyond the directory's own (outsiders' names: they rarely
# come back): past this many the memo starts again, so a snapshot that lives for hours holds no more than this.
MAX_CLOSE_MEMO = 4096


@dataclass(frozen=True, slots=True, eq=False)
class NameNeighbours:
    """Every name word of a directory, each with the words of the directory `close` to it (itself included): worked
    out once per directory snapshot, off the event loop, and shared by all its indexes, so that a verification never
    searches a department's thousands of name words for a caller's typos."""

    near: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, words: Iterable[str], like: NameNeighbours | None = None) -> NameNeighbours:
        """`like`: the previous snapshot's. Only the words it lacks are searched for (a directory's names change
        little between snapshots); what it knew of the words still here carries over."""
        vocabulary = frozenset(words)
        by_length: dict[int, list[str]] = {}
        for w in sorted(vocabulary):
            by_length.setdefault(len(w), []).append(w)
        known = like.near if like is not None else {}
        near: dict[str, set[str]] = {w: {n for n in known[w] if n in vocabulary} for w in vocabulary if w in known}
        new = vocabulary - near.keys()
        for w in new:
            near[w] = set()
        if len(new) * 2 > len(vocabulary):
            # Mostly new (the first snapshot): every pair once, from its shorter word (equal lengths: from both).
            for length, ws in by_length.items():
                longer = [n for gap in range(MAX_LENGTH_GAP + 1) for n in by_length.get(length + gap, ())]
                for w in ws:
                    for n in _neighbours(w, longer):
                        near[w].add(n)
                        near[n].add(w)
        else:
            for w in sorted(new):  # a new word against everyone, both ways
                around = [n for gap in range(-MAX_LENGTH_GAP, MAX_LENGTH_GAP + 1)
                          for n in by_length.get(len(w) + gap, ())]
                for n in _neighbours(w, around):
                    near[w].add(n)
                    near[n].add(w)
        return cls({w: tuple(sorted(ns)) for w, ns in near.items()})


@dataclass(frozen=True, slots=True, eq=False)
class NameIndex:
    """Ids by name word, and the words within the typo budget of a word: from the directory's `NameNeighbours` when it
    knows the word, else searched for and memoised (shared indexes are asked about the same names verification after
    verification; the answer depends on nothing else)."""

    ids_by_word: Mapping[str, frozenset[str]]
    words: tuple[str, ...]
    neighbours: NameNeighbours | None = None
    _close: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    # A big index's words by length, worked out with it: a word's typo neighbours are at most names.allowed_edits
    # letters longer or shorter, so a search for a word the directory does not know (an outsider's name) reads only
    # those lengths (a 50,000-person directory's biggest department has ~5,000 name words).
    _by_length: Mapping[int, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_length: dict[int, list[str]] = {}
        if len(self.words) > BY_LENGTH_FROM:
            for w in self.words:
                by_length.setdefault(len(w), []).append(w)
        object.__setattr__(self, "_by_length", {n: tuple(ws) for n, ws in by_length.items()})

    @classmethod
    def build(cls, people: Iterable[Person], like: NameIndex | None = None,
              neighbours: NameNeighbours | None = None) -> NameIndex:
        """`like`: the same department's index from the previous snapshot. When the name words are the same (people
        come and go, names rarely do), its typo neighbours, already worked out, carry over. `neighbours`: those of
        every name word of the directory these people are from."""
        found: dict[str, set[str]] = {}
        for p in people:
            for word in name_words(p):
                found.setdefault(word, set()).add(p.id)
        ids_by_word = {w: frozenset(ids) for w, ids in found.items()}
        if like is not None and like.ids_by_word.keys() == ids_by_word.keys():
            return cls(ids_by_word, like.words, neighbours, like._close)
        return cls(ids_by_word, tuple(found), neighbours)

    def close_words(self, word: str) -> tuple[str, ...]:
        """The index's words a caller could mean by `word` with typos (names.close). Exact and nickname forms are
        looked up in `ids_by_word`."""
        near = self.neighbours.near.get(word) if self.neighbours is not None else None
        if near is not None:  # the directory's words close to it, of which these are some
            return tuple(n for n in near if n in self.ids_by_word)
        found = self._close.get(word)
        if found is None:
            if self._by_length:
                found = tuple(_neighbours_by_length(word, self._by_length))
            else:
                found = tuple(_neighbours(word, self.words)) if self.words else ()
            if len(self._close) >= MAX_CLOSE_MEMO:
                self._close.clear()
            self._close[word] = found
        return found


# The organisation's samples (OrgKnowledge.others) a department's index keeps indexed by name word: one serves nearly
# every verification in the department; a few more, for people whose manager is in another department.
MAX_SAMPLES = 8


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
    # (office_key, title_core) -> how many members have both: the sizes of `split`'s parts without intersecting sets
    both: Mapping[tuple[str, frozenset[str]], int] = field(default_factory=dict)
    # id -> the member's given name, surname and display name normalised (names.normalize): what look-alikes and
    # decoys are compared and counted by, worked out once here rather than in every start that meets them
    keys: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    # The samples of other departments' people its verifications were given, indexed (sample)
    _samples: dict[tuple[str, ...], Sample] = field(default_factory=dict, repr=False)

    def sample(self, people: tuple[Person, ...]) -> Sample:
        """`people`, the organisation's sample a verification in this department was given (a stable sample: the
        same people for nearly everyone in it), indexed: built once and shared, not per verification. Kept while the
        people are the same objects (a later snapshot's are new ones)."""
        key = tuple(p.id for p in people)
        held = self._samples.get(key)
        if held is not None and all(a is b for a, b in zip(held.people, people, strict=True)):
            return held
        made = Sample.build(people, self.names.neighbours)
        if len(self._samples) >= MAX_SAMPLES:
            self._samples.clear()
        self._samples[key] = made
        return made

    @classmethod
    def build(cls, members: Sequence[Person], like: DepartmentIndex | None = None,
              neighbours: NameNeighbours | None = None) -> DepartmentIndex:
        """`like`: the department's index from the previous snapshot, whose memoised work carries over;
        `neighbours`: the typo neighbours of the directory's name words (see NameNeighbours)."""
        unique: dict[str, Person] = {}
        for p in members:
            unique.setdefault(p.id, p)
        people = tuple(unique.values())
        humans = tuple(p for p in people if person_is_human(p))
        by_office: dict[str, set[str]] = {}
        by_title: dict[frozenset[str], set[str]] = {}
        both: dict[tuple[str, frozenset[str]], int] = {}
        for p in people:
            office = office_key(p.office_location)
            if office:
                by_office.setdefault(office, set()).add(p.id)
            core = title_core(p.job_title)
            if core:
                by_title.setdefault(core, set()).add(p.id)
            if office and core:
                both[(office, core)] = both.get((office, core), 0) + 1
        return cls(
            members=people, ids=frozenset(unique), by_id=unique, humans=humans,
            human_ids=frozenset(p.id for p in humans),
            by_office={k: frozenset(v) for k, v in by_office.items()},
            by_title={k: frozenset(v) for k, v in by_title.items()},
            names=NameIndex.build(people, like.names if like is not None else None, neighbours),
            both=both, keys={p.id: name_keys(p) for p in people},
        )

    def same_office(self, office: str | None) -> frozenset[str]:
        key = office_key(office)
        return self.by_office.get(key, frozenset()) if key else frozenset()

    def similar_title(self, title: str | None) -> frozenset[str]:
        """Ids whose title is the same once seniority is ignored (verification/names.py `similar_titles`)."""
        core = title_core(title)
        return self.by_title.get(core, frozenset()) if core else frozenset()

    def split(self, office: str | None, title: str | None, removed: frozenset[str]
              ) -> tuple[DepartmentSlice, DepartmentSlice, DepartmentSlice]:
        """The members but `removed`, in three parts: in `office` with a title similar to `title`; in the office or
        with such a title, not both; neither. Views of this shared index, not copies: a start costs what `removed`
        holds, not what the department does (thousands in a large tenant)."""
        key, core = office_key(office), title_core(title)
        in_office = self.by_office.get(key, frozenset()) if key else frozenset()
        titled = self.by_title.get(core, frozenset()) if core else frozenset()
        both = self.both.get((key, core), 0) if key and core else 0
        sizes = (both, len(in_office) + len(titled) - 2 * both, len(self.ids) - len(in_office) - len(titled) + both)
        parts = tuple(DepartmentSlice(self, in_office, titled, part, sizes[part], frozenset()) for part in range(3))
        return tuple(p - removed for p in parts)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """Some people of other departments (OrgKnowledge.others) and what look-alikes and decoys look up in them, as
    DepartmentIndex holds it for its members: by name word, normalised names, who is a human being."""

    people: tuple[Person, ...]
    names: NameIndex
    by_id: Mapping[str, Person]
    keys: Mapping[str, tuple[str, str, str]]
    human_ids: frozenset[str]

    @classmethod
    def build(cls, people: tuple[Person, ...], neighbours: NameNeighbours | None) -> Sample:
        return cls(people, NameIndex.build(people, neighbours=neighbours), {p.id: p for p in people},
                   {p.id: name_keys(p) for p in people}, frozenset(p.id for p in people if person_is_human(p)))


CLOSE, NEAR, REST = 0, 1, 2


@dataclass(frozen=True, slots=True, eq=False)
class DepartmentSlice:
    """Some of a department's ids, as a view of its shared index: the members in `office` and `titled` (CLOSE), in
    exactly one of them (NEAR) or in neither (REST), less `removed`. Answers `in`, `len` and `-` (a small set) in
    what `removed` and the other set hold; iterating it walks the department, for small slices only."""

    department: DepartmentIndex
    office: frozenset[str]
    titled: frozenset[str]
    part: int
    size: int
    removed: frozenset[str]

    def __contains__(self, pid: object) -> bool:
        if pid in self.removed or pid not in self.department.ids:
            return False
        o, t = pid in self.office, pid in self.titled
        return (o and t) if self.part == CLOSE else (o != t) if self.part == NEAR else not (o or t)

    def _held(self, pid: str) -> bool:
        """In this slice before `removed` is taken away."""
        if pid not in self.department.ids:
            return False
        o, t = pid in self.office, pid in self.titled
        return (o and t) if self.part == CLOSE else (o != t) if self.part == NEAR else not (o or t)

    def __len__(self) -> int:
        return self.size

    def __sub__(self, other: frozenset[str] | set[str]) -> DepartmentSlice:
        fresh = [pid for pid in other if pid not in self.removed and self._held(pid)]
        if not fresh:
            return self
        return DepartmentSlice(self.department, self.office, self.titled, self.part, self.size - len(fresh),
                               self.removed | frozenset(fresh))

    def __iter__(self) -> Iterator[str]:
        if self.part == CLOSE:
            small, other = sorted((self.office, self.titled), key=len)
            pool: Iterable[str] = (pid for pid in small if pid in other)
        elif self.part == NEAR:
            pool = (*(pid for pid in self.office if pid not in self.titled),
                    *(pid for pid in self.titled if pid not in self.office))
        else:
            pool = (pid for pid in self.department.ids if pid not in self.office and pid not in self.titled)
        return (pid for pid in pool if pid not in self.removed)


EMPTY = DepartmentIndex.build(())


def of(org: OrgKnowledge) -> DepartmentIndex:
    """The target's department indexed: the shared index graph/ built for the snapshot when it indexes exactly
    `org.department_members` (the same tuple), else one built here from them."""
    shared = org.department_index
    if shared is not None and shared.members is org.department_members:
        return shared
    return DepartmentIndex.build(org.department_members) if org.department_members else EMPTY
