from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from graph.graph_directory import GraphDirectory
from tests.devtenant.helpers import TINY, ThreadedDevTenant, fresh_tenants
from tests.graph.support import directory_for


@pytest.fixture(scope="module")
def tiny() -> Iterator[ThreadedDevTenant]:
    """The hand-built six-person organisation, consented; shared by a module's read-only tests."""
    dt = ThreadedDevTenant(TINY)
    yield dt
    dt.close()


@pytest.fixture
async def directory(tiny: ThreadedDevTenant) -> AsyncIterator[GraphDirectory]:
    async with directory_for(tiny) as d:
        yield d


@pytest.fixture
def make_tenant() -> Iterator[Callable[..., ThreadedDevTenant]]:
    """Fresh devtenants for tests that change the tenant (consent, users, roles) or need a generated org."""
    yield from fresh_tenants()
