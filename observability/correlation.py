"""The correlation id: one per HTTP request (a Teams turn, a console action) and per pass of background work (the
sweep, the audit-head check...), carried by all that it causes.

The app's middleware (app.py) starts one for every request, and each background loop one per pass; the Graph
client sends it as `client-request-id` (graph/client.py, the header Microsoft Graph echoes and its support asks
for), the audit log keeps it in each row's details (store/audit.py), and every log line carries it
(observability/logs.py). Background work started during a request (a task, the sign-in read) inherits it, as
asyncio copies the context into new tasks.

Imports nothing of ours: any layer may read it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("watchword_correlation_id", default=None)


def current() -> str | None:
    """The correlation id of the request (or background job) this code runs for; None outside one."""
    return _CURRENT.get()


@contextmanager
def correlated(correlation_id: str | None = None) -> Iterator[str]:
    """Run the block under a new correlation id (a GUID, as Graph's `client-request-id` wants) or the given one."""
    value = correlation_id or str(uuid.uuid4())
    token = _CURRENT.set(value)
    try:
        yield value
    finally:
        _CURRENT.reset(token)
