"""Indexes over an organisation's users, so /users answers a simple $filter or $search without reading everyone.

An index only narrows: `candidates` returns users that MAY match (in the directory's order), and the
handler still runs the request's $search, $filter, $orderby and paging over them exactly as over the whole
directory. So an answer cannot differ from a full scan as long as the candidates include every match, which
holds by construction: values are keyed as the filter compares them (casefolded), and $search tokens are
the ones `odata._words` makes. What no index answers (`ne`, `not`, `endswith`, lambdas, other properties,
an `or` with an unindexed side) returns None and the handler scans, as before.

Built once by `Org.index()` (when the organisation is generated or loaded), kept current by `Org.touch`,
`add_users` and `remove_user`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtenant.model import User

# Filter property (lower-cased) -> the user's value it reads (as UserView serves it).
EQ_FIELDS = {
    "id": lambda u: u.id,
    "mail": lambda u: u.mail,
    "userprincipalname": lambda u: u.user_principal_name,
    "displayname": lambda u: u.display_name,
    "givenname": lambda u: u.given_name,
    "surname": lambda u: u.surname,
    "department": lambda u: u.department,
    "usertype": lambda u: u.user_type,
    "accountenabled": lambda u: u.account_enabled,
}
PREFIX_FIELDS = ("displayname", "givenname", "surname", "mail", "userprincipalname")
# $search property (as parse_search names it) -> value.
SEARCH_FIELDS = {
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "surname": lambda u: u.surname,
    "mail": lambda u: u.mail,
    "userPrincipalName": lambda u: u.user_principal_name,
}


def _words(text: str) -> list[str]:
    from devtenant.graph_api.odata import _words as words  # noqa: PLC0415 - odata imports the router, which needs state

    return words(text)


class UserIndex:
    def __init__(self, users: Iterable[User] = ()) -> None:
        self.positions: dict[str, int] = {}  # user id -> place in the directory's order
        self.next_position = 0
        # Tuples rather than sets and lists: the garbage collector stops tracking tuples of strings, so the
        # index does not slow every full collection of a busy devtenant.
        self.eq: dict[str, dict[str, tuple[str, ...]]] = {f: {} for f in EQ_FIELDS}
        self.prefix: dict[str, list[tuple[str, str]]] = {f: [] for f in PREFIX_FIELDS}  # sorted (value, id)
        self.tokens: dict[str, list[tuple[str, str]]] = {f: [] for f in SEARCH_FIELDS}  # sorted (token, id)
        self.keys: dict[str, tuple[tuple[str, str, str], ...]] = {}  # user id -> (kind, field, key) to unindex it
        self._bulk: dict[str, dict[str, list[str]]] | None = {f: {} for f in EQ_FIELDS}
        for user in users:
            self._add(user)
        for name, ids_of in self._bulk.items():
            self.eq[name] = {key: tuple(ids) for key, ids in ids_of.items()}
        self._bulk = None
        for entries in (*self.prefix.values(), *self.tokens.values()):
            entries.sort()

    def __len__(self) -> int:
        return len(self.positions)

    # --- upkeep ------------------------------------------------------------------------------------
    def _add(self, user: User) -> None:
        bulk = self._bulk
        if user.id not in self.positions:
            self.positions[user.id] = self.next_position
            self.next_position += 1
        keys: list[tuple[str, str, str]] = []
        for name, read in EQ_FIELDS.items():
            value = read(user)
            if isinstance(value, (str, bool)):
                key = value.casefold() if isinstance(value, str) else value
                if bulk is not None:
                    bulk[name].setdefault(key, []).append(user.id)
                else:
                    self.eq[name][key] = (*self.eq[name].get(key, ()), user.id)
                keys.append(("eq", name, key))
                if name in self.prefix and isinstance(key, str):
                    keys.append(("prefix", name, key))
        for name, read in SEARCH_FIELDS.items():
            value = read(user)
            if isinstance(value, str):
                keys.extend(("tokens", name, token) for token in set(_words(value)))
        for kind, name, key in keys:
            if kind != "eq":
                entries = (self.prefix if kind == "prefix" else self.tokens)[name]
                if bulk is not None:
                    entries.append((key, user.id))
                else:
                    insort(entries, (key, user.id))
        self.keys[user.id] = tuple(keys)

    def _drop(self, user_id: str) -> None:
        for kind, name, key in self.keys.pop(user_id, ()):
            if kind == "eq":
                ids = tuple(i for i in self.eq[name].get(key, ()) if i != user_id)
                if ids:
                    self.eq[name][key] = ids
                else:
                    self.eq[name].pop(key, None)
                continue
            entries = (self.prefix if kind == "prefix" else self.tokens)[name]
            at = bisect_left(entries, (key, user_id))
            if at < len(entries) and entries[at] == (key, user_id):
                del entries[at]

    def update(self, user: User) -> None:
        """Index a user again after a change (or for the first time)."""
        self._drop(user.id)
        self._add(user)

    def remove(self, user_id: str) -> None:
        self._drop(user_id)
        self.positions.pop(user_id, None)

    # --- reads -------------------------------------------------------------------------------------
    @staticmethod
    def _starting(entries: Sequence[tuple[str, str]], prefix: str) -> set[str]:
        out: set[str] = set()
        at = bisect_left(entries, (prefix,))
        while at < len(entries) and entries[at][0].startswith(prefix):
            out.add(entries[at][1])
            at += 1
        return out

    def filter_ids(self, hint: Any) -> tuple[set[str], bool] | None:
        """Ids that may match a filter's hint (see odata.parse_filter), and whether they are exactly the matches
        (every part of the filter indexed); None when the hint needs a scan."""
        if not isinstance(hint, tuple) or not hint:
            return None
        kind = hint[0]
        if kind in ("and", "or"):
            left, right = self.filter_ids(hint[1]), self.filter_ids(hint[2])
            if kind == "or":
                return None if left is None or right is None else (left[0] | right[0], left[1] and right[1])
            if left is None or right is None:
                one = left if right is None else right
                return None if one is None else (one[0], False)
            return left[0] & right[0], left[1] and right[1]
        prop = hint[1]
        if kind == "eq" and prop in self.eq:
            out: set[str] = set()
            for value in hint[2]:
                out.update(self.eq[prop].get(value.casefold() if isinstance(value, str) else value, ()))
            return out, True
        if kind == "prefix" and prop in self.prefix:
            return self._starting(self.prefix[prop], hint[2].casefold()), True
        return None

    def search_ids(self, groups: Sequence[Sequence[tuple[str, list[str]]]]) -> set[str] | None:
        """Ids that may match a parsed $search (odata.parse_search's groups); None when it needs a scan."""
        out: set[str] = set()
        for group in groups:
            if not group:
                continue  # an empty group matches nothing
            narrowed: set[str] | None = None
            for prop, words in group:
                if prop not in self.tokens or not words:
                    continue  # this clause narrows nothing; the others still do
                for word in words:
                    ids = self._starting(self.tokens[prop], word)
                    narrowed = ids if narrowed is None else narrowed & ids
            if narrowed is None:
                return None
            out |= narrowed
        return out

    def in_order(self, ids: Iterable[str]) -> list[str]:
        positions = self.positions
        return sorted((i for i in ids if i in positions), key=positions.__getitem__)
