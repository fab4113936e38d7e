"""The running relay deletes the batches it published in one call per `delete_after_s`
(`sent_batches.py`): every event still goes out at once, the deletes follow together, an
update of a document whose batch waits for its delete is published only after that delete,
and a crash before the delete publishes the batch again with the same event ids."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from g60_chassis.aggregates import Aggregates
from g60_chassis.batches import batch_collection, waiting
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay
from g60_chassis.sent_batches import SentBatches
from libs.chassis.tests.things import Thing
from libs.chassis.tests.things import versioned as events


class Recording(MemoryDocumentStore):
    """Records the batch deletes, in order with what the bus published (`log`)."""

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.log = log

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        if collection == batch_collection("things"):
            self.log.append(("delete", *sorted(ids)))
        await super().delete_many(collection, ids)


class RecordingBus(MemoryBus):
    def __init__(self, log: list[tuple[str, ...]]) -> None:
        super().__init__(keep_log=True)
        self.record = log

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await super().publish(topic, envelope)
        self.record.append(("publish", envelope.subject, str(envelope.data["v"])))


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll `check()` until true; fails the test after `seconds`."""
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - a condition on another task's state
            await asyncio.sleep(0.005)


def published(log: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [e for e in log if e[0] == "publish"]


async def test_batches_published_one_by_one_are_deleted_together() -> None:
    log: list[tuple[str, ...]] = []
    store, bus = Recording(log), RecordingBus(log)
    relay = OutboxRelay(store, bus, ["things"], delete_after_s=30.0)
    things = Aggregates(store, "things", Thing, relay.notify)
    await relay.start()
    try:
        for i in range(5):  # each published before the next is written: five batches
            await things.add(Thing(id=f"a{i}", n=i), events)
            await until(lambda i=i: len(published(log)) == i + 1)
        assert [e for e in log if e[0] == "delete"] == []  # every delete waits
        assert len(await waiting(store, "things", 10)) == 5
    finally:
        await relay.stop()  # its last drain deletes them: one call for the five
    deletes = [e for e in log if e[0] == "delete"]
    assert len(deletes) == 1 and len(deletes[0]) == 6
    assert await waiting(store, "things", 10) == []
    assert [e[1] for e in published(log)] == [f"a{i}" for i in range(5)]  # each once


async def test_the_deletes_follow_within_delete_after_s_while_running() -> None:
    log: list[tuple[str, ...]] = []
    store, bus = Recording(log), RecordingBus(log)
    relay = OutboxRelay(store, bus, ["things"], delete_after_s=0.05)
    things = Aggregates(store, "things", Thing, relay.notify)
    await relay.start()
    try:
        await things.add(Thing(id="a"), events)
        await until(lambda: bool(log) and log[-1][0] == "delete")
        assert await waiting(store, "things", 10) == []
    finally:
        await relay.stop()


async def test_an_update_waiting_for_a_deferred_delete_has_it_done_at_once() -> None:
    log: list[tuple[str, ...]] = []
    store, bus = Recording(log), RecordingBus(log)
    relay = OutboxRelay(store, bus, ["things"], delete_after_s=3600.0)
    things = Aggregates(store, "things", Thing, relay.notify)
    await relay.start()
    try:
        thing = await things.add(Thing(id="a", n=1), events)
        await until(lambda: published(log) == [("publish", "a", "1")])
        thing.n = 2
        await things.save(thing, events)
        await until(lambda: len(published(log)) == 2)  # not an hour later
    finally:
        await relay.stop()
    batch_deleted = next(i for i, e in enumerate(log) if e[0] == "delete")
    assert log.index(("publish", "a", "2")) > batch_deleted  # the insert's batch gone first


async def test_a_crash_before_the_deferred_delete_publishes_again_with_the_same_ids() -> None:
    store, bus = MemoryDocumentStore(), MemoryBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["things"], delete_after_s=3600.0)
    things = Aggregates(store, "things", Thing, relay.notify)
    await relay.start()
    await things.add(Thing(id="a"), events)
    await until(lambda: len(bus.log) == 1)
    assert relay._task is not None
    relay._task.cancel()  # the process dies: no last drain
    with contextlib.suppress(asyncio.CancelledError):
        await relay._task
    restarted = OutboxRelay(store, bus, ["things"])
    assert await restarted.drain() == 1
    first, again = (e for _, e in bus.log)
    assert first.id == again.id and await waiting(store, "things", 10) == []


async def test_flush_is_due_after_the_wait_at_the_bound_or_when_urgent() -> None:
    now = [100.0]
    sent = SentBatches(MemoryDocumentStore(), after_s=1.0, max_kept=3, clock=lambda: now[0])
    assert sent.due_in() is None
    sent.add("things", ["b1"])
    now[0] += 0.25
    assert sent.due_in() == 0.75
    sent.add("things", ["b2", "b3"])  # the bound
    assert sent.due_in() == 0.0
    assert await sent.flush() == ["b1", "b2", "b3"] and sent.due_in() is None
    sent.add("things", ["b4"])
    sent.urgent = True
    assert sent.due_in() == 0.0 and "b4" in sent
    assert await sent.flush() == ["b4"] and not sent.urgent and len(sent) == 0
    assert sent.deletes == 2
