"""The memory store holds each document as a copy made at the write: what a reader gets is
its own (changing it changes nothing stored), with the outbox as written; indexes and filters
see nested values too; and the stored documents are not objects the garbage collector walks."""

from __future__ import annotations

import gc

import pytest

from g60_chassis.memory_store import MemoryDocumentStore


def _doc(i: int) -> dict[str, object]:
    return {"_id": f"d{i:04d}", "p": "x", "views": {"terms": [{"s": 0.5}, {"s": i}]}}


@pytest.mark.asyncio
async def test_a_read_is_a_copy_with_its_outbox() -> None:
    store = MemoryDocumentStore()
    await store.insert("m", _doc(1), [{"id": "e1", "data": {"n": 1}}])
    got = await store.get("m", "d0001")
    assert got is not None
    got["views"]["terms"][0]["s"] = 9  # the reader's copy
    got["outbox"][0]["data"]["n"] = 9
    again = await store.get("m", "d0001")
    assert again == {**_doc(1), "version": 1, "outbox": [{"id": "e1", "data": {"n": 1}}]}

    doc = {**_doc(1), "p": "y"}
    await store.update("m", doc, 1, [{"id": "e2", "data": {}}])
    doc["views"]["terms"][1]["s"] = -1  # the writer's, after the write
    found = await store.find("m", {"p": "y"})
    assert [d["views"]["terms"][1]["s"] for d in found] == [1]
    assert [e["id"] for e in found[0]["outbox"]] == ["e1", "e2"]
    await store.mark_sent("m", "d0001", [{"id": "e1"}])
    assert [d["outbox"] for d in await store.pending("m")] == [[{"id": "e2", "data": {}}]]


@pytest.mark.asyncio
async def test_nested_values_are_indexed_and_filtered() -> None:
    store = MemoryDocumentStore()
    await store.insert("m", {"_id": "a", "tags": ["x"]})
    await store.ensure_index("m", "tags")
    await store.insert("m", {"_id": "b", "tags": ["x"]})
    await store.insert("m", {"_id": "c", "tags": ["y"]})
    assert [d["_id"] for d in await store.find("m", {"tags": ["x"]})] == ["a", "b"]
    await store.update("m", {"_id": "a", "tags": ["y"]}, 1)
    assert [d["_id"] for d in await store.find("m", {"tags": ["y"]})] == ["a", "c"]
    await store.delete_many("m", ["c"])
    assert [d["_id"] for d in await store.find("m", {"tags": ["y"]})] == ["a"]


@pytest.mark.asyncio
async def test_stored_documents_add_no_objects_for_the_garbage_collector() -> None:
    store = MemoryDocumentStore()
    await store.insert("m", _doc(0))  # the collection's own containers
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1, 1001):  # each: 5 dicts and lists kept as written, before
        await store.insert("m", _doc(i), [{"id": f"e{i}", "data": {"n": i}}])
    gc.collect()
    assert len(gc.get_objects()) - before <= 1000  # each entry, tracked for its outbox


@pytest.mark.asyncio
async def test_stored_documents_without_events_are_not_tracked_at_all() -> None:
    """An entry with no outbox left (none written, or all sent) holds only immutable atomic
    values: the collector never walks it, nor the ids an index keeps per value."""
    store = MemoryDocumentStore()
    await store.ensure_index("m", "p")
    await store.insert("m", _doc(0), [{"id": "e0", "data": {}}])
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1, 1001):
        await store.insert("m", {**_doc(i), "p": f"x{i % 10}"})
    await store.mark_sent("m", "d0000", [{"id": "e0"}])  # its outbox now empty
    gc.collect()
    assert len(gc.get_objects()) - before <= 10  # the index's new values' entries at most
    assert not any(gc.is_tracked(entry) for entry in store._data["m"].values())
    assert [d["_id"] for d in await store.find("m", {"p": "x3"}, limit=3)] == [
        "d0003",
        "d0013",
        "d0023",
    ]
    assert await store.pending("m") == []


@pytest.mark.asyncio
async def test_plain_values_are_kept_as_they_are_and_nested_ones_copied() -> None:
    """Strings and numbers are stored unpickled (immutable: sharing them is a copy); only the
    nested values go through the blob, and a document with none has no blob at all."""
    store = MemoryDocumentStore()
    packed = '{"terms":[{"s":0.5}]}'  # a packed field: JSON text
    await store.insert("m", {"_id": "a", "view": packed, "n": 3, "ok": True, "none": None})
    await store.insert("m", {"_id": "b", "view": packed, "tags": ["x"]})
    entry = store._data["m"]["a"]
    assert entry["view"] is packed and "\x00state" not in entry
    assert "\x00state" in store._data["m"]["b"]
    assert packed.encode() not in store._data["m"]["b"]["\x00state"]  # not pickled again
    got = await store.get("m", "a")
    assert got == {
        "_id": "a",
        "view": packed,
        "n": 3,
        "ok": True,
        "none": None,
        "version": 1,
        "outbox": [],
    }
    b = await store.get("m", "b")
    assert b is not None
    b["tags"].append("y")  # the reader's copy
    assert (await store.get("m", "b")) == {
        "_id": "b",
        "view": packed,
        "tags": ["x"],
        "version": 1,
        "outbox": [],
    }
    await store.ensure_index("m", "view")
    assert [d["_id"] for d in await store.find("m", {"view": packed})] == ["a", "b"]
    await store.update("m", {"_id": "a", "view": "{}", "tags": ["z"]}, 1)
    assert [d["_id"] for d in await store.find("m", {"view": packed})] == ["b"]
    assert [d["_id"] for d in await store.find("m", {"tags": ["z"]})] == ["a"]
