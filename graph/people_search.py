"""The people search behind `verify <name>`: its rules, written once, for Graph's query and for the directory snapshot.

What the agent typed (`clean`) takes one of three forms (`form_of`), each with Graph's meaning:
- several words: every word starts a word of the display name, in any order (`$search="displayName:..."`: Graph splits
  a name, and the words searched for, at spaces, punctuation and camelCase humps: `search_words`);
- one word: a display name, given name, surname, user principal name or mail starts with it (`$filter=startswith`);
- an address (it holds "@"): a user principal name or mail starts with it.
All case-insensitive. Graph does not rank: `best` ranks the people found (`rank`) and keeps `limit`. Graph is asked for
`fetch_size(limit)` people, which holds everyone a name finds but for the broadest queries (a letter or two); for
those, Graph's page is an arbitrary part of the people found (its order is unspecified), and the index ranks them all.

`PeopleIndex` answers the same three forms over a directory snapshot's people (graph/tenant_facts.py), from sorted
keys built once per snapshot, so a search costs a few bisections and the people it finds, not a walk of everyone.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from enum import Enum
from functools import lru_cache

from verification.context import Person

MAX_QUERY_CHARS = 64
NAME_FIELDS = ("displayName", "givenName", "surname", "userPrincipalName", "mail")
ADDRESS_FIELDS = ("userPrincipalName", "mail")
_PAST_ANY_PREFIX = "\U0010ffff"  # after every key that starts with a prefix (no name holds this code point)


class Form(Enum):
    WORDS = "words"  # several words: each starts a word of the display name
    WORD = "word"  # one word: the start of a name or an address
    ADDRESS = "address"  # holds "@": the start of a user principal name or mail


def clean(text: str) -> str:
    """The agent's text as a query: printable, single-spaced, bounded."""
    printable = "".join(c if c.isprintable() else " " for c in text or "")
    return " ".join(printable.split())[:MAX_QUERY_CHARS]


def form_of(query: str) -> Form:
    if "@" in query:
        return Form.ADDRESS
    return Form.WORDS if len(query.split()) > 1 else Form.WORD


def search_term(query: str) -> str:
    """A several-word query as it goes inside `$search`'s double quotes: without the characters that could end them."""
    return re.sub(r'["\\]', " ", query)


