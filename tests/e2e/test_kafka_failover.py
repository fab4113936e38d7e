"""The partition leader of a three-node KRaft cluster killed with SIGKILL while the platform's
bus publishes (idempotent producer, acks=all; replication factor 3, min.insync.replicas 2):
no event the bus confirmed is lost. `make chaos` only: it starts its own cluster
(`KAFKA_NODES=3 deploy/local/infra.sh start-kafka`, ports KAFKA_PORT+2..+7) and stops it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from g60_chassis.bus import Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.kafka import KafkaBus
from tests.e2e.harness import ROOT
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]
ENV = {**os.environ, "KAFKA_NODES": "3"}
ENV.pop("G60_KAFKA_BOOTSTRAP", None)  # the script derives the cluster's


def infra(*args: str) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "deploy/local/infra.sh"), *args],
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return next(p["leader"] for p in described["partitions"] if p["partition"] == partition)
    finally:
        await admin.close()


async def brokers(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=5_000)
    try:
        await admin.start()
        return len((await admin.describe_cluster())["brokers"])
    except Exception:
        return 0
    finally:
        await admin.close()


async def test_partition_leader_killed_loses_no_confirmed_event():
    await asyncio.to_thread(infra, "start-kafka")
    bootstrap = infra("cluster-bootstrap")
    killed: int | None = None
    try:
        await eventually(lambda: _is(brokers(bootstrap), 3), timeout=120, interval=1.0)
        topic = f"failover-{uuid.uuid4().hex[:8]}"
        bus = KafkaBus(bootstrap, client_id="failover", replication_factor=3, min_insync_replicas=2)
        bus.declare(topic)
        await bus.start()
        confirmed: list[str] = []
        sent = 0
        try:
            for batch in range(40):
                if batch == 10:  # the leader of partition 0 crashes mid-stream
                    killed = await leader_of(bootstrap, topic, 0)
                    await asyncio.to_thread(infra, "kill-node", str(killed))
                if batch == 30 and killed is not None:
                    await asyncio.to_thread(infra, "start-node", str(killed))
                events = [
                    Envelope(type="t.v1", source="/failover", subject=f"k{n % 7}", data={"n": n})
                    for n in range(sent, sent + 50)
                ]
                sent += 50
                results = await bus.publish_many([Outgoing(topic, e) for e in events])
                confirmed += [e.id for e, r in zip(events, results, strict=True) if r is None]
                await asyncio.sleep(0.1)
        finally:
            await bus.stop()
        assert len(confirmed) >= sent // 2  # the cluster kept taking writes with one node down
        seen: set[str] = set()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap.split(","),
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:

            async def all_there() -> bool:
                for recs in (await consumer.getmany(timeout_ms=1000)).values():
                    seen.update(dict(r.headers)["ce_id"].decode() for r in recs)
                return set(confirmed) <= seen

            await eventually(all_there, timeout=120, interval=0.1)
        finally:
            await consumer.stop()
    finally:
        await asyncio.to_thread(infra, "stop-kafka")


async def _is(value, expected) -> bool:
    return await value == expected
