"""The Kafka bus's consumer on the real broker, where FastStream polls: a record whose headers
are not UTF-8 is dead-lettered without losing its batch; a record that cannot be handled now
comes again without the records handled before it."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from g60_chassis.bus import DeliveryPolicy
from g60_chassis.envelope import Envelope
from g60_chassis.kafka import KafkaBus

from .test_kafka_bus import BOOTSTRAP, FAST, name, read_all, wait_for

pytestmark = pytest.mark.integration


def headers(n: int) -> list[tuple[str, bytes]]:
    e = Envelope(type="t.v1", source="/t", subject="k", data={"n": n})
    return [(k, v.encode()) for k, v in e.kafka_headers().items()]


async def produce_before_consuming(bus: KafkaBus, topic: str, records: list) -> None:
    """Records on the topic before the consumer joins, so that they come in one poll."""
    await bus.ensure_topics({topic, topic + ".dlq"})
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for value, hs in records:
            await producer.send_and_wait(topic, value, key=b"k", headers=hs)
    finally:
        await producer.stop()


async def test_a_record_with_headers_that_are_not_utf8_is_dead_lettered_and_its_batch_kept():
    """FastStream's own batch parser raised on it, and the whole batch was then lost: neither
    handled nor dead-lettered, and passed over by the next commit."""
    topic, got = name("headers"), []
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=FAST)

    async def handler(e: Envelope) -> None:
        got.append(e.data["n"])

    bus.subscribe(topic, name("g"), handler)
    bad = [("ce_id", b"\xff\xfe"), ("ce_type", b"t.v1"), ("ce_source", b"/t")]
    records = [(b'{"n":0}', headers(0)), (b'{"n":1}', bad), (b'{"n":2}', headers(2))]
    await produce_before_consuming(bus, topic, records)
    await bus.start()
    try:
        await wait_for(lambda: len(got) >= 2)
        dead = await read_all(topic + ".dlq", 1)
    finally:
        await bus.stop()
    assert got == [0, 2]
    assert [r.value for r in dead] == [b'{"n":1}']


async def test_a_record_that_cannot_be_handled_now_comes_again_without_those_before_it():
    topic, group, got, fails = name("prefix"), name("g"), [], []
    policy = DeliveryPolicy(max_attempts=1, backoff_initial_s=0.01, backoff_max_s=0.01)
    bus = KafkaBus(BOOTSTRAP, client_id="t", policy=policy)

    async def handler(e: Envelope) -> None:
        if e.data["n"] == 5 and not fails:
            fails.append(5)
            raise ConnectionError("store down")  # transient: sought back, not dead-lettered
        got.append(e.data["n"])

    bus.subscribe(topic, group, handler)
    records = [(f'{{"n":{n}}}'.encode(), headers(n)) for n in range(10)]
    await produce_before_consuming(bus, topic, records)
    await bus.start()
    try:
        await wait_for(lambda: len(got) >= 10)
        await asyncio.sleep(1.0)  # nothing more comes
    finally:
        await bus.stop()
    assert fails == [5]
    assert got == list(range(10))  # 0-4 once: before, the whole batch came again
    assert await read_all(topic + ".dlq", 1, timeout=2) == []