def search_words(text: str) -> list[str]:
    """Graph's directory search words of a text: split at spaces and punctuation, and each word's camelCase humps
    too ("McKay" is "mckay", "mc" and "kay"), casefolded. A search word matches a name word it starts."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out += _word_and_humps(word)
    return out


_WORD = re.compile(r"[^\W_]+")
_HUMP = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@lru_cache(maxsize=65_536)  # names repeat: a 50,000-person directory has a few thousand given names and surnames
def _word_and_humps(word: str) -> tuple[str, ...]:
    humps = _HUMP.findall(word)
    return (word.casefold(), *(h.casefold() for h in humps)) if len(humps) > 1 else (word.casefold(),)


def fetch_size(limit: int) -> int:
    """How many people a search reads before ranking them: more than it keeps, as Graph does not rank."""
    return min(999, max(limit * 3, 25))


def rank(p: Person, query: str) -> tuple[int, str, str]:
    """0: the whole name or address; 1: the start of the name or principal name; 2: the start of a word of the name;
    then by name, and by id between namesakes (so the order does not depend on the order the people came in)."""
    q = query.casefold()
    name = (p.display_name or "").casefold()
    upn = (p.upn or "").casefold()
    if q in (name, upn, (p.mail or "").casefold()):
        score = 0
    elif name.startswith(q) or upn.startswith(q):
        score = 1
    elif any(w.startswith(q) for w in re.split(r"[\s.@_-]+", name)):
        score = 2
    else:
        score = 3
    return score, name, p.id


def best(people: Iterable[Person], query: str, limit: int) -> list[Person]:
    """The `limit` best ranked, as `sorted(...)[:limit]` would, without sorting them all."""
    return heapq.nsmallest(limit, people, key=lambda p: rank(p, query))


class _Keys:
    """(key, person id) pairs sorted by key (casefolded), kept as two columns."""

    def __init__(self, keys: list[str], ids: list[str]) -> None:
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = [keys[n] for n in order]
        self.ids = [ids[n] for n in order]

    def span(self, prefix: str) -> tuple[int, int]:
        """Where the keys that start with `prefix` are."""
        keys = self.keys
        return bisect_left(keys, prefix), bisect_left(keys, prefix + _PAST_ANY_PREFIX)

    def starting(self, prefix: str) -> list[str]:
        """The ids of the people with a key that starts with `prefix` (some more than once)."""
        lo, hi = self.span(prefix)
        return self.ids[lo:hi]

    def copy(self) -> _Keys:
        out = _Keys.__new__(_Keys)
        out.keys, out.ids = list(self.keys), list(self.ids)
        return out

    def add(self, key: str, pid: str) -> None:
        at = bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.ids.insert(at, pid)

    def remove(self, key: str, pid: str) -> None:
        keys, ids = self.keys, self.ids
        at = bisect_left(keys, key)
        while at < len(keys) and keys[at] == key:
            if ids[at] == pid:
                del keys[at], ids[at]
                return
            at += 1


def _folded(value: str) -> str:
    folded = value.casefold()
    return value if folded == value else folded  # an address usually is already: no second copy of it


# Patching an index costs a shift of its columns per key of each person changed: past this many, it is built again.
PATCH_AT_MOST = 500


class PeopleIndex:
    """Accounts (a directory snapshot's people and others, by id) indexed for the three forms of the people search:
    their names and addresses, and the words of their display names, sorted once; a delta round's changes are patched
    in (`patched`). `find` answers as Graph would over these accounts."""

    def __init__(self, accounts: Mapping[str, Person]) -> None:
        self.accounts = accounts
        self._words_seen: dict[str, str] = {}  # one string per word or name: given names and surnames repeat
        columns: tuple[tuple[list[str], list[str]], ...] = tuple(([], []) for _ in range(5))
        for pid, p in accounts.items():
            for n, key in self._keys_of(p):
                columns[n][0].append(key)
                columns[n][1].append(pid)
        self._columns = tuple(_Keys(keys, ids) for keys, ids in columns)
        self._display, self._names, self._upn, self._mail, self._words = self._columns

    def _keys_of(self, p: Person) -> list[tuple[int, str]]:
        """The person's keys, each with its column (display names, given names and surnames, principal names, mail,
        display names' words)."""
        seen = self._words_seen
        out = [(n, _folded(value)) for n, value in ((0, p.display_name), (2, p.upn), (3, p.mail)) if value]
        out += [(1, seen.setdefault(key, key)) for key in (_folded(v) for v in (p.given_name, p.surname) if v)]
        out += [(4, seen.setdefault(word, word)) for word in set(search_words(p.display_name or ""))]
        return out

    def __len__(self) -> int:
        return len(self.accounts)

    def patched(self, accounts: Mapping[str, Person], changed: AbstractSet[str]) -> PeopleIndex:
        """This index for `accounts`, which differ from its own only for the ids in `changed`: its columns copied and
        patched for them (or built again, when many changed)."""
        if len(changed) > PATCH_AT_MOST:
            return PeopleIndex(accounts)
        out = PeopleIndex.__new__(PeopleIndex)
        out.accounts = accounts
        out._words_seen = self._words_seen
        out._columns = tuple(c.copy() for c in self._columns)
        out._display, out._names, out._upn, out._mail, out._words = out._columns
        for pid in sorted(changed):
            before, now = self.accounts.get(pid), accounts.get(pid)
            if before == now:
                continue
            if before is not None:
                for n, key in self._keys_of(before):
                    out._columns[n].remove(key, pid)
            if now is not None:
                for n, key in out._keys_of(now):
                    out._columns[n].add(key, pid)
        return out

    def find(self, query: str, limit: int) -> list[Person]:
        """The `limit` best ranked people the (clean) query finds, as Graph finds them; none for a query with no words
        to search for."""
        q = query.casefold()
        form = form_of(query)
        if form is Form.WORD:
            # Display names and principal names that start with the query outrank the other people it finds: when
            # they are enough, the others (thousands, for a letter) need not be looked at.
            found = self._top(None, q, limit)
            if len(found) < limit:
                found = set(self._display.starting(q))
                for more in (self._names, self._upn, self._mail):
                    found.update(more.starting(q))
        elif form is Form.ADDRESS:
            found = set(self._upn.starting(q))
            found.update(self._mail.starting(q))
        else:
            wanted = sorted((self._words.starting(w) for w in set(search_words(search_term(query)))), key=len)
            if not wanted:
                return []
            found = set(wanted[0])
            for more in wanted[1:]:
                if not found:
                    break
                found.intersection_update(more)
            if len(found) > limit:
                top = self._top(found, q, limit)
                found = top if len(top) >= limit else found
        accounts = self.accounts
        return best((accounts[i] for i in found), query, limit)

    def _top(self, found: set[str] | None, q: str, limit: int) -> set[str]:
        """Of the people found (None: everyone) whose display name or principal name starts with `q` (which holds no
        "@"), those who could be among the `limit` best. With no "@" in it, no address equals the query, so scores of
        0 (`rank`) are display names equal to it, and the display names that start with it come, sorted, in the order
        they rank (namesakes apart: all of the last name taken are taken). Principal names that start with it score 1
        too: those whose display name does not are ranked with the display names taken. When this gives at least
        `limit` people, they outrank everyone else found (scores of 2 or more)."""
        top: set[str] = set()
        keys, at = self._display.keys, self._display.ids
        lo, hi = self._display.span(q)
        for n in range(lo, hi):
            if len(top) >= limit and keys[n] != keys[n - 1]:
                break
            if found is None or at[n] in found:
                top.add(at[n])
        others = set(self._upn.starting(q)).difference(at[lo:hi])  # the rest of the display names are outranked
        top.update(others if found is None else others.intersection(found))
        return top
