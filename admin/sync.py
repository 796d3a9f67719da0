"""The protected users' sync: Entra's users, through the delta query, into the store.

    service = SyncService(store, directory)
    run = service.start(tenant_id)          # or: await service.run(tenant_id)
    async for progress in service.watch(tenant_id): ...

One cycle walks Graph's `/users/delta` (`Directory.sync_users`). Every page is written together with
the link to the next one (`store.protected_users.apply_sync_page`), so a sync that stops — Ctrl-C, a
crash, Graph failing — resumes at the first page not yet stored: from the stored next link, else the
stored delta link, else from scratch. A cycle that starts without a delta link sees everyone and
removes, when it completes, the users it did not see; later cycles only read changes.

For each user the sync decides two things, with a handful of tenant-wide reads per run instead of a
call per user (`Directory.not_resettable_ids`, `.group_member_ids`; `.count_users` for the progress bar):
whether Watchword may ever reset them (not if they hold a privileged directory role, sit in a
role-assignable group, or are synced from on-premises) and whether they are in
the admin's group scope (members of an include group, if any is set, and of no exclude group). Roles
and group memberships change without the user changing, so a delta cycle also re-checks every stored
user against the fresh reads and rewrites those whose verdict moved.

Fetching and writing overlap: pages go through a small queue to a writer, so Graph's next page is on
its way while the last one is stored (and memory stays bounded by the queue); the tenant-wide reads run
while the first pages arrive, and the writer waits for them before it stores anything.

One sync per tenant runs at a time: in this process a second `start()` joins the running one; across
processes a lease in the store (`store.sync_leases`) makes the second fail at once, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from graph.directory import Directory, DirectoryError, DirectoryUser, ResetRefusal, SyncPage
from store import Store, StoreError, TenantAccess, UserSnapshot

log = logging.getLogger(__name__)

FEDERATED = ResetRefusal.FEDERATED.value
QUEUE_PAGES = 4  # pages fetched ahead of the writer: enough to keep both busy, little memory
RECHECK_BATCH = 1000
LEASE_TTL = timedelta(minutes=2)


class SyncStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class SyncProgress:
    """Where one run of a tenant's sync stands. Counts are for the whole cycle, including pages a run
    before this one stored (`resumed`). `expected_users` is the tenant's size on a full cycle (None on
    a delta cycle, which only reads changes)."""

    tenant_id: str
    status: SyncStatus
    cycle: int = 0
    full: bool = True
    resumed: bool = False
    pages: int = 0
    users_seen: int = 0
    users_removed: int = 0
    users_rechecked: int = 0
    expected_users: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    elapsed_s: float = 0.0
    error: str | None = None
    started_by: str | None = None

    @property
    def finished(self) -> bool:
        return self.status != SyncStatus.RUNNING

    @property
    def percent(self) -> int | None:
        if self.status == SyncStatus.DONE:
            return 100
        if not self.expected_users:
            return None
        return min(99, int(100 * self.users_seen / self.expected_users))

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id, "status": self.status.value, "cycle": self.cycle, "full": self.full,
            "resumed": self.resumed, "pages": self.pages, "users_seen": self.users_seen,
            "users_removed": self.users_removed, "users_rechecked": self.users_rechecked,
            "expected_users": self.expected_users, "percent": self.percent,
            "started_at": self.started_at.isoformat(timespec="seconds"), "elapsed_s": round(self.elapsed_s, 1),
            "error": self.error, "started_by": self.started_by,
        }


class SyncBusy(Exception):
    """Another process is syncing this tenant now."""

    def __init__(self, tenant_id: str):
        super().__init__(f"A directory sync of tenant {tenant_id} is already running in another process.")
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class _Verdicts:
    """Who may not be reset and who is in scope, from this run's tenant-wide reads."""

    not_resettable: Mapping[str, tuple[str, ...]]
    include: frozenset[str] | None  # None: no include groups, everyone is included
    exclude: frozenset[str]

    def reasons(self, user_id: str, *, federated: bool, guest: bool = False, disabled: bool = False
                ) -> tuple[str, ...]:
        """Tenant-wide verdicts plus what the user's own record says (federated, guest, disabled)."""
        found = set(self.not_resettable.get(user_id, ()))
        for flag, reason in ((federated, FEDERATED), (guest, ResetRefusal.GUEST.value),
                             (disabled, ResetRefusal.DISABLED.value)):
            if flag:
                found.add(reason)
        return tuple(sorted(found))

    def included(self, user_id: str) -> bool:
        return (self.include is None or user_id in self.include) and user_id not in self.exclude

    def snapshot(self, user: DirectoryUser) -> UserSnapshot:
        uid = user.id.lower()
        return UserSnapshot(user_id=uid, upn=user.upn, display_name=user.display_name or user.upn,
                            department=user.department, job_title=user.job_title,
                            not_resettable_reasons=self.reasons(uid, federated=user.on_premises_sync_enabled,
                                                                guest=user.user_type.lower() == "guest",
                                                                disabled=not user.account_enabled),
                            included=self.included(uid))


