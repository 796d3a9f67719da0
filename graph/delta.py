"""One round of a Graph delta query (`/users/delta`, `/groups/delta`), as every change-tracking reader walks it.

    link = await walk_delta(fetch, start_url, stored_link, on_page)

A round follows `@odata.nextLink` pages to the page with `@odata.deltaLink`, which the caller stores and starts the
next round from: that round returns only what changed since (deleted objects as `{"id": ..., "@removed": {...}}`).
A stored link Graph no longer honours (410 Gone when its sync state is gone, 400 `syncStateNotFound` once the token
expired after about seven days, 400 for a token it cannot read) starts a clean round, once: its first page says so
(`DeltaPage.restarted`), so the caller drops what it kept and takes the round as a full read.

Used by the protected users' sync (graph/graph_directory.py, admin/sync.py) and the directory snapshot's refresh
(graph/tenant_facts.py); `fetch` is how each reads one page (a direct GET, or a $batch item).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graph.mapping import Json, values

# Graph's answers to a stored link it will not resume from: start a clean round.
REFUSED_STATUSES = (400, 410)


class LinkRefused(Exception):
    """`fetch` could not read a page because Graph refused its link (one of REFUSED_STATUSES). `error`: what to
    raise if a clean round cannot help (the refused link was already the start)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class BrokenPage(Exception):
    """A delta page with neither a next nor a delta link: the round cannot go on."""


@dataclass(frozen=True)
class DeltaPage:
    """One page of a round: its entries (changed objects, and removed ones with `@removed`), and exactly one of
    `next_link` (more pages follow) and `delta_link` (the round is complete). `restarted`: the first page of a
    clean round begun because the stored link was refused: what the caller kept from earlier rounds is void."""

    items: list[Json]
    next_link: str | None
    delta_link: str | None
    restarted: bool = False


async def walk_delta(fetch: Callable[[str], Awaitable[Any]], start: str, resume: str | None,
                     on_page: Callable[[DeltaPage], Awaitable[None]]) -> str:
    """Walk one round from `resume` (a stored next or delta link) or from `start`; returns the new delta link.
    `fetch(url)` returns a page's JSON, or raises LinkRefused when Graph refused the link."""
    url = resume or start
    restarted = announce = False
    while True:
        try:
            body = await fetch(url)
        except LinkRefused as refused:
            if url != start and not restarted:
                url, restarted, announce = start, True, True
                continue
            raise refused.error from None
        items = [d for d in values(body) if d.get("id")]
        next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        delta_link = body.get("@odata.deltaLink") if isinstance(body, dict) else None
        if not next_link and not delta_link:
            raise BrokenPage("a delta page with neither a next nor a delta link")
        await on_page(DeltaPage(items, None if delta_link else str(next_link),
                                str(delta_link) if delta_link else None, announce))
        announce = False
        if delta_link:
            return str(delta_link)
        url = str(next_link)
