"""The DocumentStore contract on each real backend: SQLite files and a MongoDB-wire server
(FerretDB in tests, MongoDB in production) over TCP. Fails, never skips, if the server is down."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.counters import STORE_LOCK_WAITS
from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.ratelimit import Rate, SharedBuckets
from g60_chassis.store import DuplicateKey, VersionConflict
from g60_chassis.synced_buckets import SyncedBuckets

pytestmark = pytest.mark.integration


async def test_insert_get_and_duplicate(store):
    await store.insert("c", {"_id": "a", "x": 1}, [{"id": "e1", "topic": "t"}])
    doc = await store.get("c", "a")
    assert doc["x"] == 1 and doc["version"] == 1 and doc["outbox"] == [{"id": "e1", "topic": "t"}]
    with pytest.raises(DuplicateKey):
        await store.insert("c", {"_id": "a", "x": 2})
    assert await store.get("c", "missing") is None


async def test_update_is_compare_and_set_and_appends_events(store):
    await store.insert("c", {"_id": "a", "x": 1}, [{"id": "e1"}])
    assert await store.update("c", {"_id": "a", "x": 2}, 1, [{"id": "e2"}]) == 2
    with pytest.raises(VersionConflict):
        await store.update("c", {"_id": "a", "x": 3}, 1)
    doc = await store.get("c", "a")
    assert doc["x"] == 2 and doc["version"] == 2
    assert [e["id"] for e in doc["outbox"]] == ["e1", "e2"]


async def test_pending_and_mark_sent_leave_the_version_alone(store):
    await store.insert("c", {"_id": "a"}, [{"id": "e1"}, {"id": "e2"}])
    await store.insert("c", {"_id": "b"})
    assert [d["_id"] for d in await store.pending("c")] == ["a"]
    entries = (await store.get("c", "a"))["outbox"]
    await store.mark_sent("c", "a", entries[:1])
    doc = await store.get("c", "a")
    assert [e["id"] for e in doc["outbox"]] == ["e2"] and doc["version"] == 1
    await store.mark_sent("c", "a", doc["outbox"])
    assert await store.pending("c") == []


async def test_find_filters_by_equality_and_pages_by_id(store):
    for i in range(7):
        await store.insert("c", {"_id": f"d{i}", "kind": "odd" if i % 2 else "even", "ok": True})
    first = await store.find("c", {"kind": "even"}, limit=2)
    assert [d["_id"] for d in first] == ["d0", "d2"]
    rest = await store.find("c", {"kind": "even", "ok": True}, after_id="d2", limit=10)
    assert [d["_id"] for d in rest] == ["d4", "d6"]


class Counter(BaseModel):
    id: str
    n: int = 0
    version: int = 0


async def test_delete_many_removes_those_ids_only_and_their_index_entries(store):
    await store.ensure_index("c", "k")
    for id in ("a", "b", "c"):
        await store.insert("c", {"_id": id, "k": "same"})
    await store.delete_many("c", ["a", "c", "missing"])
    await store.delete_many("c", [])
    assert [d["_id"] for d in await store.find("c", {"k": "same"})] == ["b"]
    assert await store.get("c", "a") is None
    with pytest.raises(VersionConflict):  # a compare-and-set on a deleted document
        await store.update("c", {"_id": "a", "k": "x"}, 1)
    await store.insert("c", {"_id": "a", "k": "again"})  # the id is free again
    assert (await store.get("c", "a"))["version"] == 1


async def test_concurrent_read_modify_write_loses_nothing(store):
    counters = Aggregates(store, "counters", Counter)
    await counters.add(Counter(id="c"))

    async def bump() -> None:
        async def attempt() -> None:
            c = await counters.get("c")
            c.n += 1
            await counters.save(c)

        await retry_on_conflict(attempt)

    await asyncio.gather(*(bump() for _ in range(20)))
    final = await counters.get("c")
    assert final.n == 20 and final.version == 21


async def test_a_unique_index_refuses_a_second_value_even_concurrently(store):
    await store.ensure_index("ents", "uscc")  # a plain one from an older release is replaced
    await store.ensure_index("ents", "uscc", unique=True)
    await store.ensure_index("ents", "uscc", unique=True)  # idempotent
    results = await asyncio.gather(
        *(store.insert("ents", {"_id": f"e{i}", "uscc": "U1"}) for i in range(20)),
        return_exceptions=True,
    )
    clashes = [r for r in results if isinstance(r, DuplicateKey)]
    assert len(clashes) == 19 and {c.field for c in clashes} == {"uscc"}
    assert len(await store.find("ents", {"uscc": "U1"})) == 1
    await store.insert("ents", {"_id": "x", "uscc": "U2"})
    with pytest.raises(DuplicateKey) as same_id:
        await store.insert("ents", {"_id": "x", "uscc": "U3"})
    assert same_id.value.field == "_id"
    with pytest.raises(DuplicateKey) as changed:
        await store.update("ents", {"_id": "x", "uscc": "U1"}, 1)
    assert changed.value.field == "uscc"
    assert (await store.get("ents", "x"))["uscc"] == "U2"


async def test_rate_buckets_on_the_store_give_exactly_the_burst_under_concurrency(store):
    rate = Rate(per_s=0.001, burst=5)
    buckets = SharedBuckets(store)
    taken = await asyncio.gather(*(buckets.take("key:k", rate) for _ in range(20)))
    assert sum(d.allowed for d in taken) == 5
    other = SharedBuckets(store)  # another service on the same store: the same bucket
    assert not (await other.take("key:k", rate)).allowed


async def test_synced_rate_buckets_give_the_burst_and_a_restart_starts_from_the_store(store):
    rate = Rate(per_s=0.001, burst=5)
    buckets = SyncedBuckets(store, sync_s=0.05)  # the tokens go to the store within 50 ms
    taken = await asyncio.gather(*(buckets.take("key:s", rate) for _ in range(20)))
    assert sum(d.allowed for d in taken) == 5
    for _ in range(100):  # the background sync: its write lands
        doc = await store.get("rate_buckets", "key:s")
        if doc is not None:
            break
        await asyncio.sleep(0.02)
    restarted = SyncedBuckets(store)  # another process (or a restart): the same bucket
    assert not (await restarted.take("key:s", rate)).allowed


async def test_insert_many_reports_the_existing_and_mark_sent_many_empties_outboxes(store):
    await store.insert("c", {"_id": "a", "x": 0})
    entries = {k: [{"id": f"{k}1", "topic": "t", "data": {"n": 1}}, {"id": f"{k}2"}] for k in "bc"}
    existed = await store.insert_many(
        "c",
        [({"_id": "a", "x": 1}, [{"id": "a1"}]), *(({"_id": k}, e) for k, e in entries.items())],
    )
    assert existed == {"a"}
    assert (await store.get("c", "a"))["x"] == 0
    # entries exactly as written (the relay marks an inserted document without reading it)
    await store.mark_sent_many("c", {"b": entries["b"], "c": entries["c"][:1]})
    assert (await store.get("c", "b"))["outbox"] == []
    assert [e["id"] for e in (await store.get("c", "c"))["outbox"]] == ["c2"]
    assert [d["_id"] for d in await store.pending("c")] == ["c"]


async def test_insert_many_names_another_unique_field_it_breaks(store):
    await store.ensure_index("c", "code", unique=True)
    await store.insert("c", {"_id": "a", "code": "x"})
    with pytest.raises(DuplicateKey) as clash:
        await store.insert_many("c", [({"_id": "b", "code": "x"}, [])])
    assert clash.value.field == "code"


async def test_a_whole_outbox_sent_at_its_version_leaves_nothing_pending(store):
    entries = [{"id": "e1"}, {"id": "e2"}]
    await store.insert_many("c", [({"_id": "a"}, entries), ({"_id": "b"}, [{"id": "b1"}])])
    await store.mark_sent_many("c", {"a": entries, "b": [{"id": "b1"}]}, {"a": 1, "b": 1})
    assert (await store.get("c", "a"))["outbox"] == [] and await store.pending("c") == []
    assert (await store.get("c", "a"))["version"] == 1


async def test_events_added_after_the_read_stay_pending_when_the_read_is_marked(store):
    # the relay read version 1's outbox; a write added e2 before its mark: e2 is not lost
    await store.insert("c", {"_id": "a"}, [{"id": "e1"}])
    read = (await store.get("c", "a"))["outbox"]
    await store.update("c", {"_id": "a", "x": 1}, 1, [{"id": "e2"}])
    await store.mark_sent_many("c", {"a": read}, {"a": 1})
    assert [[e["id"] for e in d["outbox"]] for d in await store.pending("c")] == [["e2"]]
    doc = (await store.pending("c"))[0]
    await store.mark_sent_many("c", {"a": doc["outbox"]}, {"a": doc["version"]})
    assert await store.pending("c") == []


async def test_the_pending_scan_pages_past_outboxes_emptied_entry_by_entry(store):
    for k in "abcde":
        await store.insert("c", {"_id": k}, [{"id": f"{k}1"}])
    for k in "abc":  # emptied without `whole`: a flag may stay up where the store keeps one
        await store.mark_sent("c", k, [{"id": f"{k}1"}])
    assert [d["_id"] for d in await store.pending("c", limit=2)] == ["d", "e"]
    assert [d["_id"] for d in await store.pending("c", limit=2)] == ["d", "e"]


async def test_documents_written_without_the_pending_flag_are_found_once_flagged():
    # an older release wrote no `outbox_pending`: the first scan of a collection flags them
    url = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
    name = f"test_{uuid.uuid4().hex[:10]}"
    s = MongoDocumentStore(url, name, timeout_ms=3000)
    try:
        raw = s._db["c"]
        await raw.insert_many(
            [
                {"_id": "old1", "version": 1, "outbox": [{"id": "e1"}]},
                {"_id": "old2", "version": 1, "outbox": []},
            ]
        )
        assert [d["_id"] for d in await s.pending("c")] == ["old1"]
        assert (await raw.find_one({"_id": "old2"}))["outbox_pending"] is False
    finally:
        await s._client.drop_database(name)
        await s.close()


async def test_update_many_writes_each_compare_and_set_and_reports_the_lost_ones(store):
    await store.insert("c", {"_id": "a", "x": 1}, [{"id": "e1"}])
    await store.insert("c", {"_id": "b", "x": 1})
    await store.insert("c", {"_id": "d", "x": 1})
    await store.update("c", {"_id": "d", "x": 2}, 1)  # d is at version 2: a stale write loses
    lost = await store.update_many(
        "c",
        [
            ({"_id": "a", "x": 10}, 1, [{"id": "e2"}]),
            ({"_id": "b", "x": 20}, 1, []),
            ({"_id": "d", "x": 30}, 1, [{"id": "e3"}]),
            ({"_id": "gone", "x": 40}, 1, []),
        ],
    )
    assert lost == {"d", "gone"}
    a, b, d = [await store.get("c", k) for k in ("a", "b", "d")]
    assert (a["x"], a["version"], [e["id"] for e in a["outbox"]]) == (10, 2, ["e1", "e2"])
    assert (b["x"], b["version"], b["outbox"]) == (20, 2, [])
    assert (d["x"], d["version"], d["outbox"]) == (2, 2, [])  # left as it was
    assert await store.get("c", "gone") is None
    assert [p["_id"] for p in await store.pending("c")] == ["a"]
    assert await store.update_many("c", []) == set()


async def test_save_many_bumps_the_saved_and_hands_back_the_lost(store):
    counters = Aggregates(store, "counters", Counter)
    one, two = await counters.add(Counter(id="one")), await counters.add(Counter(id="two"))
    stale = Counter(id="two", n=5, version=1)
    await counters.save(two.model_copy(update={"n": 1}))  # two moves on to version 2
    one.n = 3
    lost = await counters.save_many([(one, None), (stale, None)])
    assert lost == [stale] and stale.version == 1  # left at the version it was read at
    assert (await counters.get("one")) == Counter(id="one", n=3, version=2)
    assert (await counters.get("two")) == Counter(id="two", n=1, version=2)


async def test_set_fields_updates_fields_bumps_the_version_and_names_the_absent(store):
    await store.ensure_index("c", "on")
    await store.insert("c", {"_id": "a", "x": 1, "on": False, "big": {"k": [1, 2]}}, [{"id": "e1"}])
    await store.insert("c", {"_id": "b", "x": 2, "on": True})
    await store.insert("c", {"_id": "d", "x": 3, "on": False})
    changes = {k: {"on": True, "at": 7} for k in ("a", "b", "missing")}
    assert await store.set_fields("c", changes, unless="on") == {"missing"}
    a, b, d = [await store.get("c", k) for k in ("a", "b", "d")]
    # a: the fields set, the version bumped, the rest (its outbox too) as it was
    assert (a["on"], a["at"], a["x"], a["big"], a["version"]) == (True, 7, 1, {"k": [1, 2]}, 2)
    assert [e["id"] for e in a["outbox"]] == ["e1"]
    assert (b["on"], "at" in b, b["version"]) == (True, False, 1)  # `unless`: left as it was
    assert (d["on"], d["version"]) == (False, 1)  # not asked
    assert await store.get("c", "missing") is None
    assert [x["_id"] for x in await store.pending("c")] == ["a"]
    with pytest.raises(VersionConflict):  # a compare-and-set that read before the field update
        await store.update("c", {"_id": "a", "x": 5}, 1)
    assert await store.set_fields("c", {"a": {"on": False}, "b": {"on": False}}) == set()
    assert [(await store.get("c", k))["version"] for k in ("a", "b")] == [3, 2]
    assert [x["_id"] for x in await store.find("c", {"on": True})] == []  # the index follows
    assert [x["_id"] for x in await store.find("c", {"on": False})] == ["a", "b", "d"]
    assert await store.set_fields("c", {}) == set()
    quiet = {"a": {"on": True}, "missing": {"on": True}}  # nobody asks which are absent
    assert await store.set_fields("c", quiet, unless="on", report_absent=False) == set()
    assert (await store.get("c", "a"))["on"] and await store.get("c", "missing") is None


async def test_set_fields_at_the_version_read_appends_events_and_names_the_lost(store):
    """A retraction's write: a compare-and-set of a few fields carrying its event."""
    await store.ensure_index("c", "status")
    await store.insert("c", {"_id": "a", "status": "p", "big": {"k": [1]}}, [{"id": "e1"}])
    await store.insert("c", {"_id": "b", "status": "p"})
    await store.insert("c", {"_id": "m", "status": "p"})
    await store.update("c", {"_id": "m", "status": "p", "n": 1}, 1)  # moved on: version 2
    changes = {k: {"status": "r", "why": "gone"} for k in ("a", "b", "m", "missing")}
    events = {k: [{"id": f"r-{k}", "topic": "t"}] for k in changes}
    expected = dict.fromkeys(changes, 1)
    lost = await store.set_fields(
        "c", changes, report_absent=False, expected=expected, events=events
    )
    assert lost == {"m", "missing"}  # always named: the caller's compare-and-set lost
    a, b, m = [await store.get("c", k) for k in ("a", "b", "m")]
    assert (a["status"], a["why"], a["big"], a["version"]) == ("r", "gone", {"k": [1]}, 2)
    assert [e["id"] for e in a["outbox"]] == ["e1", "r-a"]  # appended to what was there
    assert (b["status"], b["version"], [e["id"] for e in b["outbox"]]) == ("r", 2, ["r-b"])
    assert (m["status"], "why" in m, m["version"], m["outbox"]) == ("p", False, 2, [])
    assert await store.get("c", "missing") is None
    assert [x["_id"] for x in await store.pending("c")] == ["a", "b"]
    assert [x["_id"] for x in await store.find("c", {"status": "r"})] == ["a", "b"]
    assert [x["_id"] for x in await store.find("c", {"status": "p"})] == ["m"]
    # all written: nothing named (and no look-up needed); the version read is the new one
    again = {"a": {"status": "q"}}
    assert await store.set_fields("c", again, expected={"a": 2}, events={}) == set()
    assert (await store.get("c", "a"))["version"] == 3
    with pytest.raises(ValueError):
        await store.set_fields("c", again, unless="status", expected={"a": 3})


