"""The protected users' sync service and the directory reads the console's pages share, on the app.

`setup(app)` (called by admin.users.setup when the console mounts) adds a cleanup context, after the
console's own, that builds them from the app's store, directory, token source and Graph HTTP client,
unless a test put its own there first, and stops running syncs on shutdown (their stored pages stay).
Finished syncs are audited as "directory.sync" by whoever started them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from admin.context import DIRECTORY, GRAPH_HTTP, SETTINGS, STORE, TOKENS
from admin.sync import SyncProgress, SyncReads, SyncService, SyncStatus


class DirectoryReads(SyncReads, Protocol):
    """The sync's tenant-wide reads, plus group names for the policy page (graph.sync_reads.GraphSyncReads)."""

    async def group_names(self, tenant_id: str, group_ids: Iterable[str]) -> Mapping[str, str | None]:
        """Each group's display name; None for a group that does not exist."""
        ...


SYNC = web.AppKey("admin_sync", SyncService)
DIRECTORY_READS = web.AppKey("admin_directory_reads", DirectoryReads)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_sync_ctx)


async def _sync_ctx(app: web.Application) -> AsyncIterator[None]:
    if DIRECTORY_READS not in app:
        from graph.sync_reads import GraphSyncReads

        app[DIRECTORY_READS] = GraphSyncReads(app[TOKENS], app[GRAPH_HTTP], app[SETTINGS].graph_url)
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

    service = SyncService(store, app[DIRECTORY], app[DIRECTORY_READS], on_finished=audit_finished)
    app[SYNC] = service
    yield
    await service.close()
