"""Inserted aggregates' events wait in one batch document beside them (`batches.py`), on each
store: nothing lost whichever write a crash interrupts, nothing published for a document that
never exists, an aggregate's update never published before its insert, documents of the old
layout still relayed. A crash is a store whose next write of one kind fails, then a new relay
(a restarted process) over the same store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from g60_chassis.aggregates import Aggregates, AlreadyExists
from g60_chassis.batches import batch_collection, unsent, waiting
from g60_chassis.bus import MemoryBus
from g60_chassis.outbox import OutboxRelay, outbox_entry
from g60_chassis.store import Doc, DocumentStore
from libs.chassis.tests.things import Thing as Counter
from libs.chassis.tests.things import versioned as changed

pytestmark = pytest.mark.integration


class Thing(Counter):
    code: str | None = None  # unique (the tests' clash under another index)


class Crash(Exception):
    pass


class Crashing:
    """The store, except that the next call named in `fail` (method, collection) raises."""

    def __init__(self, store: DocumentStore) -> None:
        self.inner, self.fail = store, set[tuple[str, str]]()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(collection: str, *args: Any, **kwargs: Any) -> Any:
            if (name, collection) in self.fail:
                self.fail.discard((name, collection))
                raise Crash(f"{name} {collection}")
            return await method(collection, *args, **kwargs)

        return call


def sent(bus: MemoryBus) -> list[tuple[str, int, int]]:
    return [(e.subject, e.data["n"], e.data["v"]) for _, e in bus.log]


async def test_inserted_aggregates_carry_no_outbox_and_one_delete_marks_their_batch(store):
    bus = MemoryBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    assert await things.add_many([Thing(id=f"a{i}", n=i) for i in range(3)], changed) == set()
    assert [len(b["items"]) for b in await waiting(store, "things", 10)] == [3]
    docs = await store.find("things")
    assert [d.get("outbox") or [] for d in docs] == [[], [], []]
    assert await store.pending("things") == []
    assert await relay.drain_written() == 3
    assert sent(bus) == [("a0", 0, 1), ("a1", 1, 1), ("a2", 2, 1)]
    assert await waiting(store, "things", 10) == [] and await unsent(store, "things") == {}
    assert await store.find("things") == docs  # not one of them written again
    assert (await things.get("a1")) == Thing(id="a1", n=1, version=1)


async def test_a_crash_before_the_documents_are_written_loses_nothing(store):
    crashing, bus = Crashing(store), MemoryBus(keep_log=True)
    things = Aggregates(crashing, "things", Thing, OutboxRelay(crashing, bus, ["things"]).notify)
    crashing.fail.add(("insert_many", "things"))
    with pytest.raises(Crash):
        await things.add_many([Thing(id="a", n=1), Thing(id="b", n=2)], changed)
    assert await store.get("things", "a") is None  # the batch alone is stored
    restarted = OutboxRelay(store, bus, ["things"])
    assert await restarted.drain() == 2  # the documents are created, then their events go
    assert [d["_id"] for d in await store.find("things")] == ["a", "b"]
    assert sent(bus) == [("a", 1, 1), ("b", 2, 1)]
    assert await restarted.drain() == 0 and await unsent(store, "things") == {}


async def test_grouped_adds_crashing_before_their_documents_lose_nothing(store):
    crashing, bus = Crashing(store), MemoryBus(keep_log=True)
    relay = OutboxRelay(crashing, bus, ["things"])
    things = Aggregates(crashing, "things", Thing, relay.notify, group_adds=True)
    crashing.fail.add(("insert_many", "things"))  # the group's documents: its batch is stored
    outcome = await asyncio.gather(
        *(things.add(Thing(id=f"g{i}", n=i), changed) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, Crash) for r in outcome)  # every caller: "outcome unknown"
    restarted = OutboxRelay(store, bus, ["things"])
    assert await restarted.drain() == 5  # the batch's documents are created, then published
    assert sorted(sent(bus)) == [(f"g{i}", i, 1) for i in range(5)]
    assert await things.add(Thing(id="h", n=9), changed)  # the next group goes on
    assert await relay.drain() == 1 and await unsent(store, "things") == {}


async def test_a_crash_before_the_relay_had_the_batch_loses_nothing(store):
    bus = MemoryBus(keep_log=True)
    things = Aggregates(store, "things", Thing)  # nobody told: as if the writer died there
    await things.add_many([Thing(id="a", n=1)], changed)
    relay = OutboxRelay(store, bus, ["things"])
    assert await relay.drain() == 1 and sent(bus) == [("a", 1, 1)]
    assert await waiting(store, "things", 10) == []


async def test_a_crash_between_publishing_and_the_delete_publishes_again_with_the_same_ids(store):
    crashing, bus = Crashing(store), MemoryBus(keep_log=True)
    relay = OutboxRelay(crashing, bus, ["things"])
    things = Aggregates(crashing, "things", Thing, relay.notify)
    await things.add(Thing(id="a", n=1), changed)
    crashing.fail.add(("delete_many", batch_collection("things")))
    with pytest.raises(Crash):
        await relay.drain_written()
    assert await OutboxRelay(store, bus, ["things"]).drain() == 1
    first, again = (e for _, e in bus.log)
    assert first.id == again.id  # at least once, with a stable id: consumers dedupe
    assert await unsent(store, "things") == {}


async def test_no_event_for_an_aggregate_another_write_created_even_through_a_recovery(store):
    bus = MemoryBus(keep_log=True)
    await store.insert("things", {"_id": "a", "n": 0})  # created by an earlier delivery
    things = Aggregates(store, "things", Thing)  # its relay never told (a crash)
    assert await things.add_many([Thing(id="a", n=1), Thing(id="b", n=2)], changed) == {"a"}
    assert await OutboxRelay(store, bus, ["things"]).drain() == 1
    assert sent(bus) == [("b", 2, 1)] and (await things.get("a")).n == 0  # type: ignore[union-attr]


async def test_a_recovery_that_inserted_the_documents_first_does_not_fool_the_writer(store):
    class Racing(Crashing):
        """A scan of another process recovers the batch before the writer inserts."""

        async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> Any:
            if collection == "things":
                await OutboxRelay(self.inner, bus, ["things"]).drain()
            return await self.inner.insert_many(collection, docs)

    bus = MemoryBus(keep_log=True)
    racing = Racing(store)
    relay = OutboxRelay(racing, bus, ["things"])
    things = Aggregates(racing, "things", Thing, relay.notify)
    assert await things.add_many([Thing(id="a", n=1)], changed) == set()  # all inserted by us
    await relay.drain_written()
    assert bus.log and len({e.id for _, e in bus.log}) == 1  # once, or again with the same id
    assert await unsent(store, "things") == {}


async def test_an_update_is_never_published_before_the_insert_of_its_aggregate(store):
    bus = MemoryBus(keep_log=True)
    writer = Aggregates(store, "things", Thing)  # another process inserts; its relay is late
    thing = await writer.add(Thing(id="a", n=1), changed)
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    thing.n = 2
    await things.save(thing, changed)  # the update's event in its own outbox
    assert await relay.drain_written() == 0  # waits: its insert's batch is pending
    assert sent(bus) == []
    assert await relay.drain() == 2  # the scan: the batch first, then the update
    assert sent(bus) == [("a", 1, 1), ("a", 2, 2)]
    thing.n = 3
    await things.save(thing, changed)  # its batch is gone now: out at once
    assert await relay.drain_written() == 1 and sent(bus)[-1] == ("a", 3, 3)
    assert await unsent(store, "things") == {}


async def test_a_unique_clash_leaves_no_batch_that_would_create_the_refused_later(store):
    bus = MemoryBus(keep_log=True)
    await store.ensure_index("things", "code", unique=True)
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    await things.add(Thing(id="a", code="x"), changed)
    with pytest.raises(AlreadyExists) as clash:
        await things.add(Thing(id="b", code="x"), changed)
    assert clash.value.field == "code"
    assert await relay.drain() == 1  # a's event; the scan creates no "b"
    assert await store.get("things", "b") is None and await waiting(store, "things", 10) == []
    with pytest.raises(AlreadyExists) as same_id:
        await things.add(Thing(id="a"), changed)
    assert same_id.value.field == "_id"


async def test_documents_of_the_old_layout_are_still_relayed(store):
    bus = MemoryBus(keep_log=True)
    old = Thing(id="a", n=1, version=1)
    entries = [outbox_entry(t, e) for t, e in changed(old)]
    await store.insert("things", {"_id": "a", "n": 1}, entries)  # the outbox in the document
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    await things.add(Thing(id="b", n=2), changed)
    assert await relay.drain() == 2
    assert sorted(sent(bus)) == [("a", 1, 1), ("b", 2, 1)]
    assert await store.pending("things") == [] and await unsent(store, "things") == {}


async def test_an_update_waits_for_a_batch_still_being_written_here_then_follows_it(store):
    class Updating(Crashing):
        """Between the documents' insert and the hand-over, the aggregate is updated and the
        relay runs (another task of this process)."""

        async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> Any:
            existed = await self.inner.insert_many(collection, docs)
            if collection == "things":
                thing = await things.get("a")
                assert thing is not None
                thing.n = 2
                await things.save(thing, changed)
                assert await relay.drain_written() == 0  # held: its batch is not out yet
                assert await relay.drain() == 0  # nor does the scan take over the batch
            return existed

    bus = MemoryBus(keep_log=True)
    updating = Updating(store)
    relay = OutboxRelay(updating, bus, ["things"])
    things = Aggregates(updating, "things", Thing, relay.notify)
    await things.add(Thing(id="a", n=1), changed)
    assert await relay.drain_written() == 2
    assert sent(bus) == [("a", 1, 1), ("a", 2, 2)]
    assert await unsent(store, "things") == {}


async def test_a_batch_whose_writer_failed_is_taken_over_by_the_scan_of_its_own_process(store):
    crashing, bus = Crashing(store), MemoryBus(keep_log=True)
    relay = OutboxRelay(crashing, bus, ["things"])
    things = Aggregates(crashing, "things", Thing, relay.notify)
    crashing.fail.add(("insert_many", "things"))  # the store failed under the insert
    with pytest.raises(Crash):
        await things.add(Thing(id="a", n=1), changed)
    assert await relay.drain_written() == 0  # nothing was handed over
    assert await relay.drain() == 1 and sent(bus) == [("a", 1, 1)]  # not left to its writer
    assert await store.get("things", "a") is not None
