"""`is_member_of`: who counts as a helpdesk agent."""

from __future__ import annotations

import pytest

from graph.directory import UserNotFound
from graph.graph_directory import GraphDirectory
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN, HELPDESK_GROUP, MARGARET


async def test_the_helpdesk_group_holds_margaret_and_not_alan(directory: GraphDirectory,
                                                               tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    assert await directory.is_member_of(tenant, MARGARET, HELPDESK_GROUP)
    assert not await directory.is_member_of(tenant, ALAN, HELPDESK_GROUP)


async def test_an_unknown_user_is_not_found(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    with pytest.raises(UserNotFound):
        await directory.is_member_of(tiny.ready["tenant_id"], "aaaaaaaa-0000-4000-8000-0000000000ff", HELPDESK_GROUP)
