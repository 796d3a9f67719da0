"""Graph's OData query options, applied to lists of JSON dicts: the toolkit every handler shares.

    select(obj, req, default)        $select (unknown property -> 400, as Graph)
    page(req, items, default_size=, max_size=, context=)
                                     $top, $skiptoken paging with @odata.nextLink, @odata.count
    order_by(items, req, allowed)    $orderby "a desc, b/c"
    apply_filter(items, req, ...)    $filter (see `parse_filter` for the grammar)
    apply_search(items, req, fields) $search "displayName:ada" (directory: ConsistencyLevel eventual)
    expand_options(req)              $expand "manager($select=id),directReports"
    iso(dt), iso_local(dt), date_time_time_zone(dt)
                                     datetimes as Graph writes them

Directory objects (users, groups...) have Graph's "advanced query" rules: some operators, $count,
$search and OData casts need the `ConsistencyLevel: eventual` header (and, except for $search,
`$count=true`). Helpers take `directory=True` to apply them; Outlook-style resources pass False.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, bad_request

Predicate = Callable[[Mapping[str, Any]], bool]

ADVANCED_HINT = ("Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
                 "Refer to https://aka.ms/graph-docs/advanced-queries for more information")
SEARCH_NEEDS_EVENTUAL = ("Request with $search query parameter only works through MSGraph with a special "
                         "request header: 'ConsistencyLevel: eventual'")
# Characters left as they are when a query option is written back into an @odata.nextLink.
_LINK_SAFE = "$,()'=:/@*!;"


def unsupported(message: str = "Unsupported Query.") -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


# --- advanced query parameters -------------------------------------------------------------------
def eventual(req: GraphRequest) -> bool:
    """The request carries `ConsistencyLevel: eventual`."""
    return (req.headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"


def count_requested(req: GraphRequest) -> bool:
    raw = req.query.get("$count")
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"Invalid value '{raw}' for query option '$count'; expected true or false.")
    return raw.lower() == "true"


def advanced(req: GraphRequest) -> bool:
    """Both advanced query parameters: the header and $count=true."""
    return eventual(req) and count_requested(req)


def require_advanced(req: GraphRequest, feature: str) -> None:
    """`feature` (e.g. "Operator 'endsWith'") works only in advanced queries."""
    if not advanced(req):
        raise unsupported(f"{feature} is not supported because the required parameters might be missing. "
                          + ADVANCED_HINT)


def require_count_segment(req: GraphRequest) -> None:
    """A `/$count` path segment on directory objects needs `ConsistencyLevel: eventual`."""
    if not eventual(req):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")


# --- $select -------------------------------------------------------------------------------------
def selected(req: GraphRequest) -> list[str] | None:
    """The $select list as given, or None when absent (or empty)."""
    raw = req.query.get("$select")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or None


def unknown_property(name: str, type_name: str) -> GraphError:
    return bad_request(f"Parsing OData Select and Expand failed: Could not find a property named '{name}' "
                       f"on type '{type_name}'.")


def project(obj: Mapping[str, Any], names: Sequence[str] | None, *, type_name: str = "microsoft.graph.entity",
            strict: bool = True) -> dict[str, Any]:
    """Keep `names` (case-insensitive) and the `@odata.*` annotations; None or "*" keeps everything.

    `strict=False` is for collections of mixed types (directoryObjects): a name another type has
    is simply absent from this object.
    """
    if names is None or "*" in names:
        return dict(obj)
    by_lower, annotations = _key_names(obj)
    out = {key: obj[key] for key in annotations}
    for name in names:
        key = by_lower.get(name.lower())
        if key is None:
            if strict:
                raise unknown_property(name, type_name)
            continue
        out[key] = obj[key]
    return out


def _key_names(obj: Mapping[str, Any]) -> tuple[Mapping[str, str], Sequence[str]]:
    """{name.lower(): name} over the object's keys, and its `@` annotations, both in the object's order.

    A view over fixed properties (serialize.UserView) knows them already: rebuilding them per user was most
    of the cost of a page of 999 users."""
    known = getattr(obj, "key_names", None)
    if known is not None:
        return known()
    by_lower = {key.lower(): key for key in obj}
    return by_lower, [key for key in by_lower.values() if key.startswith("@")]


def select(obj: Mapping[str, Any], req: GraphRequest, default: Sequence[str] | None = None, *,
           type_name: str | None = None) -> dict[str, Any]:
    """Apply the request's $select to one JSON object; without $select keep `default` (None: all).

    Navigation properties named in $expand stay, as Graph keeps them whatever $select says."""
    names = selected(req)
    kind = type_name or str(obj.get("@odata.type", "#microsoft.graph.entity")).lstrip("#")
    keep = names if names is not None else default
    if keep is not None and "$expand" in req.query:
        by_lower = _key_names(obj)[0]
        keep = [*keep, *(name for name in expand_options(req) if name.lower() in by_lower)]
    return project(obj, keep, type_name=kind)


def check_select(req: GraphRequest, known: Collection[str], type_name: str) -> None:
    """Validate $select against the property names of a type (for empty lists and mixed collections)."""
    lowered = {name.lower() for name in known}
    for name in selected(req) or ():
        if name != "*" and name.lower() not in lowered:
            raise unknown_property(name, type_name)


# --- @odata.context and paging -------------------------------------------------------------------
def context_url(req: GraphRequest, fragment: str, *, entity: bool = False) -> str:
    """`{base}/$metadata#users(displayName,mail)` -- with the $select list appended, as Graph does."""
    names = selected(req)
    fragment += f"({','.join(names)})" if names else ""
    fragment += "/$entity" if entity else ""
    return f"{req.base_url}/$metadata#{fragment}"


def link(req: GraphRequest, path: str | None = None, *, drop: Collection[str] = ("$skiptoken", "$skip"),
         extra: Mapping[str, str] | None = None) -> str:
    """An absolute link back to this service keeping the request's other query options verbatim."""
    pairs = [(k, v) for k, v in req.query.items() if k not in drop]
    pairs += list((extra or {}).items())
    target = quote(path if path is not None else req.path, safe="/$@()',=:!*;")
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_LINK_SAFE)}" for k, v in pairs)
    return f"{req.base_url}{target}" + (f"?{query}" if query else "")


