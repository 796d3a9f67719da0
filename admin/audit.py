"""Audit: every verification, decision, reset, consent, policy change, console sign-in and refusal, with who,
whom, when, the outcome and the reasons (never secrets), and whether the tamper-evident chain still holds.

    GET /admin/audit                 filter by person (subject), agent (actor), action, outcome, time; page back
    GET /admin/audit/export.csv      the same filters, every matching row, streamed (CSV-injection safe)
    GET /admin/audit/export.json     the same, as a JSON array
    GET /admin/audit/head.json       the chain's head (seq and hash), to keep outside Watchword's database
    POST /admin/audit/verify         check the chain from the start now, and against a head kept elsewhere

The chain is checked from its first entry when the page is opened and a full check is over a minute old (or an
admin asks), and otherwise from the head the last passing check reached, that head's own entry checked again.
A consistent rewrite of the tail (rows deleted and the head row moved back) verifies from the inside; only a
head kept elsewhere (head.json, the daily export of admin/audit_head.py) shows it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from time import monotonic
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from admin import audit_head
from admin.audit_view import Filters, csv_header, csv_rows, details_text, entry_json, parse_filters
from admin.context import STORE, audit, connected_tenant, flash, render, require_admin
from store import AuditChainCheck, AuditEntry, AuditFilter, ChainHead, ProtectedUser, Store

routes = web.RouteTableDef()

PAGE_SIZE = 50
EXPORT_BATCH = 1000
# Suggestions for the filter inputs (any value may be typed).
KNOWN_OUTCOMES = ("ok", "failed", "refused", "verified", "not_verified", "locked", "confirmed", "denied", "sent",
                  "started", "expired", "cancelled")
KNOWN_ACTIONS = ("verification.requested", "verification.started", "verification.decided", "verification.refused",
                 "verification.locked", "verification.closed", "password_reset", "out_of_band.asked",
                 "out_of_band.answered", "bot.tenant_refused", "entra.connect", "entra.consent_started",
                 "entra.check", "entra.disconnect", "console.sign_in", "console.sign_out", "console.request_refused",
                 "policy.change", "directory.sync_requested", "directory.sync", "audit.export", "audit.verify",
                 "audit.head", "graph.sources_unavailable", "protected_user.excluded", "protected_user.included")
TEAMS_ACTOR = "teams:"  # how the bot names an agent: teams:<their Entra object id>


FULL_CHECK_EVERY_S = 60.0
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ChainView:
    """What the page says about the chain: the check, the head now, and when it was last checked from the start."""

    check: AuditChainCheck
    head: ChainHead
    from_start_at: datetime


class ChainWatch:
    """The console's checks of the chain (see the module doc). Per process: each instance checks for itself."""

    def __init__(self) -> None:
        self.checkpoint: ChainHead | None = None  # where the last passing check ended
        self.full_at = 0.0  # monotonic() of the last check from the start
        self.full_at_utc = datetime.now(UTC)

    async def view(self, store: Store, *, from_start: bool = False) -> ChainView:
        stale = self.checkpoint is None or monotonic() - self.full_at >= FULL_CHECK_EVERY_S
        if from_start or stale:
            check = await store.audit.verify_chain()
            self.full_at, self.full_at_utc = monotonic(), datetime.now(UTC)
        else:
            check = await store.audit.verify_chain(since=self.checkpoint)
        # A failed check keeps failing (from the start) until the log verifies again.
        self.checkpoint = check.head if check.ok else None
        return ChainView(check, await store.audit.head(), self.full_at_utc)


CHAIN = web.AppKey("admin_audit_chain", ChainWatch)


def setup(app: web.Application) -> None:
    app[CHAIN] = ChainWatch()
    audit_head.setup(app)


@routes.get("/admin/audit")
@require_admin
async def audit_page(request: web.Request) -> web.Response:
    return await _page(request, await request.app[CHAIN].view(request.app[STORE]))


