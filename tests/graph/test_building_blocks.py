"""The small pieces under the Graph layer: safe query text, the reports window, caches, Graph's JSON."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpcore
import httpx
import pytest

from graph import mapping
from graph.batch import POOL_BUSY, BatchItem, Deadline, send_batch
from graph.client import build_http_client
from graph.context_loader import SIGN_IN_CACHE_BYTES, ContextLoader, _cause_of_item, sign_ins_bytes
from graph.directory import GraphUnavailable, Unavailability
from graph.limits import SlidingWindowLimiter, TtlCache
from graph.tokens import TOKEN_REUSE_MARGIN_S, TokenSource
from graph.urls import odata_string, relative_link, relative_url
from settings import Settings
from tests.devtenant.helpers import ThreadedDevTenant
from verification.context import GroupKind, Party, SignIn, SignInDigest


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_text_cannot_leave_its_odata_literal() -> None:
    assert odata_string("O'Brien") == "'O''Brien'"
    url = relative_url("/users", {"$filter": f"department eq {odata_string('R&D + Ops #1')}"})
    assert "R%26D%20%2B%20Ops%20%231" in url  # nothing in the text can start another option
    assert dict(parse_qsl(url.split("?", 1)[1])) == {"$filter": "department eq 'R&D + Ops #1'"}


def test_next_links_are_followed_verbatim_below_the_version() -> None:
    base = "https://graph.example/v1.0"
    assert relative_link(base, f"{base}/users?$skiptoken=abc") == "/users?$skiptoken=abc"
    assert relative_link(base, "https://other.example/v1.0/users/delta?$deltatoken=x") == "/users/delta?$deltatoken=x"


def test_the_reports_window_admits_five_requests_per_window() -> None:
    clock = FakeClock()
    window = SlidingWindowLimiter(clock=clock)
    assert [window.try_acquire("t") for _ in range(5)] == [0.0] * 5
    wait = window.try_acquire("t")
    assert wait > 10  # the window is a little longer than Graph's 10 s
    assert window.try_acquire("other tenant") == 0.0
    clock.now += wait
    assert window.try_acquire("t") == 0.0


def test_a_429s_retry_after_holds_the_reports_window_whatever_our_own_count() -> None:
    clock = FakeClock()
    window = SlidingWindowLimiter(clock=clock)
    assert window.try_acquire("t") == 0.0  # one of five used here; another instance spent the rest at Graph
    window.hold("t", 7.0)
    assert window.try_acquire("t") == 7.0 and window.try_acquire("other tenant") == 0.0
    window.hold("t", 2.0)  # a shorter Retry-After later does not shorten the hold
    clock.now += 6.5
    assert window.try_acquire("t") == 0.5
    clock.now += 0.5
    assert window.try_acquire("t") == 0.0


def test_cached_entries_expire() -> None:
    clock = FakeClock()
    cache: TtlCache[int] = TtlCache(60, clock=clock)
    cache.put("k", 1)
    clock.now += 59
    assert cache.get("k") == 1 and cache.age("k") == 59
    clock.now += 2
    assert cache.get("k") is None and cache.age("k") is None


def test_graphs_json_maps_to_the_context() -> None:
    event = {"id": "e1", "subject": "Sync", "start": {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"},
             "end": {"dateTime": "2026-11-24T11:30:00.0000000", "timeZone": "Europe/London"},
             "organizer": {"emailAddress": {"name": "Grace Hopper", "address": "grace@tiny.example"}},
             "attendees": [{"type": "resource", "status": {"response": "accepted"},
                            "emailAddress": {"name": "Room 1", "address": "room1@tiny.example"}},
                           {"type": "required", "status": {"response": "tentativelyAccepted"},
                            "emailAddress": {"name": "Alan Turing", "address": "alan@tiny.example"}}],
             "sensitivity": "private", "isCancelled": False, "responseStatus": {"response": "accepted"}}
    m = mapping.meeting(event, lambda name, address: Party(name or "", address))
    assert m is not None and m.start.hour == 10 and m.end.hour == 11  # London is UTC in November
    assert [a.type for a in m.attendees] == ["resource", "required"]
    assert mapping.meeting_addresses(event) == ["grace@tiny.example", "alan@tiny.example"]
    assert mapping.group_kind({"groupTypes": [], "mailEnabled": True, "securityEnabled": True}) \
        is GroupKind.MAIL_ENABLED_SECURITY
    assert mapping.count_value("42") == 42 and mapping.count_value("NDI=") == 42
    sign_in = mapping.sign_in({"createdDateTime": "2026-11-25T12:00:00.1234567Z", "status": {"errorCode": 50126},
                               "location": {"countryOrRegion": "NG", "geoCoordinates": {"latitude": 6.5}}})
    assert sign_in is not None and not sign_in.succeeded and sign_in.country_code == "NG"
    assert sign_in.latitude == 6.5 and sign_in.longitude is None


async def test_no_free_connection_in_our_own_pool_is_watchwords_load_not_graphs() -> None:
    """A $batch that never left because every connection of the shared client was busy: its items are retried
    like Graph's 503s and, should the profile still fail, the cause is BUSY (the agent hears "busy, try again"),
    never a Graph outage."""

    def pool_exhausted(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free", request=request)

    class Token:
        async def get_authorization_token(self, uri: str, additional_authentication_context: object = None) -> str:
            return "token"

    async with httpx.AsyncClient(transport=httpx.MockTransport(pool_exhausted)) as http:
        results = await send_batch(http, "https://graph.example/v1.0", Token(),  # type: ignore[arg-type]
                                   [BatchItem("profile", "/users/u")], Deadline.after(0.5))
    [result] = results.values()
    assert result.status == 503 and result.error_code == POOL_BUSY
    assert _cause_of_item(result) is Unavailability.BUSY
    assert GraphUnavailable("profile: Watchword busy", Unavailability.BUSY).outage


async def test_a_graph_connection_idle_for_half_a_minute_is_reused_not_opened_again(
        tiny: ThreadedDevTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helpdesk verifies a caller every minute or so: a new TCP and TLS connection would add round trips to Graph
    before the first question (httpx drops idle connections after 5 s by default)."""
    settings = Settings().with_devtenant(tiny.ready)
    http = build_http_client(settings.ca_file)
    try:
        first = await http.get(f"{settings.graph_url}/users")
        later = time.monotonic() + 30
        monkeypatch.setattr(httpcore._async.http11.time, "monotonic", lambda: later)
        second = await http.get(f"{settings.graph_url}/users")
    finally:
        await http.aclose()
    assert first.status_code == second.status_code == 401  # no token: the connection is what counts here
    assert second.extensions["network_stream"] is first.extensions["network_stream"]