_SKIP_PREFIX = "RFNwdAIA"  # Graph's directory skip tokens start "RFNwdA" ("DSpt" in base64); ours are opaque too


def encode_skiptoken(state: Mapping[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return _SKIP_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_skiptoken(token: str, *, directory: bool = True) -> dict[str, Any]:
    try:
        if not token.startswith(_SKIP_PREFIX):
            raise ValueError(token)
        body = token[len(_SKIP_PREFIX):]
        state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(state, dict):
            raise ValueError(token)
        return state
    except (ValueError, binascii.Error, UnicodeDecodeError):
        if directory:
            raise GraphError(400, "Directory_ExpiredPageToken", "The specified page token value has expired "
                             "and can no longer be included in your request.") from None
        raise bad_request("The $skiptoken value is invalid or has expired.") from None


def page_size(req: GraphRequest, default_size: int, max_size: int, *, strict: bool = True) -> int:
    """$top, or `default_size`. Out of 1..max_size: Graph's 400 (directory), or clamped (`strict=False`)."""
    raw = req.query.get("$top")
    if raw is None:
        return default_size
    try:
        size = int(raw)
    except ValueError:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {max_size} "
                          "inclusive.", "Request_BadRequest") from None
    if 1 <= size <= max_size:
        return size
    if strict or size < 0:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {max_size} "
                          "inclusive.", "Request_BadRequest")
    return max(1, min(size, max_size))


