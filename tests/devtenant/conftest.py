from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtenant.state import DevTenantConfig
from tests.devtenant.helpers import QUICK_SIGN_INS, TINY, ThreadedDevTenant


@pytest.fixture(scope="module")
def tenant() -> Iterator[ThreadedDevTenant]:
    """A consented tiny-org devtenant shared by a module's read-only tests."""
    dt = ThreadedDevTenant(TINY)
    yield dt
    dt.close()


@pytest.fixture
def make_tenant() -> Iterator[Callable[..., ThreadedDevTenant]]:
    """Fresh devtenants for tests that change state (consent) or need another configuration."""
    started: list[ThreadedDevTenant] = []

    def make(*, generated: bool = False, **config: Any) -> ThreadedDevTenant:
        dt = ThreadedDevTenant(DevTenantConfig(**{"seed": 1, "users": 20, **QUICK_SIGN_INS, **config}),
                               generated=generated)
        started.append(dt)
        return dt

    yield make
    for dt in started:
        dt.close()