async def test_a_token_is_reused_from_memory_until_minutes_before_it_expires(
        tiny: ThreadedDevTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every $batch asks for a token: msal's own cache is behind a worker thread, a hop that waits for a CPU on a busy
    machine before the first question's request can leave."""
    settings = Settings().with_devtenant(tiny.ready)
    moment = [0.0]
    source = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file,
                         monotonic=lambda: moment[0])
    asked: list[bool] = []
    acquire = source._acquire
    monkeypatch.setattr(source, "_acquire", lambda tenant, fresh=False: asked.append(fresh) or acquire(tenant, fresh))
    tenant = tiny.ready["tenant_id"]
    try:
        first = await source.token(tenant)
        assert await source.token(tenant) is first and asked == [False]
        moment[0] += first.expires_in - TOKEN_REUSE_MARGIN_S + 1  # close to expiry: msal is asked again
        await source.token(tenant)
        assert asked == [False, False]
        await source.token(tenant, fresh=True)  # after consent: never the held one
        assert asked == [False, False, True]
    finally:
        source.close()


def test_a_cache_bounded_by_bytes_lets_the_least_recent_go_and_keeps_nothing_too_big() -> None:
    """Values whose size varies (one person's sign-ins: ten, or a robot's thousand) are bounded by their bytes."""
    clock = FakeClock()
    cache: TtlCache[tuple[int, ...]] = TtlCache(60, clock=clock, max_bytes=1000, sizeof=lambda v: 100 * len(v))
    cache.put("a", (1,) * 4)
    cache.put("b", (2,) * 4)
    assert cache.size == 800
    cache.get("a")  # used: b is now the least recent
    cache.put("c", (3,) * 4)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.size <= 1000
    cache.put("a", (1,) * 11)  # alone over the budget: not kept, and the older value is gone too
    assert cache.get("a") is None and cache.size <= 1000


