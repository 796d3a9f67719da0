"""The console's home: the last 30 days at a glance, charts drawn on the server with their numbers as text."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from admin.charts import bars, columns, duration_words
from store import open_store
from store.tables import VerificationSessionRow
from tests.admin.support import build_app, settings_for, sign_in_as
from tests.admin.sync_fakes import FakeDirectory
from tests.store.support import FakeClock

TENANT = "11111111-1111-4111-8111-111111111111"
PERSON = "aaaaaaaa-0000-4000-8000-000000000003"


def _session(created: datetime, outcome: str, seconds: float | None) -> VerificationSessionRow:
    return VerificationSessionRow(
        session_id=str(uuid.uuid4()), tenant_id=TENANT, target_user_id=PERSON, agent_id=None, outcome=outcome,
        required_bits=20, earned_bits=0, created_at=created, expires_at=created + timedelta(minutes=10),
        ended_at=created + timedelta(seconds=seconds) if seconds is not None else None, risk_summary={},
        policy_snapshot={})


async def _month(url: str, now: datetime) -> None:
    """A month of activity: three verified calls (60, 120, 300 s), one not verified, one from 40 days ago, a reset,
    a lockout and a verification that had to do without Teams chats."""
    clock = FakeClock(now - timedelta(days=2))
    store = await open_store(url, clock=clock)
    try:
        await store.tenants.connect(TENANT, display_name="Tiny", granted_permissions=[])
        async with store.sessionmaker.begin() as session:
            session.add_all([_session(now - timedelta(days=2), "verified", 60),
                             _session(now - timedelta(days=2), "verified", 120),
                             _session(now - timedelta(days=1), "verified", 300),
                             _session(now - timedelta(days=1), "not_verified", 200),
                             _session(now - timedelta(days=40), "verified", 5)])
        await store.audit.append(action="password_reset", outcome="success", actor="teams:x", subject=PERSON,
                                 tenant_id=TENANT)
        await store.audit.append(action="password_reset", outcome="passed_on", actor="teams:x", subject=PERSON,
                                 tenant_id=TENANT)
        clock.now = now - timedelta(days=1)
        await store.audit.append(action="verification.locked", outcome="locked", actor="teams:x", subject=PERSON,
                                 tenant_id=TENANT, details={"failed_attempts": 3})
        await store.audit.append(action="graph.sources_unavailable", outcome="partial", actor="teams:x",
                                 subject=PERSON, tenant_id=TENANT, details={"sources": ["chats", "sign_ins"]})
    finally:
        await store.close()


async def test_the_home_shows_the_month_as_charts_with_every_number_as_text(aiohttp_client, tmp_path):
    settings = settings_for(tmp_path)
    await _month(settings.database_url, datetime.now(UTC))
    client = await aiohttp_client(build_app(settings, directory=FakeDirectory()))
    sign_in_as(client, tenant_id=TENANT)
    response = await client.get("/admin/")
    html = " ".join((await response.text()).split())
    assert response.status == 200 and "The last 30 days" in html
    assert "Median time to verify</h2> <p class=\"stat-value\">2 min 0 s</p>" in html  # 60, 120, 300 s
    # The numbers as text (a screen reader's table per chart), the pictures hidden from it.
    assert '<th scope="row">Verified</th><td>3</td>' in html and '<th scope="row">Not verified</th><td>1</td>' in html
    assert '<th scope="row">Teams chats</th><td>1</td>' in html
    assert '<th scope="row">Sign-in logs</th><td>1</td>' in html
    assert "<strong>4</strong> verifications" in html and "<strong>1</strong> resets" in html
    assert "<strong>1</strong> lockouts" in html
    assert html.count('aria-hidden="true" focusable="false"') == 5
    assert len(re.findall(r'<table class="sr-only">', html)) == 5
    assert "<script" not in html.split("<main", 1)[1]  # no front-end code: the server drew it


async def test_without_a_connected_tenant_home_leads_to_connecting_one(aiohttp_client, tmp_path):
    client = await aiohttp_client(build_app(settings_for(tmp_path), directory=FakeDirectory()))
    sign_in_as(client)
    response = await client.get("/admin/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/admin/settings/integrations"


def test_columns_scale_to_the_busiest_day_and_bars_to_the_largest() -> None:
    days = tuple(datetime(2026, 12, d, tzinfo=UTC).date() for d in (1, 2, 3))
    chart = columns(days, (0, 5, 10))
    assert [c.height for c in chart.columns] == [0.0, 39.0, 78.0] and chart.total == 15 and chart.peak == 10
    assert columns(days, (0, 0, 0)).total == 0  # an empty month draws no column and divides by nothing
    drawn = bars({"verified": 4, "cancelled": 1}, {"verified": "Verified"})
    assert [(b.label, b.value) for b in drawn.bars] == [("Verified", 4), ("cancelled", 1)]
    assert drawn.bars[0].width > drawn.bars[1].width


def test_durations_read_as_people_say_them() -> None:
    assert (duration_words(None), duration_words(44.6), duration_words(125)) == (
        "no verified calls yet", "45 s", "2 min 5 s")
