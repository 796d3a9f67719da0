"""Errors the store raises for conditions callers are expected to handle."""

from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class StoreError(Exception):
    """Base class for the store's own errors."""


class ETagConflictError(StoreError):
    """A conversation-state write carried an e_tag that no longer matches the stored item.

    The writer read an older version (another turn wrote or deleted it since): re-read and retry,
    or give up the turn. The message names the key only, never the document.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"e_tag conflict writing storage key {key!r}: the stored item changed since it was read")
        self.key = key


class TurnTakenOver(StoreError):
    """This turn's conversation was taken over by another process's turn (this one's process was taken for dead:
    its heartbeat lapsed while it stalled), so nothing this turn writes is committed: the new owner's work stands
    (store/units.py `TURN_FENCE`)."""

    def __init__(self) -> None:
        super().__init__("this turn's conversation was taken over by another process: nothing was written")


class SessionClosedError(StoreError):
    """A verification session that has already ended (or does not exist) cannot be changed."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"verification session {session_id} is not open")
        self.session_id = session_id


class TenantNotFoundError(StoreError):
    """The tenant is not connected (no row), so its directory data cannot be written."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id} is not connected")
        self.tenant_id = tenant_id


class StoreUnwritableError(StoreError):
    """The database cannot be written (read-only, full, no write permission) or reached, found at start.

    The message says what is wrong and how to fix it, in words for whoever runs Watchword, without the URL's
    password; it is shown instead of a traceback.
    """


class StoreUnavailable(StoreError):
    """The database did not take a write (connection lost, disk full, read-only): nothing of it was committed,
    as far as this process can tell. The message names what was being written, never its values."""


def store_busy(error: BaseException) -> bool:
    """Every database connection stayed in use while this one waited its longest (store/db.py POOL_WAIT_S): the
    store is busy, not broken; nothing of the waiting work was done."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, PoolTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
