"""The Audit page's filters and exports, without HTTP: reading filters from a query string, and turning
audit entries into CSV and JSON that are safe to open.

CSV is opened in spreadsheets, which run a cell that starts with = + - @ (or a tab or carriage return) as
a formula: such cells get a leading apostrophe (OWASP's "CSV injection" advice). Detail keys that look
like secrets are never shown (the store already refuses to write them; this is the second lock).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store import AuditEntry, AuditFilter
from store.secrets_guard import looks_like_secret_key

FILTER_FIELDS = ("subject", "actor", "action", "outcome", "since", "until")
CSV_COLUMNS = ("seq", "time", "tenant_id", "actor", "actor_name", "subject", "subject_name", "action", "outcome",
               "details", "prev_hash", "hash")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HIDDEN = "(hidden)"
MAX_TEXT = 256


@dataclass
class Filters:
    """What the page was asked to show: the raw values (for the form and links), the store's filter, and
    messages for values that could not be read (those filters are left out)."""

    values: dict[str, str]
    where: AuditFilter
    errors: dict[str, str] = field(default_factory=dict)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for export links and paging)."""
        return {k: v for k, v in self.values.items() if v}


def parse_filters(query: Mapping[str, str]) -> Filters:
    values = {name: str(query.get(name, "")).strip()[:MAX_TEXT] for name in FILTER_FIELDS}
    errors: dict[str, str] = {}
    since = _moment(values["since"], "since", errors, end=False)
    until = _moment(values["until"], "until", errors, end=True)
    if since and until and since >= until:
        errors["until"] = "“To” must be after “From”."
        until = None
    where = AuditFilter(subject=values["subject"] or None, actor=values["actor"] or None,
                        action=values["action"] or None, outcome=values["outcome"] or None, since=since, until=until)
    return Filters(values, where, errors)


def _moment(text: str, name: str, errors: dict[str, str], *, end: bool) -> datetime | None:
    """A date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM, as a datetime-local input sends), in UTC.
    A date alone as the end of a range includes that whole day."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        errors[name] = f"“{text[:40]}” is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM); ignored."
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def safe_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """The details with any secret-looking key's value hidden, at any depth."""
    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: HIDDEN if looks_like_secret_key(str(k)) else clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return clean(dict(details))


def entry_json(entry: AuditEntry, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The entry as exported; `names`: display names (from the directory sync) of the ids and UPNs the log
    records, shown beside them (the log itself keeps the ids: names change, ids do not)."""
    names = names or {}
    return {
        "seq": entry.seq, "time": entry.time.isoformat(), "tenant_id": entry.tenant_id, "actor": entry.actor,
        "actor_name": names.get(entry.actor), "subject": entry.subject,
        "subject_name": names.get(entry.subject) if entry.subject else None,
        "action": entry.action, "outcome": entry.outcome,
        "details": safe_details(entry.details), "prev_hash": entry.prev_hash, "hash": entry.hash,
    }


def csv_cell(value: Any) -> str:
    """One CSV cell's text, defused: a leading apostrophe stops a spreadsheet reading it as a formula."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_header() -> str:
    return _csv_line(CSV_COLUMNS)


def csv_rows(entries: Iterable[AuditEntry], names: Mapping[str, str] | None = None) -> str:
    return "".join(_csv_line([csv_cell(entry_json(e, names)[c]) for c in CSV_COLUMNS]) for e in entries)


def _csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(list(cells))
    return buffer.getvalue()


def details_text(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The details as (key, value) lines for the page: strings as they are, anything else as compact JSON."""
    out = []
    for key, value in safe_details(details).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        out.append((str(key), text if len(text) <= 400 else text[:399] + "…"))
    return out
