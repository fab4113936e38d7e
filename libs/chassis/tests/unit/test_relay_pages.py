"""The relay publishes the updated aggregates' outboxes a page at a time and the batches of new
inserts handed meanwhile before each next page: an insert never waits behind hundreds of
updates (the matcher's allocation flags hundreds of matches at once after a burst)."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from g60_chassis.aggregates import Aggregates
from g60_chassis.batches import made_at, new_batch_id
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import DIRTY_PAGE, OutboxRelay
from libs.chassis.tests.things import Thing
from libs.chassis.tests.things import changed as events


class InsertingBus(MemoryBus):
    """On the first update event it publishes, a new thing is inserted (its batch handed)."""

    def __init__(self) -> None:
        super().__init__(keep_log=True)
        self.things: Aggregates[Thing] | None = None

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await super().publish(topic, envelope)
        if envelope.data["n"] == 1 and self.things is not None:
            things, self.things = self.things, None
            await things.add(Thing(id="new", n=2), events)


async def test_an_insert_handed_during_many_updates_goes_out_after_one_page() -> None:
    store, bus = MemoryDocumentStore(), InsertingBus()
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    count = 4 * DIRTY_PAGE
    await things.add_many([Thing(id=f"t{i:03d}") for i in range(count)], events)
    assert await relay.drain_written() == count
    bus.log.clear()
    for i in range(count):  # every one updated: `count` aggregates to read and publish
        thing = await things.get(f"t{i:03d}")
        assert thing is not None
        thing.n = 1
        await things.save(thing, events)
    bus.things = things
    assert await asyncio.wait_for(relay.drain_written(), 30) == count + 1
    subjects = [e.subject for _, e in bus.log]
    assert sorted(subjects) == sorted([f"t{i:03d}" for i in range(count)] + ["new"])
    assert subjects.index("new") <= 2 * DIRTY_PAGE  # not after the last of the updates


async def test_a_published_batch_is_counted_with_its_age() -> None:
    def count() -> float:
        sample = REGISTRY.get_sample_value(
            "g60_outbox_batch_age_seconds_count", {"collection": "aged"}
        )
        return sample or 0.0

    before = count()
    store, bus = MemoryDocumentStore(), MemoryBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["aged"])
    things = Aggregates(store, "aged", Thing, relay.notify)
    await things.add_many([Thing(id="a"), Thing(id="b")], events)
    assert await relay.drain_written() == 2
    assert count() == before + 1  # one batch
    made = made_at(new_batch_id())
    assert made is not None and abs(made - time.time()) < 5
    assert made_at("b1") is None and made_at("not-hex-at-all-not-hex") is None
