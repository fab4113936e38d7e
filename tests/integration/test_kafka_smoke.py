"""Smoke test of the real Kafka path: an idempotent producer (acks=all) into a 3-partition
topic, a consumer group that commits by hand, every message back in per-key order, and a new
member of the group resuming from the committed offsets. Fails if the broker is down."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration
BOOTSTRAP = os.environ.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


async def _consume(topic: str, group: str, want: int, timeout: float = 20.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < want and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def test_idempotent_producer_three_partitions_manual_commit_per_key_order():
    topic, group = f"smoke.{uuid.uuid4().hex[:8]}", f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        meta = await admin.describe_topics([topic])
        assert len(meta[0]["partitions"]) == 3
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=f"key-{i % 6}".encode(), value=str(i).encode())
            for i in range(300)
        ]
        metas = await asyncio.gather(*sends)
    finally:
        await producer.stop()
    assert {m.partition for m in metas} == {0, 1, 2}  # the keys spread over the partitions

    got = await _consume(topic, group, 300)
    assert len(got) == 300
    by_key = defaultdict(list)
    for record in got:
        by_key[record.key.decode()].append(int(record.value))
    assert all(values == sorted(values) and len(values) == 50 for values in by_key.values())

    # a new member of the group resumes from the committed offsets: nothing is read twice
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"key-0", value=b"300")
    finally:
        await producer.stop()
    again = await _consume(topic, group, 1)
    assert [int(r.value) for r in again] == [300]

    check = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        committed = {p: await check.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        await check.stop()
    assert sum(committed.values()) == 301