def page(req: GraphRequest, items: Sequence[Any], *, default_size: int, max_size: int, context: str,
         directory: bool = True, render: Callable[[Any], dict[str, Any]] | None = None,
         skip_links: bool = False, strict_top: bool = True) -> GraphResponse:
    """One page of `items` as Graph's collection response.

    `context`: an absolute @odata.context, or a fragment such as "users" or
    "users('id')/calendarView" to which the $select list is appended. `render` turns one item of
    the page into JSON (so only the page is serialised). The next page's link keeps the other
    query options and adds an opaque `$skiptoken` (or `$skip=N` with `skip_links`, as Outlook
    does). `@odata.count` answers `$count=true`; on directory objects only with the
    ConsistencyLevel header, else Graph silently leaves it out.
    """
    size = page_size(req, default_size, max_size, strict=strict_top)
    cap = req.state.config.expand_page_cap
    if directory and cap and "$expand" in req.query:
        size = min(size, cap)  # Graph: $expand on directory objects returns at most 100 objects a page
    offset = 0
    token = req.query.get("$skiptoken")
    if token is not None:
        offset = int(decode_skiptoken(token, directory=directory).get("o", 0))
    if "$skip" in req.query:
        if directory:
            raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
        try:
            offset += max(0, int(req.query["$skip"]))
        except ValueError:
            raise bad_request(f"Invalid value '{req.query['$skip']}' for query option '$skip'.") from None
    chunk = items[offset:offset + size]
    body: dict[str, Any] = {
        "@odata.context": context if context.startswith("http") else context_url(req, context)
    }
    if count_requested(req) and (eventual(req) or not directory):
        body["@odata.count"] = len(items)
    if offset + size < len(items):
        if skip_links:
            body["@odata.nextLink"] = link(req, extra={"$skip": str(offset + size)})
        else:
            body["@odata.nextLink"] = link(req, extra={"$skiptoken": encode_skiptoken({"o": offset + size})})
    body["value"] = [render(item) for item in chunk] if render else list(chunk)
    return GraphResponse(body=body)


# --- $orderby ------------------------------------------------------------------------------------
def resolve(obj: Any, path: str) -> Any:
    """The value at "a/b/c" in nested JSON (case-insensitive keys); None when missing."""
    value = obj
    for part in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.casefold())
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)


def order_by(items: Iterable[Any], req: GraphRequest, allowed: Collection[str], *,
             key: Callable[[Any], Mapping[str, Any]] | None = None) -> list[Any]:
    """Sort by $orderby ("displayName", "createdDateTime desc", "lastMessagePreview/createdDateTime desc").

    `allowed` lists the sortable paths (case-insensitive); others are Graph's 400. `key` maps an
    item to the JSON its paths are read from (default: the item itself). Nulls sort first.
    """
    out = list(items)
    raw = req.query.get("$orderby")
    if raw is None:
        return out
    allowed_lower = {a.lower() for a in allowed}
    clauses: list[tuple[str, bool]] = []
    for clause in raw.split(","):
        parts = clause.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Invalid $orderby clause: '{clause.strip()}'.")
        if parts[0].lower() not in allowed_lower:
            raise unsupported("Sorting not supported for current query.")
        clauses.append((parts[0], len(parts) == 2 and parts[1].lower() == "desc"))
    view = key or (lambda item: item)
    for path, descending in reversed(clauses):
        out.sort(key=lambda item, p=path: _sort_key(resolve(view(item), p)), reverse=descending)
    return out


