"""Graph's answers read faster, into the same values: what the start's reading gave before issue 11's cuts (the
standard library's JSON decoder, event times through the zone's rules, a sign-in digest that copied every sign-in),
kept here as the reference, against what it gives now, on answers recorded from devtenant's Graph and on the forms
Graph may also send. And an answer that is not JSON at all still says so plainly."""

from __future__ import annotations

import asyncio
import json
import re
from array import array
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import pytest

from graph import mapping
from graph.batch import BatchError, BatchItem, Deadline, _envelope, send_batch
from tests.devtenant.helpers import TINY, ThreadedDevTenant
from tests.graph.support import directory_for, state
from verification.context import SignIn, SignInDigest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSET = re.compile(r"[+-]\d\d:\d\d$")


def event_time_before(d: mapping.Json) -> datetime | None:
    """graph/mapping.py's event_time before the UTC shortcut."""
    text = d.get("dateTime")
    if not isinstance(text, str) or not text:
        return None
    moment = mapping.timestamp(text)
    if moment is None:
        return None
    if text.rstrip().endswith(("Z", "z")) or _OFFSET.search(text.strip()):
        return moment
    zone_name = str(d.get("timeZone") or "UTC").strip()
    try:
        zone = UTC if zone_name.upper() in ("UTC", "Z", "") else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return moment.replace(tzinfo=zone).astimezone(UTC)


def digest_before(sign_ins: tuple[SignIn, ...]) -> SignInDigest:
    """verification/context.py's SignInDigest.of before it keyed kinds by their fields."""
    index: dict[SignIn, int] = {}
    kind_of, moments = array("I"), array("q")
    for s in sign_ins:
        kind_of.append(index.setdefault(replace(s, at=_EPOCH), len(index)))
        moments.append((s.at - _EPOCH) // timedelta(microseconds=1))
    return SignInDigest(tuple(index), kind_of.tobytes(), moments.tobytes())


def sign_ins_before(digest: SignInDigest) -> tuple[SignIn, ...]:
    us = timedelta(microseconds=1)
    return tuple(replace(digest.kinds[k], at=_EPOCH + m * us)
                 for k, m in zip(array("I", digest.kind_of), array("q", digest.moments), strict=True))


@pytest.fixture(scope="module")
def recorded() -> list[bytes]:
    """Every $batch answer of a few starts (their sign-in logs too) in a generated organisation, as Graph sent it."""
    answers: list[bytes] = []

    async def record(dt: ThreadedDevTenant) -> None:
        org = state(dt).org
        people = sorted((u for u in org.users.values() if not u.is_service_account and u.account_enabled),
                        key=lambda u: u.id)[:8]

        async def keep(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/$batch"):
                answers.append(await response.aread())

        async with directory_for(dt) as directory:
            directory._loader.http.event_hooks["response"].append(keep)
            for person in people:
                await (await directory.load_context(dt.ready["tenant_id"], person.id)).with_sign_ins()

    dt = ThreadedDevTenant(replace(TINY, seed=5, users=120), generated=True)
    try:
        asyncio.run(record(dt))
    finally:
        dt.close()
    assert len(answers) >= 16
    return answers


def _bodies(answers: list[bytes], prefix: str) -> list[Any]:
    return [r.get("body") for a in answers for r in json.loads(a)["responses"] if r["id"].startswith(prefix)]


def test_graphs_batch_answers_decode_to_what_the_standard_library_read(recorded: list[bytes]) -> None:
    for answer in recorded:
        assert _envelope(httpx.Response(200, content=answer)) == json.loads(answer)


def _same_moment(a: datetime | None, b: datetime | None) -> bool:
    return a == b and (a is None or b is None or (a.tzinfo is b.tzinfo and a.utcoffset() == b.utcoffset()))


def test_event_times_read_as_before_on_graphs_answers(recorded: list[bytes]) -> None:
    events = [e for body in _bodies(recorded, "meetings") for e in mapping.values(body)]
    assert len(events) > 20
    for event in events:
        for edge in (event.get("start"), event.get("end")):
            assert _same_moment(mapping.event_time(edge), event_time_before(edge)), edge


@pytest.mark.parametrize("edge", [
    {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"},
    {"dateTime": "2026-11-24T10:00:00.0000000"},
    {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": None},
    {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": ""},
    {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": " utc "},
    {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "Z"},
    {"dateTime": "2026-06-24T10:00:00.0000000", "timeZone": "Europe/London"},
    {"dateTime": "2026-06-24T10:00:00.0000000", "timeZone": "Pacific Standard Time"},  # Windows' names: unknown here
    {"dateTime": "2026-06-24T10:00:00.0000000", "timeZone": "../etc/passwd"},
    {"dateTime": "2026-06-24T10:00:00.0000000", "timeZone": 5},
    {"dateTime": "2026-06-24T10:00:00Z", "timeZone": "Europe/Paris"},
    {"dateTime": "2026-06-24T10:00:00+02:00", "timeZone": "UTC"},
    {"dateTime": "2026-06-24T10:00:00+02:00", "timeZone": "Europe/Paris"},
    {"dateTime": "2026-06-24T10:00:00+0200", "timeZone": "Europe/Paris"},
    {"dateTime": " 2026-06-24T10:00:00.123456789z ", "timeZone": "UTC"},
    {"dateTime": "not a time", "timeZone": "UTC"},
    {"dateTime": "", "timeZone": "UTC"},
    {"dateTime": None, "timeZone": "UTC"},
    {"dateTime": 1700000000, "timeZone": "UTC"},
    {},
])
def test_event_times_read_as_before_in_every_form(edge: dict[str, Any]) -> None:
    assert _same_moment(mapping.event_time(edge), event_time_before(edge))


def test_sign_in_digests_are_what_they_were_and_give_back_the_same_sign_ins(recorded: list[bytes]) -> None:
    answers = _bodies(recorded, "sign_ins")
    reads = [tuple(s for s in map(mapping.sign_in, mapping.values(body)) if s) for body in answers]
    at = datetime(2026, 11, 20, 8, tzinfo=UTC)
    nan = float("nan")
    reads += [  # kinds told apart by one field each, a moment before the epoch, NaN coordinates, nothing at all
        tuple(SignIn(at + timedelta(seconds=i), "10.0.0.1", compliant=(True, False, None)[i % 3]) for i in range(9)),
        (SignIn(datetime(1969, 7, 20, 20, 17, tzinfo=UTC), city="Tranquility"), SignIn(at, latitude=nan),
         SignIn(at, latitude=nan), SignIn(at, error_code=50126), SignIn(at)),
        (),
    ]
    assert sum(len(r) for r in reads) > 100
    for found in reads:
        digest = SignInDigest.of(found)
        assert digest == digest_before(found)
        assert [k.__repr__() for k in digest.kinds] == [k.__repr__() for k in digest_before(found).kinds]
        assert digest.sign_ins() == sign_ins_before(digest)
        assert [s.__repr__() for s in digest.sign_ins()] == [s.__repr__() for s in found]


@pytest.mark.parametrize("body", [b"<html>Bad gateway</html>", b"", b"\xff\xfe{}", b'{"responses": [', b"NaN"])
async def test_a_batch_answer_that_is_not_json_is_said_to_be_graphs_fault(body: bytes) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    class Token:
        async def get_authorization_token(self, uri: str, additional_authentication_context: object = None) -> str:
            return "token"

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(BatchError, match=r"^\$batch answered 200 with a body that is not JSON$"):
            await send_batch(http, "https://graph.example/v1.0", Token(),  # type: ignore[arg-type]
                             [BatchItem("profile", "/users/u")], Deadline.after(5))
