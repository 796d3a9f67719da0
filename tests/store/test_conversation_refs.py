"""Conversation references for proactive messages."""

from __future__ import annotations

import pytest

from store import Store
from tests.store.support import FakeClock

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
USER = "00000000-0000-4000-8000-000000000001"
REFERENCE = {
    "channelId": "msteams",
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
    "conversation": {"id": "a:1abc", "tenantId": TENANT},
    "user": {"id": "29:1xyz", "aadObjectId": USER},
}


async def test_reference_is_saved_replaced_and_deleted(store: Store, store_clock: FakeClock) -> None:
    await store.conversation_refs.save(TENANT, USER, REFERENCE)
    store_clock.advance(minutes=5)
    newer = REFERENCE | {"conversation": {"id": "a:2def", "tenantId": TENANT}}
    await store.conversation_refs.save(TENANT, USER.upper(), newer)

    stored = await store.conversation_refs.get(TENANT, USER)

    assert stored is not None and stored.reference == newer and stored.updated_at == store_clock.now
    assert await store.conversation_refs.delete(TENANT, USER) is True
    assert await store.conversation_refs.get(TENANT, USER) is None
    assert await store.conversation_refs.delete(TENANT, USER) is False


async def test_reference_with_a_secret_looking_key_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="looks like a secret"):
        await store.conversation_refs.save(TENANT, USER, REFERENCE | {"token": "x"})


async def test_the_persons_time_zone_is_kept_with_their_reference_until_they_send_another(store: Store) -> None:
    await store.conversation_refs.save(TENANT, USER, REFERENCE, time_zone="Europe/Paris")
    await store.conversation_refs.save(TENANT, USER, REFERENCE)  # an activity that named no zone (an install)
    stored = await store.conversation_refs.get(TENANT, USER)
    assert stored is not None and stored.time_zone == "Europe/Paris"

    await store.conversation_refs.save(TENANT, USER, REFERENCE, time_zone="America/New_York")
    stored = await store.conversation_refs.get(TENANT, USER)
    assert stored is not None and stored.time_zone == "America/New_York"


async def test_a_reference_saved_without_a_time_zone_has_none(store: Store) -> None:
    await store.conversation_refs.save(TENANT, USER, REFERENCE)
    stored = await store.conversation_refs.get(TENANT, USER)
    assert stored is not None and stored.time_zone is None
