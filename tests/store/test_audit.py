"""The audit log: append-only, hash-chained, verified, queryable, and never holding secrets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from store import AuditFilter, ChainBreak, Store
from store.audit import GENESIS_HASH, entry_hash
from tests.store.sql import execute, tamper
from tests.store.support import FakeClock, StoreTarget

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"


async def _append_n(store: Store, n: int) -> None:
    for i in range(n):
        await store.audit.append(
            action="verification.finished",
            outcome="verified",
            actor="agent:a",
            subject=f"user:{i}",
            tenant_id=TENANT,
            details={"i": i, "bits": [1, 2]},
        )


async def test_appended_rows_form_a_verified_chain(store: Store) -> None:
    await _append_n(store, 5)

    check = await store.audit.verify_chain()

    assert check.ok and check.rows_checked == 5
    assert check.first_broken_seq is None and check.reason is None


async def test_empty_audit_log_verifies(store: Store) -> None:
    check = await store.audit.verify_chain()
    assert check.ok and check.rows_checked == 0


async def test_first_row_links_to_genesis_and_each_row_to_the_one_before(store: Store) -> None:
    first = await store.audit.append(action="a", outcome="ok", actor="system")
    second = await store.audit.append(action="b", outcome="ok", actor="system")

    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert (await store.audit.head()).hash == second.hash


async def test_hash_covers_every_field_canonically(store: Store, store_clock: FakeClock) -> None:
    entry = await store.audit.append(
        action="reset.done", outcome="success", actor="agent:x", subject="user:y", tenant_id=TENANT,
        details={"z": 1, "a": ["é", 2.5]},
    )
    expected = entry_hash(
        seq=1, time=store_clock.now, tenant_id=TENANT, actor="agent:x", subject="user:y",
        action="reset.done", outcome="success", details={"a": ["é", 2.5], "z": 1}, prev_hash=GENESIS_HASH,
    )
    assert entry.hash == expected
    assert entry.time == store_clock.now


def test_hash_format_is_stable() -> None:
    # A known answer: changing the canonical form would make every stored chain fail to verify.
    digest = entry_hash(
        seq=1, time=datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC), tenant_id=TENANT, actor="agent:a",
        subject="user:b", action="reset.done", outcome="success", details={"z": 1, "a": ["é", 2.5]},
        prev_hash=GENESIS_HASH,
    )
    assert digest == "ad6543b0f60b81e4701507f9f501f031a6657ba28a3672f855ea4ffb209c758b"


async def test_tampered_audit_row_is_named_as_first_break(store: Store) -> None:
    await _append_n(store, 5)
    await tamper(store, "UPDATE audit_log SET outcome = 'not_verified' WHERE seq = 3")

    check = await store.audit.verify_chain()

    assert not check.ok
    assert (check.first_broken_seq, check.reason) == (3, ChainBreak.HASH_MISMATCH)
    assert check.rows_checked == 2


async def test_tampered_details_are_detected(store: Store) -> None:
    await _append_n(store, 3)
    await tamper(store, """UPDATE audit_log SET details = '{"i": 99, "bits": [1, 2]}' WHERE seq = 2""")

    check = await store.audit.verify_chain()

    assert (check.first_broken_seq, check.reason) == (2, ChainBreak.HASH_MISMATCH)


async def test_broken_link_is_named_at_the_row_whose_prev_hash_is_wrong(store: Store) -> None:
    await _append_n(store, 4)
    row2 = await _row(store, 2)
    forged = entry_hash(**{**row2, "outcome": "forged"})
    await tamper(store, "UPDATE audit_log SET outcome = 'forged', hash = :h WHERE seq = 2", h=forged)

    check = await store.audit.verify_chain()

    assert (check.first_broken_seq, check.reason) == (3, ChainBreak.BROKEN_LINK)


async def test_deleted_audit_row_is_reported_missing(store: Store) -> None:
    await _append_n(store, 5)
    await tamper(store, "DELETE FROM audit_log WHERE seq = 2")

    check = await store.audit.verify_chain()

    assert (check.first_broken_seq, check.reason, check.rows_checked) == (2, ChainBreak.MISSING_ROW, 1)


async def test_deleted_last_rows_are_reported_as_truncation(store: Store) -> None:
    await _append_n(store, 5)
    await tamper(store, "DELETE FROM audit_log WHERE seq >= 4")

    check = await store.audit.verify_chain()

    assert (check.first_broken_seq, check.reason, check.rows_checked) == (4, ChainBreak.TRUNCATED, 3)


async def test_chain_is_verified_across_batches(store: Store) -> None:
    await _append_n(store, 7)
    await tamper(store, "UPDATE audit_log SET actor = 'agent:b' WHERE seq = 6")

    assert (await store.audit.verify_chain(batch_size=2)).first_broken_seq == 6


async def test_audit_rows_cannot_be_updated_or_deleted(store: Store) -> None:
    await _append_n(store, 2)

    with pytest.raises((DBAPIError, IntegrityError), match="append-only"):
        await execute(store, "UPDATE audit_log SET outcome = 'x' WHERE seq = 1")
    with pytest.raises((DBAPIError, IntegrityError), match="append-only"):
        await execute(store, "DELETE FROM audit_log WHERE seq = 2")
    assert (await store.audit.verify_chain()).ok


async def test_concurrent_audit_appends_keep_one_chain(
    store: Store, store_target: StoreTarget, store_clock: FakeClock
) -> None:
    # A second Store plays a second process: its own pool and its own in-process lock.
    other = await store_target.open(store_clock)
    try:
        appends = [
            (store if i % 2 else other).audit.append(action="a", outcome="ok", actor=f"actor:{i}")
            for i in range(40)
        ]
        entries = await asyncio.gather(*appends)
    finally:
        await other.close()

    assert sorted(e.seq for e in entries) == list(range(1, 41))
    assert len({e.prev_hash for e in entries}) == 40
    check = await store.audit.verify_chain()
    assert check.ok and check.rows_checked == 40


@pytest.mark.parametrize(
    "details",
    [
        {"password": "x"},
        {"temporaryPassword": "x"},
        {"client_secret": "x"},
        {"accessToken": "x"},
        {"Authorization": "Bearer x"},
        {"outer": {"nested": [{"refresh_token": "x"}]}},
        {"answer": "Fluffy"},
    ],
)
async def test_secret_looking_detail_keys_are_refused(store: Store, details: dict) -> None:
    with pytest.raises(ValueError, match="looks like a secret"):
        await store.audit.append(action="reset.done", outcome="success", actor="agent:a", details=details)

    assert (await store.audit.head()).seq == 0


async def test_refused_secret_is_not_echoed_in_the_error(store: Store) -> None:
    with pytest.raises(ValueError) as raised:
        await store.audit.append(action="a", outcome="ok", actor="x", details={"password": "hunter2"})
    assert "hunter2" not in str(raised.value)


async def test_details_that_are_not_plain_json_are_refused(store: Store, store_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="plain JSON"):
        await store.audit.append(action="a", outcome="ok", actor="x", details={"when": store_clock.now})
    with pytest.raises(ValueError, match="plain JSON"):
        await store.audit.append(action="a", outcome="ok", actor="x", details={"ratio": float("nan")})


async def test_over_long_or_empty_fields_are_refused_on_every_backend(store: Store) -> None:
    with pytest.raises(ValueError, match="action"):
        await store.audit.append(action="a" * 65, outcome="ok", actor="x")
    with pytest.raises(ValueError, match="actor"):
        await store.audit.append(action="a", outcome="ok", actor=" ")


async def test_details_round_trip_as_json(store: Store) -> None:
    await store.audit.append(
        action="a", outcome="ok", actor="x", details={"tuple": (1, 2), "text": "Zoë", 3: None}
    )
    (entry,) = (await store.audit.query()).entries

    assert entry.details == {"tuple": [1, 2], "text": "Zoë", "3": None}
    assert (await store.audit.verify_chain()).ok


async def test_query_filters_by_subject_actor_action_outcome_and_tenant(store: Store) -> None:
    await store.audit.append(action="verify", outcome="verified", actor="agent:a", subject="user:1", tenant_id=TENANT)
    await store.audit.append(action="verify", outcome="not_verified", actor="agent:b", subject="user:1",
                             tenant_id=TENANT)
    await store.audit.append(action="reset", outcome="success", actor="agent:a", subject="user:2",
                             tenant_id=OTHER_TENANT)

    async def seqs(**where: str) -> list[int]:
        return [e.seq for e in (await store.audit.query(AuditFilter(**where))).entries]

    assert await seqs(subject="user:1") == [2, 1]
    assert await seqs(actor="agent:a") == [3, 1]
    assert await seqs(action="reset") == [3]
    assert await seqs(outcome="not_verified") == [2]
    assert await seqs(tenant_id=TENANT.upper()) == [2, 1]
    assert await seqs(actor="agent:a", subject="user:2") == [3]


async def test_query_filters_by_time_range(store: Store, store_clock: FakeClock) -> None:
    start = store_clock.now
    for _ in range(4):
        await store.audit.append(action="a", outcome="ok", actor="x")
        store_clock.advance(hours=1)

    page = await store.audit.query(AuditFilter(since=start + timedelta(hours=1), until=start + timedelta(hours=3)))

    assert [e.seq for e in page.entries] == [3, 2]


async def test_query_pages_newest_first_without_overlap(store: Store) -> None:
    await _append_n(store, 7)

    first = await store.audit.query(limit=3)
    second = await store.audit.query(limit=3, before_seq=first.next_before_seq)
    last = await store.audit.query(limit=3, before_seq=second.next_before_seq)

    assert [e.seq for e in first.entries] == [7, 6, 5]
    assert [e.seq for e in second.entries] == [4, 3, 2]
    assert [e.seq for e in last.entries] == [1]
    assert last.next_before_seq is None


async def _row(store: Store, seq: int) -> dict:
    (entry,) = [e for e in (await store.audit.query(limit=1000)).entries if e.seq == seq]
    return {
        "seq": entry.seq, "time": entry.time, "tenant_id": entry.tenant_id, "actor": entry.actor,
        "subject": entry.subject, "action": entry.action, "outcome": entry.outcome,
        "details": entry.details, "prev_hash": entry.prev_hash,
    }


# --- checking from a kept checkpoint, and against a head kept elsewhere ------------------------------------
async def test_checking_from_a_checkpoint_reads_only_the_rows_after_it(store: Store) -> None:
    await _append_n(store, 5)
    checkpoint = await store.audit.head()
    await _append_n(store, 3)

    check = await store.audit.verify_chain(since=checkpoint)

    assert check.ok and check.rows_checked == 3


async def test_a_checkpoint_whose_row_was_edited_fails_the_check(store: Store) -> None:
    await _append_n(store, 5)
    checkpoint = await store.audit.head()
    await _append_n(store, 2)
    await tamper(store, "UPDATE audit_log SET outcome = 'ok' WHERE seq = 5")

    check = await store.audit.verify_chain(since=checkpoint)

    assert (check.ok, check.first_broken_seq, check.reason) == (False, 5, ChainBreak.HASH_MISMATCH)


async def test_a_checkpoint_beyond_the_head_is_truncation(store: Store) -> None:
    await _append_n(store, 5)
    checkpoint = await store.audit.head()
    await tamper(store, "DELETE FROM audit_log WHERE seq >= 4")
    await execute(store, "UPDATE audit_chain_head SET last_seq = 3, "
                         "last_hash = (SELECT hash FROM audit_log WHERE seq = 3)")

    assert (await store.audit.verify_chain()).ok  # rewritten consistently: only an older head can tell
    check = await store.audit.verify_chain(since=checkpoint)

    assert (check.ok, check.reason) == (False, ChainBreak.TRUNCATED)


async def test_a_head_kept_elsewhere_shows_a_consistently_rewritten_tail(store: Store) -> None:
    await _append_n(store, 5)
    kept = await store.audit.head()
    assert (await store.audit.verify_against(kept)).ok
    await tamper(store, "DELETE FROM audit_log WHERE seq >= 4")
    await execute(store, "UPDATE audit_chain_head SET last_seq = 3, "
                         "last_hash = (SELECT hash FROM audit_log WHERE seq = 3)")
    await _append_n(store, 2)  # the log goes on; seq 4 and 5 exist again, with other contents

    check = await store.audit.verify_against(kept)

    assert (check.ok, check.first_broken_seq, check.reason) == (False, 5, ChainBreak.HEAD_MISMATCH)


async def test_a_head_kept_elsewhere_that_the_log_never_reached_is_truncation(store: Store) -> None:
    await _append_n(store, 2)
    kept = await store.audit.head()
    await tamper(store, "DELETE FROM audit_log WHERE seq = 2")
    await execute(store, "UPDATE audit_chain_head SET last_seq = 1, "
                         "last_hash = (SELECT hash FROM audit_log WHERE seq = 1)")

    check = await store.audit.verify_against(kept)

    assert (check.ok, check.reason) == (False, ChainBreak.TRUNCATED)
