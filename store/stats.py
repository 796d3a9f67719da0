"""What the console's home shows at a glance: a tenant's last days of verifications, resets, lockouts and Graph
sources that could not be read, read from the sessions table and the audit log (never written here).

Rows are grouped by day in Python, not SQL: day functions differ between SQLite and PostgreSQL, and a tenant's
30 days are thousands of small rows, not millions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store._sql import normalise_guid
from store.tables import AuditRow, VerificationSessionRow
from verification.clock import Clock, utc_now

RESET_DONE = ("password_reset", "success")
LOCKED = ("verification.locked", "locked")
SOURCES_UNAVAILABLE = "graph.sources_unavailable"  # one row per verification whose Graph reads came back partial
OPEN = "in_progress"


@dataclass(frozen=True)
class Glance:
    """A tenant's last `days` days, oldest day first in every per-day list."""

    days: tuple[date, ...]
    outcomes: dict[str, int]  # verification outcome -> count (open ones as "in_progress")
    verifications_per_day: tuple[int, ...]
    resets_per_day: tuple[int, ...]
    lockouts_per_day: tuple[int, ...]
    median_seconds_to_verify: float | None  # start to "Verified"; None when nobody was verified
    unavailable_sources: dict[str, int] = field(default_factory=dict)  # source -> verifications without it

    @property
    def verifications(self) -> int:
        return sum(self.outcomes.values())


class StatsRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    async def glance(self, tenant_id: str, days: int = 30) -> Glance:
        tenant = normalise_guid(tenant_id, "tenant_id")
        today = self._clock().date()
        span = tuple(today - timedelta(days=n) for n in range(days - 1, -1, -1))
        since = datetime.combine(span[0], datetime.min.time(), tzinfo=self._clock().tzinfo)
        async with self._sessions() as session:
            verifications = (await session.execute(
                select(VerificationSessionRow.created_at, VerificationSessionRow.ended_at,
                       VerificationSessionRow.outcome)
                .where(VerificationSessionRow.tenant_id == tenant, VerificationSessionRow.created_at >= since))).all()
            audited = (await session.execute(
                select(AuditRow.time, AuditRow.action, AuditRow.outcome, AuditRow.details)
                .where(AuditRow.tenant_id == tenant, AuditRow.time >= since,
                       AuditRow.action.in_((RESET_DONE[0], LOCKED[0], SOURCES_UNAVAILABLE))))).all()
        index = {day: i for i, day in enumerate(span)}

        def per_day(moments: list[datetime]) -> tuple[int, ...]:
            counts = [0] * len(span)
            for moment in moments:
                if (i := index.get(moment.date())) is not None:
                    counts[i] += 1
            return tuple(counts)

        verified = [(ended - created).total_seconds() for created, ended, outcome in verifications
                    if outcome == "verified" and ended is not None and ended >= created]
        unavailable: Counter[str] = Counter()
        for _, action, _, details in audited:
            if action == SOURCES_UNAVAILABLE and isinstance(details, dict):
                unavailable.update(str(s) for s in details.get("sources", []) if isinstance(s, str))
        return Glance(
            days=span,
            outcomes=dict(Counter(outcome or OPEN for _, _, outcome in verifications).most_common()),
            verifications_per_day=per_day([created for created, _, _ in verifications]),
            resets_per_day=per_day([t for t, action, outcome, _ in audited if (action, outcome) == RESET_DONE]),
            lockouts_per_day=per_day([t for t, action, outcome, _ in audited if (action, outcome) == LOCKED]),
            median_seconds_to_verify=median(verified) if verified else None,
            unavailable_sources=dict(unavailable.most_common()))

    async def open_verifications(self) -> int:
        """Verifications in progress and not yet expired, in every tenant (the metrics' gauge)."""
        async with self._sessions() as session:
            return int(await session.scalar(
                select(func.count()).select_from(VerificationSessionRow)
                .where(VerificationSessionRow.outcome == OPEN, VerificationSessionRow.expires_at > self._clock())) or 0)
