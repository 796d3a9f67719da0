"""How often one client address may be refused as an anonymous caller before it is told to wait (429).

Anyone can send requests Watchword must refuse: POSTs to the console without a signed-in session, and requests to
/api/messages without a valid Bot Framework token. Each such refusal costs work (a token check, a page, an audit
count). Past `WATCHWORD_ANONYMOUS_REFUSALS_PER_MINUTE` of them from one address in a minute, that address's next
anonymous requests are answered 429 with Retry-After (the seconds left in its minute) until the minute is over.

Only requests that would be refused anyway are limited: a signed-in admin, a turn with a valid token (Teams) and
demo mode's anonymous turns are served as before, so an address shared with a flood (a NAT, a load balancer in
front of Watchword, whose address every request then has) never locks out the people who may use it.

Per process, like the console's counts of refused requests: several instances each allow the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

from aiohttp import web
from cachetools import TTLCache

WINDOW_S = 60.0
ADDRESSES = 10_000  # addresses remembered at once (the least recently refused go first): bounded memory


@dataclass
class _Minute:
    opened: float
    refused: int = 0


class RefusalLimit:
    """Anonymous refusals per client address, a minute at a time from its first refusal."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._minutes: TTLCache[str, _Minute] = TTLCache(ADDRESSES, WINDOW_S, timer=lambda: self._clock())

    def refused(self, address: str) -> None:
        """Count one anonymous refusal of this address."""
        now = self._clock()
        minute = self._minutes.get(address)
        if minute is None or now >= minute.opened + WINDOW_S:
            minute = self._minutes[address] = _Minute(now)
        minute.refused += 1

    def wait_s(self, address: str) -> int | None:
        """Whole seconds this address must wait when it used its refusals this minute; None when it has not."""
        minute = self._minutes.get(address)
        left = minute.opened + WINDOW_S - self._clock() if minute is not None else 0.0
        if minute is None or minute.refused < self.per_minute or left <= 0:
            return None
        return max(1, math.ceil(left))


REFUSAL_LIMIT = web.AppKey("refusal_limit", RefusalLimit)


def client_address(request: web.Request) -> str:
    """The peer's address as this process sees it (a proxy's headers are not trusted: anyone can write them)."""
    return request.remote or "unknown"