def test_cached_sign_ins_are_bounded_by_bytes_not_people() -> None:
    loader = ContextLoader(tokens=None, http=None, graph_url="https://graph.example", clock=None)  # type: ignore[arg-type]
    robot = SignInDigest.of(SignIn(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i), f"10.0.{i % 7}.1")
                            for i in range(1000))
    for n in range(SIGN_IN_CACHE_BYTES // sign_ins_bytes(robot) + 20):
        loader.sign_ins.put(("t", f"robot-{n}"), robot)
    assert loader.sign_ins.size <= SIGN_IN_CACHE_BYTES
    assert loader.sign_ins.get(("t", "robot-0")) is None and loader.sign_ins.get(("t", f"robot-{n}")) == robot


def _graph_sign_ins(count: int, places: int) -> list[dict[str, object]]:
    """A month of one person's sign-ins as Graph answers them: a few places and devices, now and then a typo."""
    return [json.loads(json.dumps({
        "createdDateTime": f"2026-11-{1 + i % 28:02d}T{8 + i % 10:02d}:{i % 60:02d}:{(7 * i) % 60:02d}Z",
        "ipAddress": f"81.2.{i % places}.160", "riskLevelDuringSignIn": "none", "riskState": "none",
        "location": {"city": ("London", "Leeds", "Paris")[i % places % 3], "countryOrRegion": "GB",
                     "geoCoordinates": {"latitude": 51.5 + i % places, "longitude": -0.12}},
        "deviceDetail": {"operatingSystem": ("Windows 11", "iOS 17")[i % 2], "browser": ("Edge 120", "Mobile")[i % 2],
                         "isCompliant": True, "isManaged": i % 2 == 0},
        "status": {"errorCode": 50126 if i % 40 == 0 else 0}})) for i in range(count)]


@pytest.mark.parametrize(("count", "places"), [(80, 3), (1000, 3), (1000, 40)])
def test_what_a_person_s_cached_sign_ins_hold_is_no_more_than_the_cache_counts(count: int, places: int) -> None:
    """The cache's bound is in bytes it estimates (sign_ins_bytes): the estimate is at least what the entry holds,
    as tracemalloc measures it, for a person, a robot, and a robot on the move; and a person's is a fraction of
    what their mapped sign-ins held (3.7 KB instead of 17 KB for 80; 14 KB instead of 208 KB for a robot's 1000)."""
    loader = ContextLoader(tokens=None, http=None, graph_url="https://graph.example", clock=None)  # type: ignore[arg-type]
    answers = _graph_sign_ins(count, places)
    # What the entry holds is what leaves with it. Measured as a difference, so what a mapping grows for good in the
    # process does not count: CI's full run once saw 265 KB, CPython's table of interned strings resizing when the
    # first "Paris" was interned, however many sign-ins were mapped before.
    tracemalloc.start()
    try:
        mapped = tuple(s for s in map(mapping.sign_in, answers) if s)
        as_mapped = tracemalloc.get_traced_memory()[0]
        loader.sign_ins.put(("tenant", "person"), SignInDigest.of(mapped))
        del mapped
        with_entry = tracemalloc.get_traced_memory()[0]
        digest = loader.sign_ins.get(("tenant", "person"))
        assert digest is not None and len(digest) == count
        estimate, counted = sign_ins_bytes(digest), loader.sign_ins.size
        del digest
        loader.sign_ins.forget(("tenant", "person"))
        held = with_entry - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held <= estimate == counted
    if places == 3:
        assert estimate * 4 < as_mapped


def test_sign_ins_share_their_places_and_devices() -> None:
    """A person's sign-ins repeat a few places and devices, and are cached for minutes: each such string is held
    once, however many sign-ins name it."""
    def entry(ip: str) -> dict[str, object]:  # decoded anew each time, as each answer from Graph is
        return json.loads(json.dumps({
            "createdDateTime": "2026-11-20T08:10:00Z", "ipAddress": ip,
            "location": {"city": "London", "countryOrRegion": "GB"},
            "deviceDetail": {"operatingSystem": "Windows 11", "browser": "Edge 120"},
            "status": {"errorCode": 50126, "failureReason": "Invalid username or password."}}))

    first, second = mapping.sign_in(entry("81.2.69.1")), mapping.sign_in(entry("81.2.69.2"))
    assert first is not None and second is not None and first.ip != second.ip
    assert first.city is second.city and first.os is second.os and first.browser is second.browser
    assert first.failure_reason is second.failure_reason and first.country_code is second.country_code


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25T12:00:00Z", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),
    ("2026-11-25T12:00:00.1234567Z", datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)),  # 7 digits: truncated
    ("2026-11-25T13:00:00+01:00", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),
    ("2026-11-25T12:00:00.0000000", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),  # no offset: UTC
    (" 2026-11-25T12:00:00z ", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),  # the slow path's forms still read
    ("not a time", None), ("", None), (None, None),
])
def test_graphs_timestamps_read_as_aware_utc(text: object, expected: datetime | None) -> None:
    assert mapping.timestamp(text) == expected
