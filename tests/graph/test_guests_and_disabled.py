"""Guests and disabled accounts, which every real tenant has (issue 9 item 6): Watchword reads them as such,
refuses to reset them, and the directory sync marks them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from graph.directory import ResetRefusal, ResetRefused, SyncPage
from tests.devtenant.helpers import ThreadedDevTenant
from tests.graph.support import directory_for, state


async def test_guests_and_disabled_accounts_are_read_marked_and_never_reset(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=5, users=40)
    users = state(dt).org.users.values()
    guest = next(u for u in users if u.user_type == "Guest")
    disabled = next(u for u in users if not u.account_enabled)
    assert "#EXT#" in guest.user_principal_name  # devtenant generates them by default
    tenant = dt.ready["tenant_id"]
    pages: list[SyncPage] = []

    async def keep(page: SyncPage) -> None:
        pages.append(page)

    async with directory_for(dt) as directory:
        assert (await directory.load_context(tenant, guest.id)).context.is_guest
        assert not (await directory.load_context(tenant, disabled.id)).context.account_enabled
        for who, why in ((guest, ResetRefusal.GUEST), (disabled, ResetRefusal.DISABLED)):
            with pytest.raises(ResetRefused) as refused:
                await directory.reset_password(tenant, who.id)
            assert refused.value.reason is why
        await directory.sync_users(tenant, None, keep)
    synced = {u.id: u for p in pages for u in p.users}
    assert synced[guest.id].user_type == "Guest" and not synced[disabled.id].account_enabled
    assert state(dt).org.users[guest.id].password is None  # never touched
