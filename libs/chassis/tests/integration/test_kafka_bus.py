"""The Kafka adapter of the bus against the real broker: CloudEvents binary mode, per-key order,
commit only after the handler, dead letters with their headers, and the outbox relay."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from g60_chassis.aggregates import Aggregates
from g60_chassis.bus import DeliveryPolicy, Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.kafka import KafkaBus
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay
from libs.chassis.tests.things import Thing

pytestmark = pytest.mark.integration
BOOTSTRAP = os.environ.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
FAST = DeliveryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05)


def name(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex[:8]}"


async def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def read_all(topic: str, n: int, timeout: float = 20.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        group_id=name("reader"),
        enable_auto_commit=False,
    )
    await consumer.start()
    records = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < n and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def test_events_arrive_in_order_per_key_with_cloudevents_headers():
    topic, got = name("order"), []
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)

    async def handler(e: Envelope) -> None:
        got.append((e.subject, e.data["n"], e.type))

    bus.subscribe(topic, name("g"), handler)
    await bus.start()
    try:
        for n in range(30):
            await bus.publish(
                topic, Envelope(type="t.v1", source="/t", subject=f"k{n % 3}", data={"n": n})
            )
        await wait_for(lambda: len(got) == 30)
    finally:
        await bus.stop()
    for key in ("k0", "k1", "k2"):
        ns = [n for k, n, _ in got if k == key]
        assert ns == sorted(ns) and len(ns) == 10
    [record] = [r for r in await read_all(topic, 30) if r.offset == 0 and r.partition == 0][:1] or [
        None
    ]
    if record is not None:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["ce_type"] == "t.v1" and headers["ce_specversion"] == "1.0"
        assert record.key.decode() == headers["ce_subject"]


async def test_malformed_and_failing_records_are_dead_lettered_and_the_next_is_processed():
    topic, group, got = name("dlq"), name("g"), []
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)

    async def handler(e: Envelope) -> None:
        if e.data.get("fail"):
            raise RuntimeError("cannot apply")
        got.append(e.data["n"])

    bus.subscribe(topic, group, handler)
    await bus.start()
    try:
        await bus.broker.publish(b"not json", topic, key=b"k", headers={"ce_id": "x"})
        await bus.publish(
            topic, Envelope(type="t.v1", source="/t", subject="k", data={"fail": True})
        )
        await bus.publish(topic, Envelope(type="t.v1", source="/t", subject="k", data={"n": 1}))
        await wait_for(lambda: got == [1])
    finally:
        await bus.stop()
    letters = await read_all(topic + ".dlq", 2)
    assert len(letters) == 2
    headers = [{k: v.decode() for k, v in r.headers} for r in letters]
    assert all(h["dlq_original_topic"] == topic for h in headers)
    assert {h["dlq_attempts"] for h in headers} == {"1", "3"}  # malformed: at once; failing: 3
    assert letters[0].value == b"not json"


async def test_offsets_are_committed_after_processing_so_a_restart_does_not_redeliver():
    topic, group, got = name("commit"), name("g"), []

    async def handler(e: Envelope) -> None:
        got.append(e.data["n"])

    first = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)
    first.subscribe(topic, group, handler)
    await first.start()
    for n in range(5):
        await first.publish(topic, Envelope(type="t.v1", source="/t", subject="k", data={"n": n}))
    await wait_for(lambda: len(got) == 5)
    await first.stop()

    second = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)
    second.subscribe(topic, group, handler)
    await second.start()
    try:
        await second.publish(topic, Envelope(type="t.v1", source="/t", subject="k", data={"n": 5}))
        await wait_for(lambda: len(got) == 6)
        await asyncio.sleep(1.0)
    finally:
        await second.stop()
    assert got == [0, 1, 2, 3, 4, 5]


async def test_outbox_relay_publishes_stored_events_to_kafka():
    topic = name("outbox")
    store = MemoryDocumentStore()
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)
    bus.declare(topic)
    await bus.start()
    relay = OutboxRelay(store, bus, ["things"])
    things = Aggregates(store, "things", Thing)
    try:
        for i in range(10):
            await things.add(
                Thing(id=f"t{i}"),
                lambda t: [(topic, Envelope(type="t.v1", source="/t", subject=t.id, data={}))],
            )
        assert await relay.drain() == 10
    finally:
        await bus.stop()
    records = await read_all(topic, 10)
    assert sorted(r.key.decode() for r in records) == [f"t{i}" for i in range(10)]
    assert await store.pending("things") == []


async def test_publish_many_then_a_batch_handled_past_its_time_budget_loses_and_repeats_nothing():
    """Sixty events in one publish_many; the consumer's batch budget is zero, so after each
    record it seeks back and returns: every event must still arrive once, in order per key."""
    topic, got = name("budget"), []
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST, batch_budget_s=0.0)

    async def handler(e: Envelope) -> None:
        got.append((e.subject, e.data["n"]))

    bus.subscribe(topic, name("g"), handler)
    await bus.start()
    try:
        results = await bus.publish_many(
            [
                Outgoing(
                    topic, Envelope(type="t.v1", source="/t", subject=f"k{n % 3}", data={"n": n})
                )
                for n in range(60)
            ]
        )
        assert results == [None] * 60
        await wait_for(lambda: len(got) >= 60, timeout=60)
        await asyncio.sleep(1)  # nothing more comes
    finally:
        await bus.stop()
    assert sorted(n for _, n in got) == list(range(60))
    for key in ("k0", "k1", "k2"):
        ns = [n for k, n in got if k == key]
        assert ns == sorted(ns)


async def test_a_batch_handler_takes_consumed_batches_and_a_failing_one_goes_one_by_one():
    topic, batched, single = name("batches"), [], []
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST, handler_batch=20)

    async def one(e: Envelope) -> None:
        if e.data["n"] == 7:
            raise ValueError("bad data")  # dead-lettered after its attempts
        single.append(e.data["n"])

    async def many(es) -> None:
        if any(e.data["n"] == 7 for e in es):
            raise ValueError("a bad one in the batch")
        batched.extend(e.data["n"] for e in es)

    bus.subscribe(topic, name("g"), one, batch=many)
    await bus.start()
    try:
        events = [
            Outgoing(topic, Envelope(type="t.v1", source="/t", subject=f"k{n % 3}", data={"n": n}))
            for n in range(60)
        ]
        assert await bus.publish_many(events) == [None] * 60
        await wait_for(lambda: len(batched) + len(single) >= 59)
        dead = await read_all(topic + ".dlq", 1)
    finally:
        await bus.stop()
    assert sorted(batched + single) == [n for n in range(60) if n != 7]
    assert batched  # most went through the batch handler
    assert [r.value for r in dead] and b'"n":7' in dead[0].value.replace(b" ", b"")