# --- $filter -------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-]))
    | (?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-]))
    | (?P<num>-?\d+(?:\.\d+)?(?![\w-]))
    | (?P<name>[A-Za-z_$@][\w.$@]*)
    | (?P<punct>[(),:/])
    )""", re.VERBOSE)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_KEYWORDS = _COMPARISONS | {"and", "or", "not", "in", "true", "false", "null"}
_Env = dict[str, Any]
_Node = Callable[[_Env], Any]


def parse_datetime(value: str) -> datetime:
    """Graph's datetime strings ("...Z", "...+00:00", seven fractional digits, or no zone = UTC)."""
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if match:  # Python takes at most six fractional digits
        text = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Datetime literals compare with JSON datetime strings as datetimes; strings case-insensitively."""
    try:
        if isinstance(left, datetime) and isinstance(right, str):
            return left, parse_datetime(right)
        if isinstance(right, datetime) and isinstance(left, str):
            return parse_datetime(left), right
    except ValueError:
        return left, right
    return _norm(left), _norm(right)


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _coerce(left, right)
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return left > right
        if op == "ge":
            return left >= right
        if op == "lt":
            return left < right
        return left <= right
    except TypeError:
        return False


class FilterRules:
    """What a resource's $filter accepts.

    properties: the filterable property paths' first segments (None: any); resource: the type
    named in errors ("User"); functions: allowed functions; directory + advanced: directory
    objects allow `ne`, `not` and `endsWith` only with the advanced query parameters.
    operators: where a resource documents which operators each property supports (the sign-in logs' "Supports
    $filter (eq, startsWith)"), {property path: its operators and functions}; a comparison, `in` or function on a
    property outside it is 400 Request_UnsupportedQuery. logical: the logical operators the resource accepts.
    """

    def __init__(self, *, properties: Collection[str] | None = None, resource: str = "resource",
                 functions: Collection[str] = ("startswith", "endswith"), directory: bool = False,
                 advanced: bool = True, operators: Mapping[str, Collection[str]] | None = None,
                 logical: Collection[str] = ("and", "or", "not")) -> None:
        self.properties = {p.lower() for p in properties} if properties is not None else None
        self.resource = resource
        self.functions = {f.lower() for f in functions}
        self.directory = directory
        self.advanced = advanced
        self.operators = {k.lower(): {o.lower() for o in v} for k, v in operators.items()} \
            if operators is not None else None
        self.logical = {w.lower() for w in logical}

    def allow(self, operator: str, subject: Any) -> None:
        """Refuse `operator` on `subject` (a parsed property path) when the resource documents it does not support
        it there; a subject that is no property path (a lambda's variable, a literal) is not checked here."""
        path = getattr(subject, "path", None)
        if self.operators is None or path is None:
            return
        if operator not in self.operators.get(path, ()):
            raise unsupported(f"Unsupported or invalid query filter clause specified for property '{path}' of "
                              f"resource '{self.resource}': operator '{operator}' is not supported.")

    def allow_logical(self, operator: str) -> None:
        if operator not in self.logical:
            raise unsupported(f"Unsupported or invalid query filter clause specified for resource "
                              f"'{self.resource}': operator '{operator}' is not supported.")

    def gate(self, feature: str) -> None:
        if self.directory and not self.advanced:
            raise unsupported(f"{feature} is not supported because the required parameters might be "
                              "missing. " + ADVANCED_HINT)


class _FilterParser:
    def __init__(self, text: str, rules: FilterRules) -> None:
        self.text = text
        self.rules = rules
        self.tokens: list[tuple[str, str, int]] = []
        self.i = 0
        self.scope: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise self.syntax(pos)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()

    # tokens
    def syntax(self, pos: int | None = None) -> GraphError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return bad_request(f"Invalid filter clause: Syntax error at position {pos} in '{self.text}'.")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in words:
            self.i += 1
            return tok[1].lower()
        return None

    def punct(self, char: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "punct" and tok[1] == char:
            self.i += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.punct(char):
            raise self.syntax()

    # grammar
    def parse(self) -> _Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise self.syntax()
        return node

    def or_expr(self) -> _Node:
        node = self.and_expr()
        while self.keyword("or"):
            self.rules.allow_logical("or")
            left, right = node, self.and_expr()
            node = _hinted(lambda env, a=left, b=right: bool(a(env)) or bool(b(env)),
                           _combine("or", left, right))
        return node

    def and_expr(self) -> _Node:
        node = self.not_expr()
        while self.keyword("and"):
            self.rules.allow_logical("and")
            left, right = node, self.not_expr()
            node = _hinted(lambda env, a=left, b=right: bool(a(env)) and bool(b(env)),
                           _combine("and", left, right))
        return node

    def not_expr(self) -> _Node:
        if self.keyword("not"):
            self.rules.allow_logical("not")
            self.rules.gate("Operator 'not'")
            inner = self.not_expr()
            return lambda env: not inner(env)
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.value()
        op = self.keyword(*_COMPARISONS, "in")
        if op is None:
            return left
        self.rules.allow(op, left)
        if op == "in":
            self.expect("(")
            options = [self.literal_only()]
            while self.punct(","):
                options.append(self.literal_only())
            self.expect(")")
            normalised = [_norm(o) for o in options]
            prop = getattr(left, "prop", None)
            hint = ("eq", prop, tuple(options)) if prop and all(isinstance(o, str) for o in options) else None
            return _hinted(lambda env: _norm(left(env)) in normalised, hint)
        if op == "ne":
            self.rules.gate("Operator 'ne'")
        right = self.value()
        prop, literal = getattr(left, "prop", None), getattr(right, "literal", None)
        hint = ("eq", prop, (literal,)) if op == "eq" and prop and isinstance(literal, (str, bool)) else None
        return _hinted(lambda env: _compare(op, left(env), right(env)), hint)

    def literal_only(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.syntax()
        node = self.value()
        if tok[0] not in ("str", "guid", "dt", "num") and tok[1].lower() not in ("true", "false", "null"):
            raise self.syntax(tok[2])
        return node({})

    def value(self) -> _Node:
        tok = self.peek()
        if tok is None:
            raise self.syntax()
        kind, text, pos = tok
        if kind == "punct":
            if text != "(":
                raise self.syntax(pos)
            self.i += 1
            node = self.or_expr()
            self.expect(")")
            return node
        self.i += 1
        if kind == "str":
            literal: Any = text[1:-1].replace("''", "'")
            return _tagged(lambda env: literal, literal=literal)
        if kind == "guid":
            return _tagged(lambda env: text, literal=text)
        if kind == "dt":
            moment = parse_datetime(text)
            return lambda env: moment
        if kind == "num":
            number = float(text) if "." in text else int(text)
            return lambda env: number
        lowered = text.lower()
        if lowered in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[lowered]
            return _tagged(lambda env: constant, literal=constant)
        if lowered in _KEYWORDS:
            raise self.syntax(pos)
        if self.peek() and self.peek()[1] == "(" and self.peek()[0] == "punct":
            return self.function(lowered, pos)
        return self.path(text)

    def function(self, name: str, pos: int) -> _Node:
        if name not in ("startswith", "endswith", "contains") or name not in self.rules.functions:
            raise unsupported(f"Unsupported or invalid query filter clause specified for function '{name}' "
                              f"of resource '{self.rules.resource}'.")
        if name == "endswith":
            self.rules.gate("Operator 'endsWith'")
        self.expect("(")
        subject = self.value()
        self.rules.allow(name, subject)
        self.expect(",")
        needle = self.value()
        self.expect(")")

        def call(env: _Env) -> bool:
            haystack, part = subject(env), needle(env)
            if not isinstance(haystack, str) or not isinstance(part, str):
                return False
            haystack, part = haystack.casefold(), part.casefold()
            if name == "startswith":
                return haystack.startswith(part)
            if name == "endswith":
                return haystack.endswith(part)
            return part in haystack

        prop, literal = getattr(subject, "prop", None), getattr(needle, "literal", None)
        return _hinted(call, ("prefix", prop, literal) if name == "startswith" and prop
                       and isinstance(literal, str) else None)

    def path(self, first: str) -> _Node:
        segments = [first]
        if first not in self.scope:
            if "$" in first or (self.rules.properties is not None and first.lower() not in self.rules.properties):
                raise unsupported(f"Unsupported or invalid query filter clause specified for property "
                                  f"'{first}' of resource '{self.rules.resource}'.")
        while self.punct("/"):
            tok = self.peek()
            if tok is None or tok[0] != "name":
                raise self.syntax()
            self.i += 1
            if tok[1].lower() in ("any", "all") and self.peek() and self.peek()[1] == "(":
                return self.lambda_(segments, tok[1].lower())
            if "$" in tok[1]:
                raise unsupported(f"Unsupported or invalid query filter clause specified for property "
                                  f"'{tok[1]}' of resource '{self.rules.resource}'.")
            segments.append(tok[1])
        node = self.reader(segments)
        if first in self.scope:
            return node
        _tagged(node, path="/".join(segments).lower())
        return _tagged(node, prop=first.lower()) if len(segments) == 1 else node

    def reader(self, segments: list[str]) -> _Node:
        head, rest = segments[0], "/".join(segments[1:])

        def read(env: _Env) -> Any:
            base = env[head] if head in env else resolve(env["$it"], head)
            return resolve(base, rest) if rest else base

        return read

    def lambda_(self, segments: list[str], kind: str) -> _Node:
        collection = self.reader(segments)
        self.expect("(")
        if self.punct(")"):
            if kind == "all":
                raise self.syntax()
            return lambda env: bool(collection(env))
        var = self.peek()
        if var is None or var[0] != "name":
            raise self.syntax()
        self.i += 1
        self.expect(":")
        self.scope.append(var[1])
        body = self.or_expr()
        self.scope.pop()
        self.expect(")")
        name = var[1]

        def run(env: _Env) -> bool:
            items = collection(env) or []
            if not isinstance(items, list):
                return False
            results = (bool(body({**env, name: item})) for item in items)
            return any(results) if kind == "any" else all(results)

        return run


# Index hints: what a compiled filter promises about its matches, for callers holding indexes (directory.py).
# ("eq", prop, values): prop (lower-cased name) equals one of the values (strings compared case-insensitively,
# or true/false);
# ("prefix", prop, value): prop starts with value, case-insensitively; ("and"|"or", hint, hint) combine them.
# A predicate without a hint promises nothing; "and" has a hint when either side has one (the other may be
# None), "or" only when both have.
Hint = tuple[Any, ...]


def _tagged(node: _Node, **tags: Any) -> _Node:
    for name, value in tags.items():
        setattr(node, name, value)
    return node


def _hinted(node: Any, hint: Hint | None) -> Any:
    if hint is not None:
        node.hint = hint
    return node


def _combine(op: str, left: _Node, right: _Node) -> Hint | None:
    a, b = getattr(left, "hint", None), getattr(right, "hint", None)
    if op == "or":
        return ("or", a, b) if a is not None and b is not None else None
    return None if a is None and b is None else ("and", a, b)  # a side without a hint narrows nothing


def parse_filter(text: str, rules: FilterRules | None = None) -> Predicate:
    """Compile a $filter expression into a predicate over JSON dicts.

    Grammar: `or`/`and`/`not` and parentheses; comparisons `eq ne gt ge lt le` on strings
    (case-insensitive), numbers, booleans, null and datetimes (`createdDateTime ge 2026-11-24T00:00:00Z`,
    compared with the JSON's ISO strings as instants); `prop in ('a','b')`; `startswith(p,'x')`,
    `endswith(p,'x')` (and `contains` where a resource allows it); property paths `a/b`; lambdas
    `groupTypes/any(c:c eq 'Unified')`, `attendees/any(a:a/emailAddress/address eq 'x')`.
    Syntax errors are 400 BadRequest; what the resource does not support is 400 Request_UnsupportedQuery.
    """
    node = _FilterParser(text, rules or FilterRules()).parse()
    return _hinted(lambda obj: bool(node({"$it": obj})), getattr(node, "hint", None))


def apply_filter(items: Iterable[Any], req: GraphRequest, *, properties: Collection[str] | None = None,
                 resource: str = "resource", functions: Collection[str] = ("startswith", "endswith"),
                 directory: bool = True, key: Callable[[Any], Mapping[str, Any]] | None = None) -> list[Any]:
    """Keep the items matching the request's $filter (all of them when there is none)."""
    out = list(items)
    raw = req.query.get("$filter")
    if raw is None:
        return out
    if not raw.strip():
        raise bad_request("Invalid filter clause: The $filter expression must not be empty.")
    rules = FilterRules(properties=properties, resource=resource, functions=functions, directory=directory,
                        advanced=advanced(req))
    predicate = parse_filter(raw, rules)
    view = key or (lambda item: item)
    return [item for item in out if predicate(view(item))]


# --- $search -------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    """Graph's directory search tokens: words split at spaces, punctuation and camelCase humps."""
    out: list[str] = []
    for word in re.findall(r"[^\W_]+", text):
        out.append(word.casefold())
        humps = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", word)
        if len(humps) > 1:
            out.extend(h.casefold() for h in humps)
    return out


def parse_search(text: str, fields: Collection[str]) -> Predicate:
    """`"displayName:ada lo" OR "mail:grace"`: every word of a clause must start a token of the property."""
    stripped = text.strip()
    if not stripped.startswith('"'):
        colon = stripped.find(":")
        raise bad_request(f"Syntax error: character ':' is not valid at position {max(colon, 0)} in '{text}'.")
    allowed = {f.lower(): f for f in fields}
    groups: list[list[tuple[str, list[str]]]] = [[]]
    for quoted, operator in re.findall(r'"([^"]*)"|\b(AND|OR)\b', stripped):
        if operator == "OR":
            groups.append([])
            continue
        if operator == "AND":
            continue
        prop, sep, term = quoted.partition(":")
        if not sep or prop.strip().lower() not in allowed:
            raise unsupported(f"Unsupported or invalid query search clause specified: '{quoted}'.")
        groups[-1].append((allowed[prop.strip().lower()], _words(term)))
    if not any(groups):
        raise bad_request(f"Invalid $search query: '{text}'.")

    def clause_matches(obj: Mapping[str, Any], prop: str, words: list[str]) -> bool:
        value = resolve(obj, prop)
        tokens = _words(value) if isinstance(value, str) else []
        return all(any(t.startswith(w) for t in tokens) for w in words)

    matches = lambda obj: any(group and all(clause_matches(obj, p, w) for p, w in group)  # noqa: E731
                              for group in groups)
    # The parsed clauses, for callers holding a token index (directory.py): OR of groups, each an AND of
    # (property, words), every word starting a token of the property.
    return _tagged(matches, groups=[list(g) for g in groups])


def apply_search(items: Iterable[Any], req: GraphRequest, fields: Collection[str], *, directory: bool = True,
                 key: Callable[[Any], Mapping[str, Any]] | None = None) -> list[Any]:
    """Keep the items matching $search; directory objects need `ConsistencyLevel: eventual`."""
    out = list(items)
    raw = req.query.get("$search")
    if raw is None:
        return out
    if directory and not eventual(req):
        raise unsupported(SEARCH_NEEDS_EVENTUAL)
    predicate = parse_search(raw, fields)
    view = key or (lambda item: item)
    return [item for item in out if predicate(view(item))]


# --- $expand -------------------------------------------------------------------------------------
def _split_top_level(text: str, sep: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"Invalid $expand: '{text}'.")
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise bad_request(f"Invalid $expand: '{text}'.")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def expand_options(req: GraphRequest) -> dict[str, dict[str, str]]:
    """`$expand=manager($select=id,displayName),directReports` -> {"manager": {"$select": "id,displayName"},
    "directReports": {}}, keyed by the names as written (compare them case-insensitively)."""
    raw = req.query.get("$expand")
    if raw is None:
        return {}
    return {name: dict(options) for name, options in _parse_expand(raw).items()}


@lru_cache(maxsize=256)
def _parse_expand(raw: str) -> dict[str, dict[str, str]]:
    """expand_options' parsing, once per distinct $expand (a page of users asks for each user)."""
    out: dict[str, dict[str, str]] = {}
    for item in _split_top_level(raw, ","):
        name, _, rest = item.partition("(")
        options: dict[str, str] = {}
        if rest:
            if not rest.endswith(")"):
                raise bad_request(f"Invalid $expand: '{raw}'.")
            for option in _split_top_level(rest[:-1], ";"):
                key, eq, value = option.partition("=")
                if not eq:
                    raise bad_request(f"Invalid $expand: '{raw}'.")
                options[key.strip()] = value.strip()
        out[name.strip()] = options
    return out


# --- datetimes -----------------------------------------------------------------------------------
def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """Directory objects, messages, chats: "2026-11-24T10:00:00Z" (UTC, whole seconds)."""
    return None if dt is None else _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(dt: datetime) -> str:
    """An event's dateTime: "2026-11-24T10:00:00.0000000" (no zone; the zone travels beside it)."""
    moment = _utc(dt)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def date_time_time_zone(dt: datetime) -> dict[str, str]:
    """Graph's dateTimeTimeZone for event start/end, in UTC (Graph's default without a `Prefer:
    outlook.timezone` header): {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"}."""
    return {"dateTime": iso_local(dt), "timeZone": "UTC"}
