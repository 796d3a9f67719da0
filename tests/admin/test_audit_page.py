"""The Audit page: who, whom, when, outcome and reasons; filters and paging; CSV/JSON exports; the chain's state."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from unittest.mock import ANY

import pytest

from admin import audit as admin_audit
from admin.audit_view import csv_cell, parse_filters
from admin.context import STORE
from store import AuditFilter, UserSnapshot, open_store
from tests.admin.support import build_app, csrf_of, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory
from tests.store.sql import execute, tamper
from tests.store.support import FakeClock

TENANT = "11111111-1111-4111-8111-111111111111"
AGENT = "margaret.hamilton@tiny.example"
ALAN_ID = "aaaaaaaa-0000-4000-8000-000000000003"
MARGARET_ID = "aaaaaaaa-0000-4000-8000-000000000005"
DAY1 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DAY3 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


async def write_log(url: str) -> None:
    """A few days of events, written before the app starts (so their times are known)."""
    clock = FakeClock(DAY1)
    store = await open_store(url, clock=clock)
    try:
        await store.tenants.connect(TENANT, display_name="Tiny", granted_permissions=[])
        await store.protected_users.begin_sync(TENANT)
        await store.protected_users.apply_sync_page(TENANT, delta_link="https://graph/d", upserts=[
            UserSnapshot(ALAN_ID, "alan.turing@tiny.example", "Alan Turing"),
            UserSnapshot(MARGARET_ID, AGENT, "Margaret Hamilton")])
        append = store.audit.append
        await append(action="console.sign_in", outcome="ok", actor="ada.lovelace@tiny.example",
                     details={"via": "group"})
        await append(action="verification.decision", outcome="verified", actor=AGENT,
                     subject="alan.turing@tiny.example", tenant_id=TENANT,
                     details={"earned_bits": 23.5, "required_bits": 20, "questions": 4})
        clock.now = DAY2
        await append(action="password.reset", outcome="ok", actor=AGENT, subject="alan.turing@tiny.example",
                     tenant_id=TENANT, details={"temporary": True, "change_at_next_sign_in": True})
        await append(action="verification.decision", outcome="refused", actor=AGENT,
                     subject="ada.lovelace@tiny.example", tenant_id=TENANT, details={"reason": "privileged_admin"})
        clock.now = DAY3
        await append(action="verification.decision", outcome="denied", actor="=HYPERLINK(\"http://x\")",
                     subject="-grace@tiny.example", tenant_id=TENANT,
                     details={"reason": "@SUM(1+1)", "wrong": 2})
        # The bot names people by object id, and agents as teams:<id>.
        await append(action="verification.decided", outcome="verified", actor=f"teams:{MARGARET_ID}",
                     subject=ALAN_ID, tenant_id=TENANT, details={"bits_earned": 21.0})
        await append(action="password_reset", outcome="ok", actor=f"teams:{MARGARET_ID}", subject=ALAN_ID,
                     tenant_id=TENANT)
    finally:
        await store.close()


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    settings = settings_for(tmp_path)
    await write_log(settings.database_url)
    app = build_app(settings, directory=FakeDirectory())
    client = await aiohttp_client(app)
    sign_in_as(client)
    return client


def seqs(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="entry-(\d+)"', html)]


async def page(client, **params: str) -> str:
    response = await client.get("/admin/audit", params=params)
    assert response.status == 200
    return await response.text()


# --- the page -------------------------------------------------------------------------------------------
async def test_page_shows_who_whom_when_outcome_and_reasons_newest_first(client):
    html = await page(client)

    assert seqs(html) == [7, 6, 5, 4, 3, 2, 1]
    row = html.split('<tr id="entry-4">', 1)[1].split("</tr>", 1)[0]
    assert "2026-11-25 09:00:00" in row and "verification.decision" in row and AGENT in row
    assert "ada.lovelace@tiny.example" in row and "refused" in row and "privileged_admin" in row
    assert "The log verifies: each of its 7 entries" in html


async def test_people_the_bot_names_by_id_are_shown_by_name(client):
    html = await page(client)

    row = html.split('<tr id="entry-6">', 1)[1].split("</tr>", 1)[0]
    assert "Margaret Hamilton" in row and "Alan Turing" in row and "alan.turing@tiny.example" in row


async def test_filters_by_person_agent_outcome_and_time(client):
    # A person typed by UPN or object id finds entries under either spelling (console: UPN; bot: id).
    assert seqs(await page(client, subject="alan.turing@tiny.example")) == [7, 6, 3, 2]
    assert seqs(await page(client, subject=ALAN_ID)) == [7, 6, 3, 2]
    assert seqs(await page(client, actor=AGENT)) == [7, 6, 4, 3, 2]
    assert seqs(await page(client, outcome="refused")) == [4]
    assert seqs(await page(client, action="verification.decision", actor=AGENT)) == [4, 2]
    assert seqs(await page(client, since="2026-11-25", until="2026-11-25")) == [4, 3]  # that whole day
    assert seqs(await page(client, since="2026-11-25T09:00")) == [7, 6, 5, 4, 3]
    assert seqs(await page(client, subject="nobody@tiny.example")) == []


async def test_a_malformed_date_is_ignored_and_said_so(client):
    html = await page(client, since="yesterday")

    assert seqs(html) == [7, 6, 5, 4, 3, 2, 1] and "“yesterday” is not a date" in html


async def test_pages_go_back_in_time(client, monkeypatch):
    monkeypatch.setattr("admin.audit.PAGE_SIZE", 2)

    pages = [await page(client, actor=AGENT)]
    while older := re.search(r'href="([^"]+)" rel="next"', pages[-1]):
        pages.append(await (await client.get(older.group(1).replace("&amp;", "&"))).text())

    assert [seqs(p) for p in pages] == [[7, 6], [4, 3], [2]]
    assert 'rel="first"' in pages[-1] and 'rel="first"' not in pages[0]


async def test_a_tampered_log_is_flagged_at_the_first_broken_row(client):
    await tamper(client.server.app[STORE], "UPDATE audit_log SET outcome = 'ok' WHERE seq = 4")

    html = await page(client)

    assert "The log does not verify." in html
    assert "The first broken entry is\n  <strong>#4</strong>" in html
    assert "3 entries before it verify." in html
    assert "Entry #4: 2026-11-25 09:00:00 UTC, verification.decision by margaret.hamilton@tiny.example" in html
    assert '<tr id="entry-4" class="broken-row">' in html


# --- exports --------------------------------------------------------------------------------------------
async def test_csv_export_has_the_filtered_rows_and_defuses_formulas(client):
    response = await client.get("/admin/audit/export.csv", params={"tenant": "x", "since": "2026-11-25"})

    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert re.match(r'attachment; filename="watchword-audit-\d{8}-\d{6}\.csv"', response.headers["Content-Disposition"])
    text = (await response.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["seq"] for r in rows] == ["7", "6", "5", "4", "3"]
    newest = rows[2]
    assert newest["actor"] == "'=HYPERLINK(\"http://x\")" and newest["subject"] == "'-grace@tiny.example"
    assert json.loads(newest["details"]) == {"reason": "@SUM(1+1)", "wrong": 2}  # inside JSON: starts with {
    assert rows[4]["action"] == "password.reset" and len(rows[4]["hash"]) == 64


async def test_json_export_matches_the_page_filters_and_is_itself_audited(client):
    response = await client.get("/admin/audit/export.json", params={"outcome": "verified"})

    body = json.loads(await response.read())
    assert response.headers["Content-Type"].startswith("application/json")
    assert [e["seq"] for e in body] == [6, 2]
    body = body[1:]
    assert body[0]["details"] == {"earned_bits": 23.5, "questions": 4, "required_bits": 20}
    assert body[0]["time"] == "2026-11-24T09:00:00+00:00" and body[0]["subject"] == "alan.turing@tiny.example"
    log = await client.server.app[STORE].audit.query(AuditFilter(action="audit.export"))
    [entry] = log.entries
    assert entry.actor == "ada.lovelace@tiny.example"
    assert entry.details == {"format": "json", "filters": {"outcome": "verified"}, "correlation_id": ANY}


async def test_export_of_everything_streams_every_row(client, monkeypatch):
    monkeypatch.setattr("admin.audit.EXPORT_BATCH", 2)

    body = json.loads(await (await client.get("/admin/audit/export.json")).read())

    assert [e["seq"] for e in body] == [7, 6, 5, 4, 3, 2, 1]


def test_csv_cells_starting_a_formula_get_an_apostrophe():
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@a", "\tx", "\rx", "a=b", "", None, 3)] == [
        "'=1+1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "a=b", "", "", "3"]


def test_filters_read_from_the_query():
    parsed = parse_filters({"subject": " alan ", "until": "2026-11-25T10:30", "since": "2026-11-26"})

    assert parsed.where.subject == "alan"
    assert parsed.where.until is None and "“To” must be after “From”." in parsed.errors["until"]


async def test_exports_name_who_and_whom_beside_the_ids_the_log_keeps(client):
    body = json.loads(await (await client.get("/admin/audit/export.json")).read())
    by_seq = {e["seq"]: e for e in body}
    assert (by_seq[7]["actor"], by_seq[7]["actor_name"]) == (f"teams:{MARGARET_ID}", "Margaret Hamilton")
    assert (by_seq[7]["subject"], by_seq[7]["subject_name"]) == (ALAN_ID, "Alan Turing")
    assert by_seq[2]["subject_name"] == "Alan Turing" and by_seq[2]["actor_name"] == "Margaret Hamilton"  # UPNs
    assert by_seq[1]["actor_name"] is None  # not in the directory sync: the id alone
    text = (await (await client.get("/admin/audit/export.csv")).read()).decode("utf-8-sig")
    rows = {r["seq"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["7"]["actor_name"] == "Margaret Hamilton" and rows["7"]["subject_name"] == "Alan Turing"


# --- the chain: checked from the start on demand and every minute, from the last checkpoint in between -------
async def test_the_page_shows_the_head_to_copy_elsewhere(client):
    head = await client.server.app[STORE].audit.head()
    html = await page(client)
    assert f"#{head.seq}" in html and head.hash in html


async def test_an_edited_middle_row_is_found_by_checking_from_the_start_now(client):
    assert "The log verifies" in await page(client)
    await tamper(client.server.app[STORE], "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")

    response = await client.post("/admin/audit/verify", data={"csrf_token": await _csrf(client)})

    assert response.status == 200
    html = await response.text()
    assert "The log does not verify." in html and "<strong>#3</strong>" in html
    assert "The log does not verify." in await page(client)  # and it stays found


async def test_an_edited_middle_row_is_found_within_a_minute_without_anyone_asking(client, monkeypatch):
    clock = FakeMonotonic()
    monkeypatch.setattr(admin_audit, "monotonic", clock)
    assert "The log verifies" in await page(client)
    await tamper(client.server.app[STORE], "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
    clock.now += admin_audit.FULL_CHECK_EVERY_S + 1

    assert "The log does not verify." in await page(client)


async def test_the_checkpoint_itself_is_checked_on_every_view(client):
    assert "The log verifies" in await page(client)
    await tamper(client.server.app[STORE], "UPDATE audit_log SET actor = 'someone' WHERE seq = 7")

    assert "The log does not verify." in await page(client)


async def test_a_head_kept_elsewhere_is_checked_against_the_log(client):
    store = client.server.app[STORE]
    head = await store.audit.head()
    response = await client.get("/admin/audit/head.json")
    assert response.status == 200
    kept = await response.json()
    assert (kept["seq"], kept["hash"]) == (head.seq, head.hash)

    ok = await client.post("/admin/audit/verify", data={"csrf_token": await _csrf(client), "seq": str(kept["seq"]),
                                                        "hash": kept["hash"]})
    assert "still holds the head you kept" in await ok.text()
    await tamper(store, "DELETE FROM audit_log WHERE seq >= :gone", gone=head.seq - 1)
    await execute(store, "UPDATE audit_chain_head SET last_seq = :last, "
                         "last_hash = (SELECT hash FROM audit_log WHERE seq = :last)", last=head.seq - 2)

    bad = await client.post("/admin/audit/verify", data={"csrf_token": await _csrf(client), "seq": str(kept["seq"]),
                                                         "hash": kept["hash"]})
    assert "The log does not verify." in await bad.text()
    checks = await store.audit.query(AuditFilter(action="audit.verify"))
    assert checks.entries[0].outcome == "failed" and checks.entries[0].details["kept_seq"] == kept["seq"]


@pytest.mark.parametrize("seq, digest", [("x", "a" * 64), ("5", "not-a-hash"), ("9" * 30, "a" * 64), ("", "")])
async def test_a_malformed_kept_head_is_said_so_not_a_500(client, seq, digest):
    response = await client.post("/admin/audit/verify", data={"csrf_token": await _csrf(client), "seq": seq,
                                                              "hash": digest})
    assert response.status in (200, 400)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _csrf(client) -> str:
    return csrf_of(await page(client))
