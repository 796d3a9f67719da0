"""The Agents SDK Storage over SQL: MemoryStorage's contract, plus e_tag optimistic concurrency."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from microsoft_agents.activity import Activity, ChannelAccount, ConversationAccount
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.app.state.conversation_state import ConversationState
from microsoft_agents.hosting.core.storage import MemoryStorage, StoreItem
from microsoft_agents.testing import TestAdapter

from store import ETagConflictError, SqlStorage, Store
from store.work_count import counting
from tests.store.sql import scalar


class Note(StoreItem):
    def __init__(self, text: str, e_tag: str | None = None) -> None:
        self.text = text
        self.e_tag = e_tag

    def store_item_to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.e_tag is not None:
            data["e_tag"] = self.e_tag
        return data

    @staticmethod
    def from_json_to_store_item(json_data: Any) -> Note:
        return Note(json_data["text"], json_data.get("e_tag"))


async def test_written_item_reads_back_with_an_etag(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"conv/1": Note("hello")})

    items = await storage.read(["conv/1"], target_cls=Note)

    assert items["conv/1"].text == "hello"
    assert items["conv/1"].e_tag


async def test_etag_is_kept_out_of_the_stored_document(store: Store) -> None:
    await store.conversation_state.write({"k": Note("a", e_tag="*")})

    document = await scalar(store, "SELECT document FROM conversation_state WHERE key = 'k'")

    assert (json.loads(document) if isinstance(document, str) else document) == {"text": "a"}


async def test_missing_keys_are_left_out_of_read(store: Store) -> None:
    await store.conversation_state.write({"a": Note("x")})

    items = await store.conversation_state.read(["a", "missing"], target_cls=Note)

    assert list(items) == ["a"]


async def test_stale_etag_write_is_rejected(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"k": Note("v1")})
    first_reader = (await storage.read(["k"], target_cls=Note))["k"]
    second_reader = (await storage.read(["k"], target_cls=Note))["k"]

    first_reader.text = "v2"
    await storage.write({"k": first_reader})
    second_reader.text = "lost update"
    with pytest.raises(ETagConflictError, match="'k'"):
        await storage.write({"k": second_reader})

    assert (await storage.read(["k"], target_cls=Note))["k"].text == "v2"


async def test_matching_etag_write_succeeds_and_changes_the_etag(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"k": Note("v1")})
    item = (await storage.read(["k"], target_cls=Note))["k"]
    old_etag = item.e_tag

    item.text = "v2"
    await storage.write({"k": item})

    stored = (await storage.read(["k"], target_cls=Note))["k"]
    assert stored.text == "v2" and stored.e_tag != old_etag
    assert item.e_tag == stored.e_tag, "the written item carries its new etag"


@pytest.mark.parametrize("e_tag", [None, "*", ""])
async def test_star_or_missing_etag_write_wins(store: Store, e_tag: str | None) -> None:
    storage = store.conversation_state
    await storage.write({"k": Note("v1")})
    await storage.write({"k": Note("v2")})

    await storage.write({"k": Note("last writer", e_tag=e_tag)})

    assert (await storage.read(["k"], target_cls=Note))["k"].text == "last writer"


async def test_write_with_old_etag_after_delete_is_rejected(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"k": Note("v1")})
    item = (await storage.read(["k"], target_cls=Note))["k"]
    await storage.delete(["k"])

    with pytest.raises(ETagConflictError):
        await storage.write({"k": item})
    assert await storage.read(["k"], target_cls=Note) == {}


async def test_conflicting_multi_key_write_writes_nothing(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"a": Note("a1"), "b": Note("b1")})

    with pytest.raises(ETagConflictError):
        await storage.write({"a": Note("a2"), "b": Note("b2", e_tag="not-the-stored-etag")})

    items = await storage.read(["a", "b"], target_cls=Note)
    assert (items["a"].text, items["b"].text) == ("a1", "b1")


async def test_concurrent_writers_with_one_etag_have_exactly_one_winner(store: Store) -> None:
    storage = store.conversation_state
    await storage.write({"k": Note("v1")})
    etag = (await storage.read(["k"], target_cls=Note))["k"].e_tag

    results = await asyncio.gather(
        *(storage.write({"k": Note(f"writer {i}", e_tag=etag)}) for i in range(6)), return_exceptions=True
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ETagConflictError) for r in results if r is not None)


async def test_delete_ignores_missing_keys(store: Store) -> None:
    await store.conversation_state.write({"a": Note("x")})

    await store.conversation_state.delete(["a", "never-written"])

    assert await store.conversation_state.read(["a"], target_cls=Note) == {}


@pytest.mark.parametrize("storage_kind", ["memory", "sql"])
async def test_empty_arguments_raise_value_error_like_memory_storage(store: Store, storage_kind: str) -> None:
    storage = MemoryStorage() if storage_kind == "memory" else store.conversation_state
    for call in (
        storage.read([], target_cls=Note),
        storage.read([""], target_cls=Note),
        storage.write({}),
        storage.write({"": Note("x")}),
        storage.delete([]),
        storage.delete([""]),
    ):
        with pytest.raises(ValueError):
            await call


async def test_item_that_is_not_json_is_refused_with_its_key(store: Store) -> None:
    with pytest.raises(TypeError, match="'k'"):
        await store.conversation_state.write({"k": Note(text=object())})  # type: ignore[arg-type]


def _turn(conversation_id: str = "conv-1") -> TurnContext:
    activity = Activity(
        type="message",
        channel_id="msteams",
        conversation=ConversationAccount(id=conversation_id),
        from_property=ChannelAccount(id="user"),
        recipient=ChannelAccount(id="bot"),
        text="hi",
    )
    return TurnContext(TestAdapter(channel_id="msteams"), activity)


async def test_sdk_conversation_state_saves_twice_in_one_turn_and_reloads(store: Store) -> None:
    state = ConversationState(store.conversation_state)
    turn = _turn()
    await state.load(turn)
    step = state.create_property("step")

    await step.set(turn, "ask_question")
    await state.save(turn)
    await step.set(turn, "check_answer")
    await state.save(turn)

    next_turn, reloaded = _turn(), ConversationState(store.conversation_state)
    await reloaded.load(next_turn)
    assert await reloaded.create_property("step").get(next_turn) == "check_answer"


async def test_two_overlapping_turns_cannot_both_save_sdk_state(store: Store) -> None:
    first, second = ConversationState(store.conversation_state), ConversationState(store.conversation_state)
    first_turn, second_turn = _turn(), _turn()
    await first.load(first_turn)
    await first.create_property("step").set(first_turn, "start")
    await first.save(first_turn)
    await first.load(first_turn, force=True)
    await second.load(second_turn)

    await first.create_property("step").set(first_turn, "from first turn")
    await first.save(first_turn)
    await second.create_property("step").set(second_turn, "from second turn")
    with pytest.raises(ETagConflictError):
        await second.save(second_turn)


def test_sql_storage_is_an_sdk_storage() -> None:
    from microsoft_agents.hosting.core.storage import Storage

    assert issubclass(SqlStorage, Storage)


# --- read ahead with the turn's claim (store/turns.py begin_reading) ---------------------------------------------
async def read_ahead(store: Store, *keys: str) -> None:
    """What the gate does: claim, take the conversation and read `keys`, in one unit; then hand the rows over."""
    turns = store.turns
    _, taken, rows = await turns.begin_reading(None, "chat", turns.holder(), SqlStorage.reading(keys))
    assert taken
    SqlStorage.read_ahead(rows)


async def test_a_turns_state_read_with_its_claim_is_answered_without_another_transaction(store: Store) -> None:
    await store.conversation_state.write({"conv/1": Note("hello")})
    await read_ahead(store, "conv/1", "auth/1")

    with counting(store) as work:
        items = await store.conversation_state.read(["conv/1", "auth/1"], target_cls=Note)
    assert work.transactions == 0
    assert items["conv/1"].text == "hello" and items["conv/1"].e_tag and "auth/1" not in items

    with counting(store) as work:  # answered once: a second read asks the database
        again = await store.conversation_state.read(["conv/1"], target_cls=Note)
    assert work.transactions == 1 and again["conv/1"].e_tag == items["conv/1"].e_tag


async def test_state_read_ahead_is_not_answered_after_the_turn_wrote_it_nor_to_another_task(store: Store) -> None:
    await store.conversation_state.write({"conv/1": Note("before")})
    await read_ahead(store, "conv/1", "conv/2")

    with counting(store) as work:
        await asyncio.create_task(store.conversation_state.read(["conv/2"], target_cls=Note))
    assert work.transactions == 1  # another task (one the turn started, say) reads the database
    await store.conversation_state.write({"conv/1": Note("after")})
    with counting(store) as work:
        items = await store.conversation_state.read(["conv/1"], target_cls=Note)
    assert work.transactions == 1 and items["conv/1"].text == "after"
    SqlStorage.read_ahead(None)
