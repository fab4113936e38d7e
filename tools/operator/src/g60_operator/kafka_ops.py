"""Topics, consumer lag and dead letters on Kafka (aiokafka's admin client and a group-less
consumer that only reads offsets). The embedded platform's in-process bus has no topics."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

DLQ = ".dlq"


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
        await reader.topics()  # loads every topic's partitions into the metadata
        names = sorted(
            t for t in await admin.list_topics() if not t.startswith("__") and t.startswith(prefix)
        )
        parts = {t: sorted(reader.partitions_for_topic(t) or ()) for t in names}
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


async def _groups(admin: AIOKafkaAdminClient) -> list[tuple[str, str]]:
    return [(g[0], g[1]) for g in await admin.list_consumer_groups()]


def dlq_of(topic: str) -> str:
    return topic if topic.endswith(DLQ) else topic + DLQ


async def dead_letters(bootstrap: str, topic: str, limit: int = 1000) -> list[DeadLetter]:
    """The dead letters held on `<topic>.dlq`, oldest first per partition (read without a
    consumer group: listing commits nothing and moves no replay)."""
    name = dlq_of(topic)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        await reader.topics()
        tps = [TopicPartition(name, p) for p in sorted(reader.partitions_for_topic(name) or ())]
        if not tps:
            return []
        end = await reader.end_offsets(tps)
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        out: list[DeadLetter] = []
        while len(out) < limit and [tp for tp in tps if await reader.position(tp) < end[tp]]:
            batch = await reader.getmany(timeout_ms=2000, max_records=500)
            if not batch:
                break
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
        await reader.topics()
        tps = [TopicPartition(name, p) for p in sorted(reader.partitions_for_topic(name) or ())]
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
