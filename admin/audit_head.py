"""The audit chain's head, copied out daily so that truncating the log shows.

Someone who can write the database can delete the newest entries and rewind the chain head: what is left still
verifies. Only a head kept somewhere they cannot write shows it (the Audit page checks the log against one).
Once a day (the first instance to notice, sharing one database) Watchword therefore:

1. appends `audit.head` to the log with the head it found (seq, hash), so every later entry commits to it;
2. logs the same line at INFO (logs usually go to another system);
3. when WATCHWORD_AUDIT_HEAD_URL is set, POSTs it there as JSON (a SIEM's HTTP collector, a Teams or Slack
   incoming webhook...), signed with HMAC-SHA256 in `X-Watchword-Signature` when WATCHWORD_AUDIT_HEAD_SECRET
   is set, so the receiver can tell it came from Watchword.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from admin.context import SETTINGS, STORE
from observability.correlation import correlated
from store import AuditFilter, ChainHead, Store
from verification.clock import utc_now

log = logging.getLogger(__name__)

EVERY = timedelta(days=1)
CHECK_EVERY_S = 600.0  # how often an instance looks whether today's head was sent
FIRST_CHECK_S = 60.0  # after start: not in the middle of start-up (nor of a test's short life)
SEND_TIMEOUT_S = 10.0
ACTOR = "watchword"
ACTION = "audit.head"


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_daily)


async def _daily(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(app))
    yield
    task.cancel()


async def _loop(app: web.Application) -> None:
    await asyncio.sleep(FIRST_CHECK_S)
    while True:
        with correlated():  # each round's log lines and audit row, like a request's
            try:
                settings = app[SETTINGS]
                await export_if_due(app[STORE], settings.audit_head_url,
                                    settings.audit_head_secret.get_secret_value(), utc_now())
            except Exception:  # the next round tries again; a failure here must not end the loop
                log.warning("could not export the audit chain's head", exc_info=True)
        await asyncio.sleep(CHECK_EVERY_S)


async def export_if_due(store: Store, url: str, secret: str, now: datetime) -> ChainHead | None:
    """Record and send the head if no instance did in the last day; the head sent, or None when not due."""
    last = await store.audit.query(AuditFilter(action=ACTION, actor=ACTOR), limit=1)
    if last.entries and now - last.entries[0].time < EVERY:
        return None
    head = await store.audit.head()
    sent = await send(url, secret, head, now) if url else None
    await store.audit.append(action=ACTION, outcome="recorded" if sent is None else ("sent" if sent else "failed"),
                             actor=ACTOR, details={"seq": head.seq, "hash": head.hash})
    log.info("audit chain head: #%d %s", head.seq, head.hash)
    return head


def payload(head: ChainHead, time: datetime) -> bytes:
    return json.dumps({"source": "watchword", "seq": head.seq, "hash": head.hash, "time": time.isoformat()},
                      sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send(url: str, secret: str, head: ChainHead, time: datetime) -> bool:
    body = payload(head, time)
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Watchword-Signature"] = signature(secret, body)
    try:
        async with ClientSession(timeout=ClientTimeout(total=SEND_TIMEOUT_S)) as http, \
                http.post(url, data=body, headers=headers) as response:
            if response.status < 300:
                return True
            log.warning("the audit head sink answered %s", response.status)
    except (ClientError, TimeoutError) as err:
        log.warning("could not send the audit head: %s", type(err).__name__)
    return False
