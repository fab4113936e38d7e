"""Smoke test of the real Kafka path: an idempotent producer (acks=all) into a topic with 3
partitions created by the admin client, a consumer group that commits by hand, every message
back in per-key order, and new members of the group resuming exactly from the committed
offsets. Fails (never skips) when the broker is down."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration

KEYS = [f"key-{k}" for k in range(6)]
PER_KEY = 50


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def _read(consumer: AIOKafkaConsumer, want: int, timeout: float = 30.0) -> list:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[ConsumerRecord] = []
    while len(got) < want and loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            got.extend(records)
    # nothing more is waiting
    for records in (await consumer.getmany(timeout_ms=1000)).values():
        got.extend(records)
    return got


async def _produce(bootstrap: str, topic: str, messages: list[tuple[str, int]]) -> list:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key.encode(), value=str(seq).encode())
            for key, seq in messages
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def test_idempotent_producer_three_partitions_manual_commit_per_key_order(
    kafka_bootstrap, unique_names
):
    topic, group = unique_names.topic(), unique_names.group()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        (described,) = await admin.describe_topics([topic])
        assert len(described["partitions"]) == 3
    finally:
        await admin.close()

    # several keys x many messages, interleaved; the producer is idempotent with acks=all
    messages = [(key, seq) for seq in range(PER_KEY) for key in KEYS]
    metas = await _produce(kafka_bootstrap, topic, messages)
    assert {m.partition for m in metas} == {0, 1, 2}  # the keys spread over the partitions

    # 1. a member of the group reads everything, then commits by hand
    consumer = _consumer(kafka_bootstrap, topic, group)
    await consumer.start()
    try:
        got = await _read(consumer, len(messages))
        await consumer.commit()
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()
    assert len(got) == len(messages)  # all back, none twice
    by_key: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for record in got:
        by_key[record.key.decode()].append(int(record.value))
        partition_of[record.key.decode()].add(record.partition)
    assert by_key == {key: list(range(PER_KEY)) for key in KEYS}  # per-key order preserved
    assert all(len(p) == 1 for p in partition_of.values())  # a key stays on one partition
    assert committed == ends

    # 2. more messages; a second member reads them but commits only half of each partition
    more = [(key, PER_KEY + seq) for seq in range(10) for key in KEYS]
    await _produce(kafka_bootstrap, topic, more)
    consumer = _consumer(kafka_bootstrap, topic, group)
    await consumer.start()
    try:
        second = await _read(consumer, len(more))
        assert len(second) == len(more)  # it resumed after the first commit: nothing re-read
        per_partition: dict[int, list[int]] = defaultdict(list)
        for record in second:
            per_partition[record.partition].append(record.offset)
        half = {TopicPartition(topic, p): offs[len(offs) // 2] for p, offs in per_partition.items()}
        await consumer.commit(half)
    finally:
        await consumer.stop()

    # 3. a third member resumes exactly at the committed offsets
    consumer = _consumer(kafka_bootstrap, topic, group)
    await consumer.start()
    try:
        third = await _read(consumer, sum(len(o) - len(o) // 2 for o in per_partition.values()))
    finally:
        await consumer.stop()
    first_offset: dict[TopicPartition, int] = {}
    for record in third:
        first_offset.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    assert first_offset == half
    expected = {(p, o) for p, offs in per_partition.items() for o in offs[len(offs) // 2 :]}
    assert {(r.partition, r.offset) for r in third} == expected