async def test_set_fields_under_a_unique_index_raises_duplicate_key(store):
    await store.ensure_index("c", "u", unique=True)
    await store.insert("c", {"_id": "a", "u": "x"})
    await store.insert("c", {"_id": "b", "u": "y"})
    with pytest.raises(DuplicateKey) as raised:
        await store.set_fields("c", {"b": {"u": "x"}})
    assert raised.value.field == "u"
    assert (await store.get("c", "b"))["u"] == "y"


async def test_states_are_the_documents_without_their_outbox_in_the_order_asked(store):
    nested = {"k": [1, {"deep": "年"}]}
    await store.insert("c", {"_id": "a", "x": 1, "nested": nested}, [{"id": "e1", "data": {}}])
    await store.insert("c", {"_id": "b", "x": 2})
    await store.set_fields("c", {"a": {"x": 3}}, events={"a": [{"id": "e2"}]})
    b, missing, a = await store.states("c", ["b", "missing", "a"])
    assert missing is None and b is not None and a is not None
    assert (a["_id"], a["x"], a["version"], a["nested"]) == ("a", 3, 2, nested)
    assert "outbox" not in a and "outbox" not in b
    whole = await store.get("c", "a")
    assert {k: v for k, v in whole.items() if k != "outbox"} == a  # `get` but the outbox
    assert [e["id"] for e in whole["outbox"]] == ["e1", "e2"]  # left as it was
    assert await store.states("c", []) == []
    assert await store.states("c_none", ["a"]) == [None]


async def test_a_write_waiting_for_a_document_lock_is_counted_on_metrics():
    """`g60_store_lock_wait_seconds_total`: how long writes waited for this process's document
    locks (a bulk write holds the locks of all its documents while it runs)."""
    url = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
    name = f"test_{uuid.uuid4().hex[:10]}"
    s = MongoDocumentStore(url, name, timeout_ms=3000)
    waited = STORE_LOCK_WAITS.labels("c")
    try:
        await s.insert("c", {"_id": "a", "x": 1})
        before = waited._value.get()
        async with s._locked("c", ["a"]):  # another writer holds it
            writing = asyncio.create_task(s.set_fields("c", {"a": {"x": 2}}))
            await asyncio.sleep(0.2)
            assert not writing.done()
        assert await writing == set()
        assert waited._value.get() - before >= 0.2
        assert (await s.get("c", "a"))["x"] == 2
    finally:
        await s._client.drop_database(name)
        await s.close()