class SyncService:
    """Runs tenants' syncs in the background and tells subscribers how they go."""

    def __init__(self, store: Store, directory: Directory, *,
                 on_finished: Callable[[SyncProgress], Awaitable[None]] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, lease_ttl: timedelta = LEASE_TTL,
                 queue_pages: int = QUEUE_PAGES) -> None:
        """`on_finished` is awaited with each run's final progress (e.g. to audit it); its failures are logged."""
        self._store = store
        self._on_finished = on_finished
        self._directory = directory
        self._monotonic = monotonic
        self._lease_ttl = lease_ttl
        self._queue_pages = queue_pages
        self._holder = f"{socket.gethostname()[:80]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self._tasks: dict[str, asyncio.Task[SyncProgress]] = {}
        self._latest: dict[str, SyncProgress] = {}
        self._watchers: dict[str, set[asyncio.Queue[SyncProgress]]] = {}

    # --- running -------------------------------------------------------------------------------------
    def start(self, tenant_id: str, *, started_by: str | None = None) -> asyncio.Task[SyncProgress]:
        """Start the tenant's sync in the background, or return the one already running here."""
        tenant_id = tenant_id.lower()
        task = self._tasks.get(tenant_id)
        if task is not None and not task.done():
            return task
        first = SyncProgress(tenant_id, SyncStatus.RUNNING, started_at=self._now(), started_by=started_by)
        self._publish(first)
        task = asyncio.create_task(self._run(first), name=f"directory-sync-{tenant_id}")
        self._tasks[tenant_id] = task
        return task

    async def run(self, tenant_id: str, *, started_by: str | None = None) -> SyncProgress:
        """Run (or join) the tenant's sync and return how it ended. A failed sync (Graph unavailable,
        another process syncing the tenant...) does not raise: the result's `error` says why."""
        return await self.start(tenant_id, started_by=started_by)

    def running(self, tenant_id: str) -> bool:
        task = self._tasks.get(tenant_id.lower())
        return task is not None and not task.done()

    def progress(self, tenant_id: str) -> SyncProgress | None:
        """The latest progress of this process's run for the tenant (running or finished), if any."""
        return self._latest.get(tenant_id.lower())

    async def watch(self, tenant_id: str) -> AsyncIterator[SyncProgress]:
        """The latest progress now (if any), then each change, until the run finishes. A slow reader
        skips intermediate states rather than queueing them."""
        tenant_id = tenant_id.lower()
        queue: asyncio.Queue[SyncProgress] = asyncio.Queue(maxsize=1)
        self._watchers.setdefault(tenant_id, set()).add(queue)
        try:
            latest = self._latest.get(tenant_id)
            if latest is not None:
                yield latest
                if latest.finished and not self.running(tenant_id):
                    return
            while True:
                progress = await queue.get()
                yield progress
                if progress.finished:
                    return
        finally:
            self._watchers[tenant_id].discard(queue)

    async def close(self) -> None:
        """Stop running syncs (their stored pages stay; the next run resumes)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _publish(self, progress: SyncProgress) -> None:
        self._latest[progress.tenant_id] = progress
        for queue in self._watchers.get(progress.tenant_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(progress)

    # --- one run -------------------------------------------------------------------------------------
    async def _run(self, first: SyncProgress) -> SyncProgress:
        tenant_id = first.tenant_id
        started = self._monotonic()
        progress = first

        def update(**changes: Any) -> None:
            nonlocal progress
            progress = replace(progress, elapsed_s=self._monotonic() - started, **changes)
            self._publish(progress)

        leases = self._store.sync_leases
        try:
            if not await leases.acquire(tenant_id, self._holder, self._lease_ttl):
                raise SyncBusy(tenant_id)
        except Exception as err:
            log.warning("directory sync of tenant %s not started: %s", tenant_id, _safe_error(err))
            update(status=SyncStatus.FAILED, error=_safe_error(err))
            await self._finished(progress)
            return progress
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._keep_lease(tenant_id, asyncio.current_task(), lost))
        try:
            await self._cycle(tenant_id, update)
            update(status=SyncStatus.DONE)
        except asyncio.CancelledError:
            update(status=SyncStatus.FAILED, error="another process took over this sync" if lost.is_set()
                   else "stopped; the next sync resumes where this one stopped")
            if not lost.is_set():
                raise
        except Exception as err:  # reported to subscribers (safe text) and logged
            if isinstance(err, DirectoryError | StoreError):
                log.warning("directory sync of tenant %s failed: %s", tenant_id, err)
            else:
                log.exception("directory sync of tenant %s failed", tenant_id)
            update(status=SyncStatus.FAILED, error=_safe_error(err))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await asyncio.shield(leases.release(tenant_id, self._holder))
            log.info("directory sync of tenant %s %s: %d pages, %d users in %.1f s", tenant_id, progress.status,
                     progress.pages, progress.users_seen, progress.elapsed_s)
            await asyncio.shield(self._finished(progress))
        return progress

    async def _finished(self, progress: SyncProgress) -> None:
        if self._on_finished is None:
            return
        try:
            await self._on_finished(progress)
        except Exception:  # reporting must not turn a finished sync into a failed one
            log.exception("directory sync of tenant %s: on_finished failed", progress.tenant_id)

    async def _keep_lease(self, tenant_id: str, owner: asyncio.Task[Any] | None, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl.total_seconds() / 3)
            if not await self._store.sync_leases.acquire(tenant_id, self._holder, self._lease_ttl):
                log.error("directory sync of tenant %s lost its lease to another process; stopping", tenant_id)
                lost.set()
                if owner is not None:
                    owner.cancel()
                return

    async def _cycle(self, tenant_id: str, update: Callable[..., None]) -> None:
        users = self._store.protected_users
        state = await users.begin_sync(tenant_id)
        update(cycle=state.cycle, full=state.full, resumed=state.pages > 0, pages=state.pages,
               users_seen=state.users_upserted, users_removed=state.users_removed)
        # The tenant-wide reads run while the first pages are fetched; the writer waits for them.
        reading = asyncio.create_task(self._verdicts(tenant_id))
        counting = asyncio.create_task(self._directory.count_users(tenant_id)) if state.full else None
        resume_link = state.next_link or state.delta_link
        full = state.full
        queue: asyncio.Queue[SyncPage | None] = asyncio.Queue(maxsize=self._queue_pages)
        counts = {"pages": state.pages, "seen": state.users_upserted, "removed": state.users_removed}

        async def write() -> None:
            nonlocal full
            verdicts = await reading
            if counting is not None:
                update(expected_users=await counting)
            while (page := await queue.get()) is not None:
                if page.restarted:
                    # Graph refused the stored link and started over: this is now a full cycle.
                    await users.reset_sync(tenant_id)
                    restarted = await users.begin_sync(tenant_id)
                    full = True
                    counts.update(pages=0, seen=0, removed=0)
                    update(cycle=restarted.cycle, full=True, resumed=False,
                           expected_users=await self._directory.count_users(tenant_id))
                snapshots = [verdicts.snapshot(u) for u in page.users]
                rechecked = 0
                if page.delta_link is not None and not full:
                    changed = await self._recheck(tenant_id, verdicts)
                    rechecked = len(changed)
                    snapshots = changed + snapshots  # the page's own users win (last one wins)
                stored = await users.apply_sync_page(tenant_id, upserts=snapshots, removed_user_ids=page.removed_ids,
                                                     next_link=page.next_link, delta_link=page.delta_link)
                counts.update(pages=stored.pages, seen=counts["seen"] + len(page.users),
                              removed=stored.users_removed)
                update(pages=counts["pages"], users_seen=counts["seen"], users_removed=counts["removed"],
                       **({"users_rechecked": rechecked} if rechecked else {}))

        writer = asyncio.create_task(write())

        async def on_page(page: SyncPage) -> None:
            if writer.done():
                writer.result()  # re-raise the writer's failure: stop paging
                raise RuntimeError("the sync's writer stopped early")
            await _put(queue, page, writer)

        try:
            await self._directory.sync_users(tenant_id, resume_link, on_page)
        except asyncio.CancelledError:
            for task in (writer, reading, counting):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            raise
        except Exception:
            # Pages already fetched are whole: store them (once the reads are in), so the next run resumes
            # after them.
            if not writer.done():
                with contextlib.suppress(Exception):
                    await _put(queue, None, writer)
                    await writer
            raise
        if not writer.done():
            await _put(queue, None, writer)
        await writer

    async def _verdicts(self, tenant_id: str) -> _Verdicts:
        access: TenantAccess = await self._store.policies.get_access(tenant_id)
        groups = (*access.include_group_ids, *access.exclude_group_ids)
        flagged, *members = await asyncio.gather(self._directory.not_resettable_ids(tenant_id),
                                                 *(self._directory.group_member_ids(tenant_id, g) for g in groups))
        of = dict(zip(groups, members, strict=True))

        def union(ids: tuple[str, ...]) -> frozenset[str]:
            return frozenset(m.lower() for g in ids for m in of[g])

        return _Verdicts(not_resettable={k.lower(): v for k, v in flagged.items()},
                         include=union(access.include_group_ids) if access.include_group_ids else None,
                         exclude=union(access.exclude_group_ids))

    async def _recheck(self, tenant_id: str, verdicts: _Verdicts) -> list[UserSnapshot]:
        """Stored users whose verdicts moved without the user changing (a role or group membership)."""
        changed: list[UserSnapshot] = []
        after: str | None = None
        while True:
            batch = await self._store.protected_users.list_users(tenant_id, limit=RECHECK_BATCH, after_user_id=after)
            for u in batch:
                reasons = verdicts.reasons(u.user_id, federated=FEDERATED in u.not_resettable_reasons,
                                           guest=ResetRefusal.GUEST.value in u.not_resettable_reasons,
                                           disabled=ResetRefusal.DISABLED.value in u.not_resettable_reasons)
                included = verdicts.included(u.user_id)
                if reasons != tuple(sorted(u.not_resettable_reasons)) or included != u.included:
                    changed.append(UserSnapshot(user_id=u.user_id, upn=u.upn, display_name=u.display_name,
                                                department=u.department, job_title=u.job_title,
                                                not_resettable_reasons=reasons, included=included))
            if len(batch) < RECHECK_BATCH:
                return changed
            after = batch[-1].user_id


async def _put(queue: asyncio.Queue[SyncPage | None], item: SyncPage | None, writer: asyncio.Task[None]) -> None:
    """Queue an item for the writer, unless the writer stops first (then raise its error)."""
    put = asyncio.ensure_future(queue.put(item))
    done, _ = await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
    if put in done:
        return
    put.cancel()
    writer.result()
    raise RuntimeError("the sync's writer stopped early")


def _safe_error(err: BaseException) -> str:
    """What to tell an admin: our own errors' messages are written to be shown; anything else is a bug
    whose text might hold anything, so it is named only by type (the log has the traceback)."""
    if isinstance(err, DirectoryError | StoreError | SyncBusy):
        return str(err)
    return f"unexpected error ({type(err).__name__}); see the server log"
