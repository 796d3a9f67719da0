"""Times as the person reading them would say them: in their own time zone, not UTC.

Teams tells the bot the sender's time zone with every message: the activity's `localTimezone` and the
`clientInfo` entity's `timezone` (IANA names such as "Europe/London"). Where neither is there (a proactive
message to someone who has not written, a client that does not send it) the time is given in UTC and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import Activity

MAX_ZONE_NAME = 64  # the longest IANA names are about 30 characters: anything longer is not one


def zone_of(activity: Activity | None) -> tzinfo | None:
    """The sender's time zone from the activity, or None when it names none we know."""
    if activity is None:
        return None
    names = [activity.local_timezone]
    names += [getattr(e, "timezone", None) for e in activity.entities or [] if e.type == "clientInfo"]
    for name in names:
        if isinstance(name, str) and 0 < len(name) <= MAX_ZONE_NAME:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):  # unknown or malformed: try the next, else UTC
                continue
    return None


def clock_time(at: datetime, zone: tzinfo | None) -> str:
    """"14:05 CET" in `zone`, or "13:05 UTC" without one: always with the zone, so nobody guesses."""
    local = at.astimezone(zone or UTC)
    label = local.tzname() or "UTC"
    return f"{local:%H:%M} {label}"


def date_and_time(at: datetime, zone: tzinfo | None) -> str:
    """"14:05 CET on 6 Dec 2026" in `zone` (UTC without one)."""
    local = at.astimezone(zone or UTC)
    return f"{clock_time(at, zone)} on {local.day} {local:%b %Y}"
