"""The memory store's indexes answer `find` as the scan would: kept up to date by inserts and
updates, built over the documents already there, and never used for a missing field (None)."""

from __future__ import annotations

import pytest

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import DuplicateKey


@pytest.mark.asyncio
async def test_an_indexed_find_answers_as_the_scan_after_inserts_and_updates() -> None:
    store = MemoryDocumentStore()
    await store.insert("m", {"_id": "a", "p": "x"})
    await store.ensure_index("m", "p")  # built over what is stored
    await store.insert("m", {"_id": "b", "p": "x"})
    await store.insert("m", {"_id": "c", "p": "y"})
    await store.insert("m", {"_id": "d"})
    assert [d["_id"] for d in await store.find("m", {"p": "x"})] == ["a", "b"]
    await store.update("m", {"_id": "a", "p": "y"}, 1)  # moves from x to y
    assert [d["_id"] for d in await store.find("m", {"p": "x"})] == ["b"]
    assert [d["_id"] for d in await store.find("m", {"p": "y"})] == ["a", "c"]
    assert [d["_id"] for d in await store.find("m", {"p": "y"}, after_id="a")] == ["c"]
    assert [d["_id"] for d in await store.find("m", {"p": None})] == ["d"]  # missing
    assert await store.find("m", {"p": "y", "q": 1}) == []


@pytest.mark.asyncio
async def test_a_unique_index_refuses_a_second_holder_of_a_value() -> None:
    store = MemoryDocumentStore()
    await store.ensure_index("k", "name", unique=True)
    await store.insert("k", {"_id": "a", "name": "n"})
    with pytest.raises(DuplicateKey):
        await store.insert("k", {"_id": "b", "name": "n"})
    await store.update("k", {"_id": "a", "name": "m"}, 1)
    await store.insert("k", {"_id": "b", "name": "n"})  # freed by the update


@pytest.mark.asyncio
async def test_insert_many_indexes_each_document_at_version_one_and_skips_a_repeated_id() -> None:
    store = MemoryDocumentStore()
    for field in ("p", "version", "tags"):
        await store.ensure_index("m", field)
    caller = {"_id": "a", "p": "x", "version": 7, "tags": ["t"]}  # its version is not kept
    existed = await store.insert_many(
        "m", [(caller, []), ({"_id": "b", "p": "x"}, [{"id": "e"}]), ({"_id": "a", "p": "z"}, [])]
    )
    assert existed == {"a"}  # twice in the call: the first stays
    assert caller["version"] == 7  # the caller's document is not changed
    assert [d["_id"] for d in await store.find("m", {"p": "x"})] == ["a", "b"]
    assert await store.find("m", {"p": "z"}) == []
    assert [d["_id"] for d in await store.find("m", {"version": 1})] == ["a", "b"]
    assert await store.find("m", {"version": 7}) == []
    assert [d["_id"] for d in await store.find("m", {"tags": ["t"]})] == ["a"]
    a = await store.get("m", "a")
    assert a is not None and (a["version"], a["tags"], a["outbox"]) == (1, ["t"], [])
    b = await store.get("m", "b")
    assert b is not None and b["outbox"] == [{"id": "e"}]
