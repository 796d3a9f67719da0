"""The audit chain's head goes out daily: recorded in the log, logged, and POSTed (signed) to the sink when set."""

from __future__ import annotations

import json

from aiohttp import web

from admin import audit_head
from store import AuditFilter, Store
from tests.store.support import FakeClock


async def _heads(store: Store) -> list:
    return list((await store.audit.query(AuditFilter(action="audit.head"))).entries)


async def test_the_head_is_recorded_once_a_day_whoever_asks(store: Store, store_clock: FakeClock) -> None:
    await store.audit.append(action="console.sign_in", outcome="ok", actor="ada@tiny.example")
    head = await store.audit.head()

    assert await audit_head.export_if_due(store, "", "", store_clock()) == head
    assert await audit_head.export_if_due(store, "", "", store_clock()) is None  # another instance, same day
    store_clock.advance(hours=23)
    assert await audit_head.export_if_due(store, "", "", store_clock()) is None
    store_clock.advance(hours=1)
    assert await audit_head.export_if_due(store, "", "", store_clock()) is not None

    first, second = reversed(await _heads(store))
    assert (first.details["seq"], first.details["hash"], first.outcome) == (head.seq, head.hash, "recorded")
    assert second.details["seq"] == first.seq  # the next day's head commits to the first one
    assert (await store.audit.verify_chain()).ok


async def test_the_head_is_posted_signed_to_the_sink(store: Store, store_clock: FakeClock, aiohttp_server,
                                                     monkeypatch) -> None:
    received: list[tuple[bytes, str]] = []

    async def sink(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("X-Watchword-Signature", "")))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/collector", sink)
    server = await aiohttp_server(app)
    head = await audit_head.export_if_due(store, str(server.make_url("/collector")), "s3cret", store_clock())

    [(body, signature)] = received
    assert json.loads(body) == {"source": "watchword", "seq": head.seq, "hash": head.hash,
                                "time": store_clock().isoformat()}
    assert signature == audit_head.signature("s3cret", body) and signature.startswith("sha256=")
    [entry] = await _heads(store)
    assert entry.outcome == "sent" and "s3cret" not in json.dumps(dict(entry.details))


async def test_a_sink_that_fails_is_recorded_as_failed_and_retried_tomorrow(store: Store, store_clock: FakeClock,
                                                                            aiohttp_server) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/collector", broken)
    server = await aiohttp_server(app)
    await audit_head.export_if_due(store, str(server.make_url("/collector")), "", store_clock())

    [entry] = await _heads(store)
    assert entry.outcome == "failed"
