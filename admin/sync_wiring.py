"""The protected users' sync service, on the app.

`setup(app)` (called by admin.users.setup when the console mounts) adds a cleanup context, after the
console's own, that builds it from the app's store and directory (whose tenant-wide reads it uses), and
stops running syncs on shutdown (their stored pages stay).
Finished syncs are audited as "directory.sync" by whoever started them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from admin.context import DIRECTORY, STORE
from admin.sync import SyncProgress, SyncService, SyncStatus

SYNC = web.AppKey("admin_sync", SyncService)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_sync_ctx)


async def _sync_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]

    async def audit_finished(progress: SyncProgress) -> None:
        details: dict[str, Any] = {"cycle": progress.cycle, "full": progress.full, "pages": progress.pages,
                                   "users_seen": progress.users_seen, "users_removed": progress.users_removed,
                                   "seconds": round(progress.elapsed_s, 1)}
        if progress.error:
            details["error"] = progress.error
        await store.audit.append(action="directory.sync",
                                 outcome="ok" if progress.status == SyncStatus.DONE else "failed",
                                 actor=progress.started_by or "watchword", tenant_id=progress.tenant_id,
                                 details=details)

    service = SyncService(store, app[DIRECTORY], on_finished=audit_finished)
    app[SYNC] = service
    yield
    await service.close()
