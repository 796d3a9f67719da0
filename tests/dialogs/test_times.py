"""Times shown to people are in their own time zone, as Teams reports it, and always say which zone."""

from __future__ import annotations

from datetime import UTC, datetime

from microsoft_agents.activity import Activity

from dialogs.times import clock_time, date_and_time, zone_of

AT = datetime(2026, 12, 6, 13, 5, tzinfo=UTC)


def _activity(**fields: object) -> Activity:
    return Activity.model_validate({"type": "message", **fields})


def test_the_local_timezone_teams_sends_is_used() -> None:
    assert clock_time(AT, zone_of(_activity(localTimezone="Europe/Paris"))) == "14:05 CET"


def test_the_client_info_entity_is_used_when_there_is_no_local_timezone() -> None:
    activity = _activity(entities=[{"type": "clientInfo", "locale": "en-US", "timezone": "America/New_York"}])
    assert clock_time(AT, zone_of(activity)) == "08:05 EST"


def test_an_unknown_or_hostile_zone_falls_back_to_utc_and_says_so() -> None:
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "x" * 500):
        assert clock_time(AT, zone_of(_activity(localTimezone=bad))) == "13:05 UTC"
    assert clock_time(AT, zone_of(None)) == "13:05 UTC"


def test_a_date_reads_as_people_write_it() -> None:
    assert date_and_time(AT, zone_of(_activity(localTimezone="Australia/Sydney"))) == "00:05 AEDT on 7 Dec 2026"
