"""Connected tenants: consent, health checks, and disconnecting (a soft delete that purges directory data)."""

from __future__ import annotations

import pytest

from store import Store, TenantNotFoundError, TenantStatus, UserSnapshot
from tests.store.support import FakeClock

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
SP = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


async def _connect(store: Store, **overrides: object) -> None:
    await store.tenants.connect(
        TENANT,
        display_name="Contoso",
        granted_permissions=["User.Read.All", "AuditLog.Read.All", "User.Read.All"],
        sp_object_id=SP,
        sp_directory_roles=["Helpdesk Administrator"],
        **overrides,  # type: ignore[arg-type]
    )


async def test_connecting_a_tenant_records_consent_grants_and_role(store: Store, store_clock: FakeClock) -> None:
    await _connect(store)

    tenant = await store.tenants.get(TENANT)

    assert tenant is not None and tenant.status == TenantStatus.CONNECTED
    assert tenant.display_name == "Contoso"
    assert tenant.granted_permissions == ("AuditLog.Read.All", "User.Read.All")
    assert (tenant.sp_object_id, tenant.sp_directory_roles) == (SP, ("Helpdesk Administrator",))
    assert tenant.consented_at == tenant.last_checked_at == store_clock.now


async def test_tenant_ids_are_normalised_and_must_be_guids(store: Store) -> None:
    await store.tenants.connect(TENANT.upper(), display_name="Contoso", granted_permissions=[])

    assert (await store.tenants.get(TENANT)) is not None
    with pytest.raises(ValueError, match="GUID"):
        await store.tenants.get("contoso.onmicrosoft.com")


async def test_health_check_updates_status_grants_and_last_checked_time(
    store: Store, store_clock: FakeClock
) -> None:
    await _connect(store)
    later = store_clock.advance(hours=6)

    tenant = await store.tenants.record_check(
        TENANT, status=TenantStatus.NEEDS_ATTENTION, granted_permissions=["User.Read.All"], sp_directory_roles=[]
    )

    assert tenant.status == TenantStatus.NEEDS_ATTENTION
    assert tenant.granted_permissions == ("User.Read.All",) and tenant.sp_directory_roles == ()
    assert tenant.last_checked_at == later and tenant.consented_at < later


async def test_health_check_of_unknown_tenant_is_refused(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        await store.tenants.record_check(
            TENANT, status=TenantStatus.CONNECTED, granted_permissions=[], sp_directory_roles=[]
        )


async def test_disconnect_keeps_the_tenant_row_but_removes_its_directory_copy(
    store: Store, store_clock: FakeClock
) -> None:
    await _connect(store)
    await store.protected_users.begin_sync(TENANT)
    await store.protected_users.apply_sync_page(
        TENANT, upserts=[UserSnapshot("a1b2c3d4-0000-4000-8000-000000000001", "ann@contoso.com", "Ann")],
        delta_link="https://graph/delta?token=1",
    )

    assert await store.tenants.disconnect(TENANT) is True

    tenant = await store.tenants.get(TENANT)
    assert tenant is not None and tenant.status == TenantStatus.DISCONNECTED and not tenant.is_connected
    assert tenant.disconnected_at == store_clock.now
    assert await store.protected_users.count(TENANT) == 0
    assert await store.protected_users.get_sync_state(TENANT) is None
    assert await store.tenants.disconnect(TENANT) is False


async def test_reconnecting_revives_a_disconnected_tenant(store: Store, store_clock: FakeClock) -> None:
    await _connect(store)
    await store.tenants.disconnect(TENANT)
    store_clock.advance(days=3)

    await _connect(store)

    tenant = await store.tenants.get(TENANT)
    assert tenant is not None and tenant.status == TenantStatus.CONNECTED
    assert tenant.disconnected_at is None and tenant.consented_at == store_clock.now
    assert tenant.created_at < tenant.consented_at


async def test_list_hides_disconnected_tenants_unless_asked(store: Store) -> None:
    other = "9e8d7c6b-5a49-4838-a271-605f4e3d2c1b"
    await _connect(store)
    await store.tenants.connect(other, display_name="Adatum", granted_permissions=[])
    await store.tenants.disconnect(TENANT)

    assert [t.display_name for t in await store.tenants.list_tenants()] == ["Adatum"]
    everyone = await store.tenants.list_tenants(include_disconnected=True)
    assert [t.display_name for t in everyone] == ["Adatum", "Contoso"]
