from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.devtenant.helpers import TINY, ThreadedDevTenant, fresh_tenants


@pytest.fixture(scope="module")
def tenant() -> Iterator[ThreadedDevTenant]:
    """A consented tiny-org devtenant shared by a module's read-only tests."""
    dt = ThreadedDevTenant(TINY)
    yield dt
    dt.close()


@pytest.fixture
def make_tenant() -> Iterator[Callable[..., ThreadedDevTenant]]:
    """Fresh devtenants for tests that change state (consent) or need another configuration."""
    yield from fresh_tenants()