@routes.post("/admin/audit/verify")
@require_admin
async def verify(request: web.Request) -> web.Response:
    """Check the chain from the start now; with a head kept elsewhere (seq and hash), check the log still holds it."""
    store = request.app[STORE]
    form = await request.post()
    kept, problem = _kept_head(str(form.get("seq", "")).strip(), str(form.get("hash", "")).strip().lower())
    if problem:
        flash(request, problem)
        return await _page(request, await request.app[CHAIN].view(store, from_start=True))
    view = await request.app[CHAIN].view(store, from_start=True)
    if kept is not None and view.check.ok:
        view = replace(view, check=await store.audit.verify_against(kept))
    await audit(request, "audit.verify", "ok" if view.check.ok else "failed",
                details={"from_start": True, "entries": view.check.rows_checked,
                         **({"kept_seq": kept.seq} if kept else {}),
                         **({} if view.check.ok else {"first_broken_seq": view.check.first_broken_seq,
                                                     "reason": str(view.check.reason)})})
    if kept is not None and view.check.ok:
        flash(request, f"The log still holds the head you kept (#{kept.seq}), and verifies from the start.")
    return await _page(request, view)


@routes.get("/admin/audit/head.json")
@require_admin
async def head_json(request: web.Request) -> web.Response:
    """The head to keep elsewhere (a password manager, a ticket, another system): it proves what the log held."""
    head = await request.app[STORE].audit.head()
    await audit(request, "audit.head", "exported", details={"seq": head.seq, "hash": head.hash})
    stamp = datetime.now(UTC)
    return web.json_response({"seq": head.seq, "hash": head.hash, "time": stamp.isoformat()}, headers={
        "Content-Disposition": f'attachment; filename="watchword-audit-head-{stamp:%Y%m%d-%H%M%S}.json"'})


async def _page(request: web.Request, view: ChainView) -> web.Response:
    filters = parse_filters(request.query)
    before = _int(request.query.get("before"))
    store = request.app[STORE]
    page = await store.audit.query(await _resolved(request, filters), limit=PAGE_SIZE, before_seq=before)
    chain = view.check
    broken = await _row(store, chain.first_broken_seq) if not chain.ok and chain.first_broken_seq else None
    query = filters.query()
    return render(
        request, "audit.html", active="audit", filters=filters, entries=await _views(store, page.entries),
        chain=chain, head=view.head, from_start_at=view.from_start_at, broken=broken,
        known_outcomes=KNOWN_OUTCOMES, known_actions=KNOWN_ACTIONS,
        older_url=f"/admin/audit?{urlencode({**query, 'before': page.next_before_seq})}"
        if page.next_before_seq else None,
        newest_url=f"/admin/audit?{urlencode(query)}" if before else None,
        csv_url=f"/admin/audit/export.csv?{urlencode(query)}", json_url=f"/admin/audit/export.json?{urlencode(query)}",
        filter_url=lambda **extra: "/admin/audit?" + urlencode({**query, **extra}))


@routes.get("/admin/audit/export.csv")
@require_admin
async def export_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "csv")


@routes.get("/admin/audit/export.json")
@require_admin
async def export_json(request: web.Request) -> web.StreamResponse:
    return await _export(request, "json")


# --- helpers ---------------------------------------------------------------------------------------------
async def _export(request: web.Request, kind: str) -> web.StreamResponse:
    filters = parse_filters(request.query)
    where = await _resolved(request, filters)
    store = request.app[STORE]
    # A snapshot: rows up to the head as it is now (not the export's own entry, nor later ones).
    head = await store.audit.head()
    # The export is itself worth knowing about: who took a copy of the log, and of what.
    await audit(request, "audit.export", "ok", details={"format": kind, "filters": filters.query()})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if kind == "csv" else "application/json; charset=utf-8",
        "Content-Disposition": f'attachment; filename="watchword-audit-{stamp}.{kind}"',
    })
    await response.prepare(request)
    people = _People(store)
    if kind == "csv":
        await response.write(("\ufeff" + csv_header()).encode())  # the BOM: Excel then reads UTF-8
        async for batch in _batches(store, where, head.seq):
            await response.write(csv_rows(batch, await people.names(batch)).encode())
    else:
        await response.write(b"[")
        first = True
        async for batch in _batches(store, where, head.seq):
            names = await people.names(batch)
            for entry in batch:
                text = json.dumps(entry_json(entry, names), ensure_ascii=False, sort_keys=True)
                await response.write((b"\n" if first else b",\n") + text.encode())
                first = False
        await response.write(b"\n]\n")
    await response.write_eof()
    return response


