"""Group commit of single inserts (`Aggregates(group_adds=True)`): concurrent adds written in
one batch and one insert, each caller answered after its write, an id twice in flight kept
apart (the second sees the first as existing), a failed group write failing its callers and
leaving nothing lost, and the relay publishing every event once."""

from __future__ import annotations

import asyncio

import pytest

from g60_chassis.aggregates import Aggregates, AlreadyExists
from g60_chassis.batches import batch_collection, unsent
from g60_chassis.bus import MemoryBus
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay
from g60_chassis.store import Doc, StoreError
from libs.chassis.tests.things import Thing
from libs.chassis.tests.things import changed as events


class SlowStore(MemoryDocumentStore):
    """Each write is a round trip (others arrive meanwhile); counts the inserts."""

    def __init__(self) -> None:
        super().__init__()
        self.inserts: list[tuple[str, int]] = []
        self.fail_next = False

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next = False
            raise StoreError("the store went away")
        self.inserts.append((collection, 1))
        await super().insert(collection, doc, events)

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        await asyncio.sleep(0)
        self.inserts.append((collection, len(docs)))
        existed = set()
        for doc, evs in docs:
            try:
                await super().insert(collection, doc, evs)
            except Exception:
                existed.add(doc["_id"])
        return existed


async def test_concurrent_adds_are_written_together_and_each_is_answered() -> None:
    store = SlowStore()
    things = Aggregates(store, "things", Thing, group_adds=True)
    added = await asyncio.gather(*(things.add(Thing(id=f"t{i}", n=i), events) for i in range(10)))
    assert [t.id for t in added] == [f"t{i}" for i in range(10)]
    # all ten came before the first write went out: one batch document, one insert
    assert store.inserts == [(batch_collection("things"), 1), ("things", 10)]
    assert await things.add(Thing(id="alone"), events)  # alone: its own two writes
    assert len(store.inserts) == 4
    for i in range(10):
        stored = await things.get(f"t{i}")
        assert stored is not None and stored.n == i
    expected = sorted(["alone", *(f"t{i}" for i in range(10))])
    assert sorted(unsent_ids(await unsent(store, "things"))) == expected  # one event each


def unsent_ids(out: dict[str, list[Doc]]) -> list[str]:
    return [id for id, entries in out.items() for _ in entries]


async def test_one_id_twice_in_flight_goes_in_two_groups_and_the_second_is_a_clash() -> None:
    store = SlowStore()
    things = Aggregates(store, "things", Thing, group_adds=True)
    results = await asyncio.gather(
        things.add(Thing(id="a"), events),
        things.add(Thing(id="b"), events),
        things.add(Thing(id="b", n=2), events),
        return_exceptions=True,
    )
    assert isinstance(results[0], Thing) and isinstance(results[1], Thing)
    assert isinstance(results[2], AlreadyExists) and results[2].field == "_id"
    stored = await things.get("b")
    assert stored is not None and stored.n == 0  # the first one's
    assert unsent_ids(await unsent(store, "things")).count("b") == 1


async def test_a_failed_group_write_fails_its_callers_and_the_next_group_goes_on() -> None:
    store = SlowStore()
    things = Aggregates(store, "things", Thing, group_adds=True)
    assert (await things.add(Thing(id="a"), events)).id == "a"
    store.fail_next = True  # the next group's batch document is not written
    outcome = await asyncio.gather(
        things.add(Thing(id="b"), events), things.add(Thing(id="c"), events), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in outcome)
    assert await things.get("b") is None and await things.get("c") is None  # nothing half-done
    assert (await things.add(Thing(id="d"), events)).id == "d"
    assert sorted(await unsent(store, "things")) == ["a", "d"]


async def test_the_relay_publishes_each_grouped_event_once() -> None:
    store, bus = MemoryDocumentStore(), MemoryBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify, group_adds=True)
    await asyncio.gather(*(things.add(Thing(id=f"t{i}"), events) for i in range(20)))
    await relay.drain()
    assert sorted(e.subject for _, e in bus.log) == sorted(f"t{i}" for i in range(20))
    assert await unsent(store, "things") == {}


@pytest.mark.parametrize("group_adds", [False, True])
async def test_a_duplicate_add_is_refused_either_way(group_adds: bool) -> None:
    things = Aggregates(MemoryDocumentStore(), "things", Thing, group_adds=group_adds)
    await things.add(Thing(id="a"), events)
    with pytest.raises(AlreadyExists):
        await things.add(Thing(id="a"), events)
