"""The relay publishes many aggregates' events in one batch and marks, per aggregate, only the
events the bus confirmed before the first one it did not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from g60_chassis.bus import MemoryBus, Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay, PublishFailed, outbox_entry


def event(subject: str, n: int) -> Envelope:
    return Envelope(type="thing.changed", source="/t", subject=subject, data={"n": n})


class RecordingBus(MemoryBus):
    """Counts the batches; refuses the events whose `n` is in `refuse`."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        super().__init__(keep_log=True)
        self.batches: list[int] = []
        self.refuse = refuse or set()

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        self.batches.append(len(messages))
        results: list[BaseException | None] = []
        for m in messages:
            if m.envelope.data["n"] in self.refuse:
                results.append(TimeoutError("not confirmed"))
            else:
                await self.publish(m.topic, m.envelope)
                results.append(None)
        return results


async def stored(store: MemoryDocumentStore, aggregates: int, events_each: int) -> None:
    n = 0
    for a in range(aggregates):
        entries = []
        for _ in range(events_each):
            entries.append(outbox_entry("t", event(f"a{a}", n)))
            n += 1
        await store.insert("things", {"_id": f"a{a}"}, entries)


async def test_one_batch_for_many_aggregates_and_all_marked_sent():
    store, bus = MemoryDocumentStore(), RecordingBus()
    await stored(store, aggregates=30, events_each=3)
    relay = OutboxRelay(store, bus, ["things"], batch=200)
    assert await relay.drain() == 90
    assert bus.batches == [90]
    assert await store.pending("things") == []
    by_subject: dict[str, list[int]] = {}
    for _, e in bus.log:
        by_subject.setdefault(e.subject, []).append(e.data["n"])
    assert all(ns == sorted(ns) for ns in by_subject.values())  # each aggregate in order


async def test_an_unconfirmed_event_keeps_itself_and_its_successors_in_the_outbox():
    store, bus = MemoryDocumentStore(), RecordingBus(refuse={4})  # a1's second event
    await stored(store, aggregates=3, events_each=3)  # a0: 0-2, a1: 3-5, a2: 6-8
    relay = OutboxRelay(store, bus, ["things"])
    with pytest.raises(PublishFailed) as failed:
        await relay.drain()
    assert failed.value.failed == 1
    left = {d["_id"]: [e["data"]["n"] for e in d["outbox"]] for d in await store.pending("things")}
    assert left == {"a1": [4, 5]}  # 3 went out; 5 did too, but waits behind 4
    bus.refuse.clear()
    assert await relay.drain() == 2
    assert await store.pending("things") == []


async def test_written_aggregates_go_out_in_one_batch():
    store, bus = MemoryDocumentStore(), RecordingBus()
    relay = OutboxRelay(store, bus, ["things"])
    await stored(store, aggregates=10, events_each=1)
    for a in range(10):
        relay.notify("things", f"a{a}")
    assert await relay.drain_written() == 10
    assert bus.batches == [10]
    assert relay.published == 10
