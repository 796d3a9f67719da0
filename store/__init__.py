"""Persistence for Watchword: SQLAlchemy async over SQLite (default) or PostgreSQL.

    store = await open_store("sqlite+aiosqlite:///var/watchword.db")
    ...
    await store.close()

Repositories hang off the Store (`store.tenants`, `store.protected_users`, `store.sessions`,
`store.lockouts`, `store.audit`, `store.conversation_state`, `store.conversation_refs`, `store.policies`,
`store.sync_leases`, `store.console_sessions`) and return the frozen dataclasses exported here, never ORM
objects. What every turn does (conversation state, transcript entries, audit rows) runs as synchronous units
of work (`store.units`, store/units.py), each in one transaction: on a SQLite file on a thread of its own, on
PostgreSQL on a few threads of their own.
"""

from store.audit import AuditChainCheck, AuditEntry, AuditEvent, AuditFilter, AuditLog, AuditPage, ChainBreak, ChainHead
from store.console_sessions import ConsoleSessionRepository
from store.conversation_refs import ConversationReferenceRepository, StoredConversationReference
from store.conversation_state import SqlStorage
from store.db import DEFAULT_DATABASE_URL, Store, open_store
from store.errors import (
    ETagConflictError,
    SessionClosedError,
    StoreError,
    StoreUnavailable,
    StoreUnwritableError,
    TenantNotFoundError,
    TurnTakenOver,
    store_busy,
)
from store.lockouts import ATTEMPT_WINDOW, COUNTED_OUTCOMES, Lockout, LockoutRepository, LockoutRule
from store.policies import PolicyRepository, StoredPolicy, TenantAccess
from store.protected_users import ProtectedUser, ProtectedUserRepository, SyncState, UserFilter, UserSnapshot
from store.sessions import (
    AbandonedReset,
    Admission,
    SessionRecord,
    SessionRepository,
    TranscriptRecord,
)
from store.sync_leases import SyncLease, SyncLeaseRepository
from store.tenants import Tenant, TenantRepository, TenantStatus
from store.turns import TurnClaim, TurnRepository, activity_key, conversation_key

__all__ = [
    "ATTEMPT_WINDOW",
    "COUNTED_OUTCOMES",
    "DEFAULT_DATABASE_URL",
    "Admission",
    "AuditChainCheck",
    "AuditEntry",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "ChainBreak",
    "ChainHead",
    "ConsoleSessionRepository",
    "ConversationReferenceRepository",
    "ETagConflictError",
    "TurnTakenOver",
    "Lockout",
    "LockoutRepository",
    "LockoutRule",
    "PolicyRepository",
    "ProtectedUser",
    "ProtectedUserRepository",
    "SessionClosedError",
    "AbandonedReset",
    "SessionRecord",
    "SessionRepository",
    "SqlStorage",
    "Store",
    "StoreError",
    "StoreUnwritableError",
    "StoreUnavailable",
    "StoredConversationReference",
    "StoredPolicy",
    "SyncLease",
    "SyncLeaseRepository",
    "SyncState",
    "Tenant",
    "TenantAccess",
    "TenantNotFoundError",
    "TenantRepository",
    "TenantStatus",
    "TranscriptRecord",
    "TurnClaim",
    "TurnRepository",
    "conversation_key",
    "UserFilter",
    "UserSnapshot",
    "activity_key",
    "open_store",
    "store_busy",
]
