"""`python -m admin sync [--tenant ID]`: sync the protected users from Entra now, with a progress bar.

Uses the same settings as the app (environment and .env) and the same store, so the console shows the
result. Stopping it (Ctrl-C) keeps every page already stored: run the same command again and it resumes
from the stored next link. Progress goes to stderr; one JSON line per tenant goes to stdout at the end.
Exit status: 0 every sync done, 1 a sync failed, 2 configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from admin.sync import SyncProgress, SyncService, SyncStatus
from settings import Settings, SettingsError, load_settings

BAR_WIDTH = 30
PLAIN_EVERY_S = 5.0  # without a terminal (CI, a log file): one line every few seconds, not a redraw per page


class ProgressBar:
    """A one-line text bar on a terminal (redrawn in place), or occasional plain lines elsewhere."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._clock = clock
        self._last_plain = -PLAIN_EVERY_S
        self._drawn = False

    def show(self, p: SyncProgress) -> None:
        line = format_progress(p)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line + ("\n" if p.finished else ""))
            self._drawn = not p.finished
        elif p.finished or self._clock() - self._last_plain >= PLAIN_EVERY_S:
            self._stream.write(line + "\n")
            self._last_plain = self._clock()
        self._stream.flush()

    def end_line(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def format_progress(p: SyncProgress) -> str:
    if p.cycle == 0 and not p.finished:
        return f"sync {p.tenant_id[:8]}: reading roles and scope groups..."
    kind = "full" if p.full else "changes"
    head = f"sync {p.tenant_id[:8]} ({kind}{', resumed' if p.resumed else ''}) "
    if p.percent is not None:
        filled = BAR_WIDTH * p.percent // 100
        head += f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {p.percent:3d}% "
    users = f"{p.users_seen:,}" + (f"/{p.expected_users:,}" if p.expected_users and p.full else "")
    tail = f"{users} users, {p.pages:,} pages"
    if p.users_removed:
        tail += f", {p.users_removed:,} removed"
    tail += f", {p.elapsed_s:.1f} s"
    if p.status == SyncStatus.DONE:
        tail += " - done"
    elif p.status == SyncStatus.FAILED:
        tail += f" - failed: {p.error}"
    return head + tail


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m admin sync", description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", help="the tenant (Directory ID) to sync; default WATCHWORD_TENANT_ID, "
                                         "else every connected tenant")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as err:
        print(f"watchword: configuration error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.demo:
        print("watchword: no app registration configured (WATCHWORD_CLIENT_ID). Demo mode's dev tenant lives "
              "inside the app: use the console's \"Sync now\", or point WATCHWORD_* at a devtenant started "
              "with `python -m devtenant`.", file=sys.stderr)
        return 2
    bar = ProgressBar(sys.stderr)
    try:
        results = asyncio.run(sync(settings, args.tenant, bar.show))
    except KeyboardInterrupt:
        bar.end_line()
        print("interrupted: the pages stored so far are kept; run the same command again to resume.",
              file=sys.stderr)
        return 130
    except _Refused as err:
        print(f"watchword: {err}", file=sys.stderr)
        return 2
    for result in results:
        print(json.dumps(result.to_json()), flush=True)
    return 0 if all(r.status == SyncStatus.DONE for r in results) else 1


class _Refused(Exception):
    """Nothing to sync, said plainly."""


async def sync(settings: Settings, tenant: str | None,
               on_progress: Callable[[SyncProgress], None]) -> list[SyncProgress]:
    """Sync one tenant (or every connected one) with the product's own store, directory and sync service."""
    from graph.client import build_http_client
    from graph.graph_directory import GraphDirectory
    from graph.tokens import TokenSource
    from store import open_store

    store = await open_store(settings.database_url)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file)
    try:
        tenant_ids = await _tenants(store, tenant or settings.tenant_id or None)
        service = SyncService(store, GraphDirectory(tokens, http, settings.graph_url, settings.client_id))
        results = []
        for tenant_id in tenant_ids:
            results.append(await _one(service, tenant_id, on_progress))
        return results
    finally:
        await http.aclose()
        tokens.close()
        await store.close()


async def _one(service: SyncService, tenant_id: str, on_progress: Callable[[SyncProgress], None]) -> SyncProgress:
    async def watch() -> None:
        async for progress in service.watch(tenant_id):
            on_progress(progress)

    task = service.start(tenant_id)
    watcher = asyncio.create_task(watch())
    try:
        result = await task
    finally:
        if not watcher.done():
            await asyncio.wait({watcher}, timeout=1)
            watcher.cancel()
    return result


async def _tenants(store, tenant: str | None) -> list[str]:  # noqa: ANN001 - store.Store, imported late
    connected = [t for t in await store.tenants.list_tenants()]
    if tenant is None:
        if not connected:
            raise _Refused("no tenant is connected yet: connect one in the admin console "
                           "(Settings > Integrations > Microsoft Entra), or set WATCHWORD_TENANT_ID and start "
                           "Watchword once.")
        return [t.tenant_id for t in connected]
    wanted = tenant.strip().lower()
    if wanted not in {t.tenant_id for t in connected}:
        raise _Refused(f"tenant {tenant} is not connected: connect it in the admin console first.")
    return [wanted]
