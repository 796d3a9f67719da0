"""Fixtures for dialog tests: a bot over a fresh SQLite store, a fake directory and a clock that stands still."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.dialogs.fakes import ALAN, MARGARET
from tests.dialogs.harness import Chat, Teams, open_teams
from tests.store.support import FakeClock, StoreTarget, sqlite_copy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> StoreTarget:
    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
async def teams(db: StoreTarget, clock: FakeClock) -> AsyncIterator[Teams]:
    async with open_teams(db, clock) as opened:
        yield opened


@pytest.fixture
def agent(teams: Teams) -> Chat:
    """Margaret, a member of the helpdesk group, in her 1:1 chat with Watchword."""
    return teams.chat(MARGARET)


@pytest.fixture
def alan(teams: Teams) -> Chat:
    """Alan, the person the caller claims to be, in his own 1:1 chat with Watchword."""
    return teams.chat(ALAN)
