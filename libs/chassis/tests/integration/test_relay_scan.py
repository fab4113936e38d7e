"""The running relay's scan reads the stored batches' ids beside its work (`OutboxRelay._run`):
on FerretDB 1.24 that read is a read of the whole batch collection, and the events of new
inserts must not wait for it. What the scan finds that nobody here publishes (a crashed
writer's batch) still goes out once the read is done. On each store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from g60_chassis.aggregates import Aggregates
from g60_chassis.batches import batch_collection, waiting
from g60_chassis.bus import MemoryBus
from g60_chassis.outbox import OutboxRelay
from g60_chassis.store import DocumentStore
from libs.chassis.tests.things import Thing, changed

pytestmark = pytest.mark.integration


class SlowScan:
    """The store, except that reading a collection's ids waits until `open` is set."""

    def __init__(self, store: DocumentStore) -> None:
        self.inner, self.open, self.reading = store, asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def ids(self, collection: str, limit: int = 100_000) -> list[str]:
        self.reading.set()
        await self.open.wait()
        return await self.inner.ids(collection, limit)


async def until(check: Any, seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - a condition on another task's state
            await asyncio.sleep(0.01)


async def test_ids_are_in_order_and_bounded(store):
    for id in ["c", "a", "b"]:
        await store.insert("docs", {"_id": id, "version": 1})
    assert await store.ids("docs") == ["a", "b", "c"]
    assert len(await store.ids("docs", limit=2)) == 2
    assert await store.ids("nothing_here") == []


async def test_new_batches_go_out_while_the_scan_reads_and_the_scan_still_recovers(store):
    left = Aggregates(store, "things", Thing)  # nobody told: as if its writer had died
    await left.add_many([Thing(id="old", n=0)], changed)
    slow, bus = SlowScan(store), MemoryBus(keep_log=True)
    relay = OutboxRelay(slow, bus, ["things"], delete_after_s=0.05)  # type: ignore[arg-type]
    things = Aggregates(slow, "things", Thing, relay.notify)  # type: ignore[arg-type]
    await relay.start()
    try:
        async with asyncio.timeout(30):
            await slow.reading.wait()  # the first scan has started its read, and waits
        await things.add(Thing(id="new", n=1), changed)
        await until(lambda: [e.subject for _, e in bus.log] == ["new"])
        assert len(await store.ids(batch_collection("things"))) >= 1  # "old" waits
        slow.open.set()  # the read ends: the crashed writer's batch goes out
        await until(lambda: sorted(e.subject for _, e in bus.log) == ["new", "old"])
    finally:
        await relay.stop()  # its last drain deletes what it published
    assert await waiting(store, "things", 10) == []
    assert [e.subject for _, e in bus.log].count("new") == 1


async def test_the_running_relays_scan_publishes_updates_nobody_handed_over(store):
    bus = MemoryBus(keep_log=True)
    silent = Aggregates(store, "things", Thing)  # nobody told: as if its writer had died
    await silent.add(Thing(id="a", n=1), changed)
    thing = await silent.get("a")
    assert thing is not None
    thing.n = 2
    await silent.save(thing, changed)  # its event waits in the document's own outbox
    relay = OutboxRelay(store, bus, ["things"], delete_after_s=0.05)
    await relay.start()
    try:
        await until(lambda: [(e.subject, e.data["n"]) for _, e in bus.log] == [("a", 1), ("a", 2)])
    finally:
        await relay.stop()
    assert await store.pending("things") == []
