"""Topics, consumer lag and dead letters on Kafka (aiokafka's admin client and a group-less
consumer that only reads offsets). The embedded platform's in-process bus has no topics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

DLQ = ".dlq"
READ_TIMEOUT_S = 60.0  # reading a dead-letter queue to its end takes at most this long


@dataclass
class TopicInfo:
    name: str
    partitions: int
    end_offsets: dict[int, int]
    start_offsets: dict[int, int]
    lag: dict[str, int] = field(default_factory=dict)  # consumer group → records behind

    @property
    def size(self) -> int:
        """Records currently held (end minus start, over the partitions)."""
        return sum(self.end_offsets[p] - self.start_offsets.get(p, 0) for p in self.end_offsets)


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: str
    type: str
    original: str
    error: str
    attempts: str


async def topics(bootstrap: str, prefix: str = "") -> list[TopicInfo]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        listed = await admin.list_topics()
        parts = await _partitions(
            admin, sorted(t for t in listed if not t.startswith("__") and t.startswith(prefix))
        )
        names = sorted(parts)
        tps = [TopicPartition(t, p) for t in names for p in parts[t]]
        end = await reader.end_offsets(tps) if tps else {}
        start = await reader.beginning_offsets(tps) if tps else {}
        infos = {
            t: TopicInfo(
                t,
                len(parts[t]),
                {p: end[TopicPartition(t, p)] for p in parts[t]},
                {p: start[TopicPartition(t, p)] for p in parts[t]},
            )
            for t in names
        }
        for group, _ in await _groups(admin):
            committed = await admin.list_consumer_group_offsets(group)
            for tp, meta in committed.items():
                info = infos.get(tp.topic)
                if info is None or meta is None or meta.offset < 0:
                    continue
                behind = max(info.end_offsets.get(tp.partition, 0) - meta.offset, 0)
                info.lag[group] = info.lag.get(group, 0) + behind
        return list(infos.values())
    finally:
        await reader.stop()
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, list[int]]:
    """Each topic's partitions, from the broker (a consumer's cached metadata may not know a
    topic created after it started; unknown topics are left out)."""
    known = set(await admin.list_topics())
    names = [n for n in names if n in known]  # describing a missing topic may create it
    if not names:
        return {}
    described = await admin.describe_topics(names)
    return {
        d["topic"]: sorted(p["partition"] for p in d["partitions"])
        for d in described
        if d.get("error_code", 0) == 0 and d.get("partitions")
    }


async def _groups(admin: AIOKafkaAdminClient) -> list[tuple[str, str]]:
    return [(g[0], g[1]) for g in await admin.list_consumer_groups()]


def dlq_of(topic: str) -> str:
    return topic if topic.endswith(DLQ) else topic + DLQ


async def _dlq_partitions(bootstrap: str, name: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return [TopicPartition(name, p) for p in (await _partitions(admin, [name])).get(name, [])]
    finally:
        await admin.close()


async def dead_letters(bootstrap: str, topic: str, limit: int = 1000) -> list[DeadLetter]:
    """The dead letters held on `<topic>.dlq`, oldest first per partition (read without a
    consumer group: listing commits nothing and moves no replay)."""
    name = dlq_of(topic)
    tps = await _dlq_partitions(bootstrap, name)
    if not tps:
        return []
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        end = await reader.end_offsets(tps)
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        out: list[DeadLetter] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(out) < limit and time.monotonic() < deadline:
            if not [tp for tp in tps if await reader.position(tp) < end[tp]]:
                break  # read up to where the log ended when we started
            batch = await reader.getmany(timeout_ms=1000, max_records=500)
            for records in batch.values():
                for r in records:
                    h = {k: v.decode(errors="replace") for k, v in r.headers}
                    out.append(
                        DeadLetter(
                            r.partition,
                            r.offset,
                            (r.key or b"").decode(errors="replace"),
                            h.get("ce_type", "?"),
                            h.get("dlq_original_topic", name.removesuffix(DLQ)),
                            h.get("dlq_error", ""),
                            h.get("dlq_attempts", ""),
                        )
                    )
        return sorted(out, key=lambda d: (d.partition, d.offset))[:limit]
    finally:
        await reader.stop()


async def purge(bootstrap: str, topic: str) -> int:
    """Delete every dead letter held on `<topic>.dlq` (the log start moves to its end).
    Returns how many were deleted."""
    name = dlq_of(topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        tps = [TopicPartition(name, p) for p in (await _partitions(admin, [name])).get(name, [])]
        if not tps:
            return 0
        end = await reader.end_offsets(tps)
        start = await reader.beginning_offsets(tps)
        held = {tp: end[tp] - start[tp] for tp in tps}
        todo = {tp: RecordsToDelete(end[tp]) for tp in tps if held[tp] > 0}
        if todo:
            await admin.delete_records(todo)
        return sum(held.values())
    finally:
        await reader.stop()
        await admin.close()