async def _batches(store: Store, where: AuditFilter, last_seq: int) -> AsyncIterator[tuple[AuditEntry, ...]]:
    """Every matching entry up to `last_seq`, newest first, a batch at a time (never the whole log in memory)."""
    before: int | None = last_seq + 1
    while True:
        page = await store.audit.query(where, limit=EXPORT_BATCH, before_seq=before)
        if page.entries:
            yield page.entries
        if page.next_before_seq is None:
            return
        before = page.next_before_seq


async def _row(store: Store, seq: int) -> AuditEntry | None:
    page = await store.audit.query(None, limit=1, before_seq=seq + 1)
    return page.entries[0] if page.entries and page.entries[0].seq == seq else None


async def _resolved(request: web.Request, filters: Filters) -> AuditFilter:
    """The filters, with a person (or agent) typed as a UPN or an object id matching every spelling the log
    uses for them: the console writes UPNs, the bot object ids (agents as teams:<id>)."""
    tenant = await connected_tenant(request)
    if tenant is None:
        return filters.where
    users = request.app[STORE].protected_users
    where = filters.where
    subject = await _aliases(users, tenant.tenant_id, filters.values["subject"])
    actor = await _aliases(users, tenant.tenant_id, filters.values["actor"], agent=True)
    return replace(where, subject=subject or where.subject, actor=actor or where.actor)


async def _aliases(users: Any, tenant_id: str, text: str, *, agent: bool = False) -> tuple[str, ...] | None:
    text = text.removeprefix(TEAMS_ACTOR) if agent else text
    if not text:
        return None
    try:
        user = await users.get(tenant_id, str(uuid.UUID(text)))
    except ValueError:
        user = await users.find_by_upn(tenant_id, text) if "@" in text else None
    if user is None:
        return None
    names = [text, user.upn, user.user_id] + ([TEAMS_ACTOR + user.user_id] if agent else [])
    return tuple(dict.fromkeys(names))


class _People:
    """Who the log's ids are, from the directory sync: the bot records object ids (agents as teams:<id>), the
    console UPNs. Looked up once each per page or export."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[tuple[str, str], ProtectedUser | None] = {}

    async def person(self, tenant_id: str | None, value: str | None) -> ProtectedUser | None:
        if not tenant_id or not value:
            return None
        key = value.removeprefix(TEAMS_ACTOR)
        if (tenant_id, key) not in self._known:
            self._known[(tenant_id, key)] = await self._lookup(tenant_id, key)
        return self._known[(tenant_id, key)]

    async def _lookup(self, tenant_id: str, key: str) -> ProtectedUser | None:
        users = self._store.protected_users
        try:
            return await users.get(tenant_id, str(uuid.UUID(key)))
        except ValueError:  # not an object id: a UPN, or a word such as "anonymous"
            return await users.find_by_upn(tenant_id, key) if "@" in key and len(key) <= 256 else None

    async def names(self, entries: tuple[AuditEntry, ...]) -> dict[str, str]:
        """Raw actor/subject value -> display name, for those the sync knows."""
        found: dict[str, str] = {}
        for entry in entries:
            for value in (entry.actor, entry.subject):
                user = await self.person(entry.tenant_id, value)
                if value and user is not None and user.display_name:
                    found[value] = user.display_name
        return found


async def _views(store: Store, entries: tuple[AuditEntry, ...]) -> list[dict[str, object]]:
    """Each entry with its details as lines, and who/whom named when the directory sync knows them."""
    people = _People(store)
    return [{"entry": e, "details": details_text(e.details), "who": await people.person(e.tenant_id, e.actor),
             "whom": await people.person(e.tenant_id, e.subject)} for e in entries]


MAX_SEQ = 2**63 - 1  # a BIGINT: a larger number is no row of ours, and SQLite cannot even bind it


def _kept_head(seq: str, digest: str) -> tuple[ChainHead | None, str | None]:
    """The head an admin kept, from the form: (None, None) when none was given, else it or what is wrong."""
    if not seq and not digest:
        return None, None
    number = _int(seq)
    if number is None or not _HASH.fullmatch(digest):
        return None, ("That is not a head Watchword exported: give the entry number (seq) and its 64-character "
                      "hash from head.json. The log was checked from the start without it.")
    return ChainHead(seq=number, hash=digest), None


def _int(value: str | None) -> int | None:
    """A positive row number from the URL, or None (the newest page) for anything else."""
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_SEQ else None

