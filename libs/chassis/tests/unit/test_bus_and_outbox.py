"""The delivery policy (retries, dead letters) and the outbox relay on fakes."""

from __future__ import annotations

import pytest

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.batches import unsent
from g60_chassis.bus import DeliveryPolicy, MemoryBus, PermanentError
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay, PublishFailed
from libs.chassis.tests.things import Thing

FAST = DeliveryPolicy(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.001)


def event(subject: str = "a", n: int = 0) -> Envelope:
    return Envelope(type="t.v1", source="/test", subject=subject, data={"n": n})


async def test_transient_failure_is_retried_then_succeeds():
    bus, calls = MemoryBus(policy=FAST), []

    async def flaky(e: Envelope) -> None:
        calls.append(e.id)
        if len(calls) < 3:
            raise RuntimeError("store briefly down")

    bus.subscribe("t", "g", flaky)
    await bus.publish("t", event())
    assert len(calls) == 3 and bus.dead_letters == []


async def test_failing_event_is_dead_lettered_with_headers_and_the_next_is_processed():
    bus, seen = MemoryBus(policy=FAST), []

    async def handler(e: Envelope) -> None:
        if e.data["n"] == 1:
            raise RuntimeError("boom")
        seen.append(e.data["n"])

    bus.subscribe("t", "g", handler)
    for n in range(3):
        await bus.publish("t", event(n=n))
    assert seen == [0, 2]
    [letter] = bus.dead_letters
    assert letter.topic == "t.dlq"
    assert letter.headers["dlq_original_topic"] == "t"
    assert letter.headers["dlq_original_offset"] == "1"
    assert letter.headers["dlq_attempts"] == "3"
    assert "boom" in letter.headers["dlq_error"]
    assert letter.headers["ce_type"] == "t.v1"


async def test_permanent_error_is_not_retried():
    bus, calls = MemoryBus(policy=FAST), []

    async def handler(e: Envelope) -> None:
        calls.append(1)
        raise PermanentError("bad data")

    bus.subscribe("t", "g", handler)
    await bus.publish("t", event())
    assert calls == [1] and bus.dead_letters[0].headers["dlq_attempts"] == "1"


class DownBus(MemoryBus):
    down: bool = True

    async def publish(self, topic: str, envelope: Envelope) -> None:
        if self.down:
            raise ConnectionError("broker down")
        await super().publish(topic, envelope)


async def test_outbox_keeps_events_while_the_bus_is_down_and_publishes_them_once_back():
    store = MemoryDocumentStore()
    bus = DownBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing, relay.notify)
    for i in range(5):
        await things.add(Thing(id=f"t{i}"), lambda t: [("topic", event(t.id, t.version))])
    with pytest.raises(PublishFailed) as failed:
        await relay.drain()
    assert isinstance(failed.value.first, ConnectionError) and failed.value.failed == 5
    assert len(await unsent(store, "things")) == 5  # nothing lost
    bus.down = False
    assert await relay.drain() == 5
    assert sorted(e.subject for _, e in bus.log) == [f"t{i}" for i in range(5)]
    assert await unsent(store, "things") == {}
    assert await relay.drain() == 0  # published once


async def test_compare_and_set_with_retry_never_loses_an_update():
    import asyncio

    store = MemoryDocumentStore()
    things = Aggregates(store, "things", Thing)
    await things.add(Thing(id="x"))

    async def increment() -> None:
        async def attempt() -> None:
            thing = await things.get("x")
            assert thing is not None
            await asyncio.sleep(0)  # let others read the same version
            thing.n += 1
            await things.save(thing)

        await retry_on_conflict(attempt)

    await asyncio.gather(*(increment() for _ in range(25)))
    final = await things.get("x")
    assert final is not None and final.n == 25 and final.version == 26


def test_envelope_round_trips_through_kafka_headers():
    e = event("agg-1", 7)
    back = Envelope.from_kafka(e.kafka_headers(), e.kafka_value())
    assert back == e


def test_malformed_record_is_refused():
    with pytest.raises(ValueError):
        Envelope.from_kafka({"ce_type": "x"}, b"{}")
    with pytest.raises(ValueError):
        Envelope.from_kafka(event().kafka_headers(), b"[1, 2]")


async def test_a_store_that_stays_down_delays_the_event_and_never_dead_letters_it():
    policy = DeliveryPolicy(max_attempts=2, backoff_initial_s=0.001, backoff_max_s=0.001)
    bus, calls = MemoryBus(policy=policy), []

    async def store_down(e: Envelope) -> None:
        calls.append(e.id)
        raise ConnectionRefusedError("store down")

    bus.subscribe("t", "g", store_down)
    with pytest.raises(ConnectionRefusedError):
        await bus.publish("t", event())
    assert len(calls) == 2 and bus.dead_letters == []  # not committed: it comes again
