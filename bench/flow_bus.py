"""The bus half of `make bench-flow`: raw aiokafka against the platform's bus, same broker, same
records (CloudEvents binary mode, keyed by aggregate), same run; and the outbox relay draining
aggregates stored in FerretDB.

    raw producer   AIOKafkaProducer(enable_idempotence=True, acks="all"): send all, await all
    raw consumer   AIOKafkaConsumer, a fresh group, getmany until every record came
    bus publish    KafkaBus.publish_many (what the relay calls), and KafkaBus.publish one at a time
    bus consume    KafkaBus.subscribe with a no-op handler (FastStream, commit after handling)
    relay          OutboxRelay.drain over aggregates whose outbox holds one event each (the
                   layout of updates, and of inserts before batches); and drain_written of
                   the batches Aggregates.add_many handed it (10 aggregates per batch: the
                   layout of inserts, marked sent by one delete per batch)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates
from g60_chassis.bus import Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.kafka import KafkaBus
from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.outbox import OutboxRelay, outbox_entry

Say = Callable[[str], None]


def envelopes(n: int, subjects: int = 1000) -> list[Envelope]:
    """Events shaped like the platform's (a project's state, ~400 bytes of JSON)."""
    return [
        Envelope(
            type="g60.project.posted",
            source="/bench",
            subject=f"prj_{i % subjects:06d}",
            data={
                "id": f"prj_{i % subjects:06d}",
                "enterprise_id": "ent_000001",
                "title": "产线智能化改造 line upgrade",
                "amount": 5_000_000 + i,
                "city": "shanghai",
                "sector": "advanced_manufacturing",
                "stage": "growth",
                "instruments": ["credit_loan", "ip_pledge_loan"],
                "tenor_months": 36,
                "seq": i,
            },
        )
        for i in range(n)
    ]


def records(evs: list[Envelope]) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    return [
        (
            e.subject.encode(),
            e.kafka_value(),
            [(k, v.encode()) for k, v in e.kafka_headers().items()],
        )
        for e in evs
    ]


async def new_topic(bootstrap: str, prefix: str) -> str:
    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def drop_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics(topics)
    with contextlib.suppress(Exception):
        await admin.close()


@dataclass
class BusFigures:
    raw_produce: float
    raw_consume: float
    raw_consume_parsed: float
    bus_publish_many: float
    bus_publish_each: float
    bus_consume: float
    relay: float
    relay_docs: int
    relay_batches: float
    # bus consume / raw consumer + parse, from trials taking turns on the same topic (one
    # trial each ranged 0.13-1.33x across runs: the broker's and the machine's noise)
    consume_ratios: list[float]
    # CPU of this process per record, raw+parse's over the bus's, same trials: the broker's
    # noise (fetch waits) is not in it, the machine's mostly not
    consume_cpu_ratios: list[float]


class Consumed(NamedTuple):
    per_s: float  # records per second, from the group's assignment to the nth record
    cpu_us: float  # this process's CPU per record over the same span


async def raw_produce(bootstrap: str, topic: str, recs: list) -> float:  # type: ignore[type-arg]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(topic, v, key=k, headers=h) for k, v, h in recs]
        await asyncio.gather(*futures)
        return len(recs) / (time.perf_counter() - t0)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, n: int, *, parse: bool = False) -> Consumed:
    """getmany until n records, a commit per batch; with `parse`, each record is also read as a
    CloudEvent (headers decoded, JSON parsed), the least work a real consumer does. The clock
    runs from the group's assignment (fetching starts) to the nth record read, as the bus's."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    with assignment_clock() as assigned:
        consumer.subscribe([topic])
        await consumer.start()
        try:
            got, t1, c1 = 0, 0.0, 0.0
            while got < n:
                batch = await consumer.getmany(timeout_ms=1000)
                got += sum(len(v) for v in batch.values())
                if parse:
                    for recs in batch.values():
                        for r in recs:
                            h = {k: v.decode() for k, v in r.headers}
                            Envelope.from_kafka(h, r.value)
                t1, c1 = time.perf_counter(), time.process_time()
                if batch:
                    await consumer.commit()
            return consumed(n, assigned, t1, c1)
        finally:
            await consumer.stop()


class _Clocked(ConsumerRebalanceListener):
    def __init__(self, inner: ConsumerRebalanceListener | None, at: list[float]) -> None:
        self.inner, self.at = inner, at

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.inner is not None:
            await _maybe(self.inner.on_partitions_revoked(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned and not self.at:
            self.at.extend((time.perf_counter(), time.process_time()))
        if self.inner is not None:
            await _maybe(self.inner.on_partitions_assigned(assigned))


async def _maybe(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def consumed(n: int, assigned: list[float], t1: float, c1: float) -> Consumed:
    t0, c0 = assigned
    return Consumed(n / (t1 - t0), (c1 - c0) / n * 1e6)


@contextlib.contextmanager
def assignment_clock() -> Iterator[list[float]]:
    """When a consumer of this process was first given partitions (its group joined, fetching
    starts): where both consumers' clocks start, so that both count fetching, reading and
    committing every record. (From the first poll that returned records, the raw consumer's
    clock missed the fetch of a topic that fits one poll: 5,000 records "read" at 474 M/s.)"""
    at: list[float] = []
    subscribe = AIOKafkaConsumer.subscribe

    def clocked(self: AIOKafkaConsumer, *args: Any, listener: Any = None, **kw: Any) -> Any:
        return subscribe(self, *args, listener=_Clocked(listener, at), **kw)

    AIOKafkaConsumer.subscribe = clocked  # type: ignore[method-assign]
    try:
        yield at
    finally:
        AIOKafkaConsumer.subscribe = subscribe  # type: ignore[method-assign]


async def bus_publish(bootstrap: str, topic: str, evs: list[Envelope], *, many: bool) -> float:
    bus = KafkaBus(bootstrap, client_id="bench")
    bus.declare(topic)
    await bus.start()
    try:
        t0 = time.perf_counter()
        if many:
            results = await bus.publish_many([Outgoing(topic, e) for e in evs])
            assert all(r is None for r in results), next(r for r in results if r)
        else:
            for e in evs:
                await bus.publish(topic, e)
        return len(evs) / (time.perf_counter() - t0)
    finally:
        await bus.stop()


async def bus_consume(bootstrap: str, topic: str, n: int) -> Consumed:
    """KafkaBus.subscribe with a no-op handler; the clock runs from the group's assignment to
    the nth handler call (as `raw_consume`'s, to the nth record read)."""
    bus = KafkaBus(bootstrap, client_id="bench")
    seen, done = 0, asyncio.Event()

    async def noop(envelope: Envelope) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    bus.subscribe(topic, f"bench-bus-{uuid.uuid4().hex[:6]}", noop)
    with assignment_clock() as assigned:
        await bus.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=600)
            t1, c1 = time.perf_counter(), time.process_time()
        finally:
            await bus.stop()
    return consumed(n, assigned, t1, c1)


TRIALS = 5


async def consume_trials(
    bootstrap: str, topic: str, n: int, trials: int, say: Say
) -> tuple[list[float], list[float]]:
    """Bus consume / raw consumer + parse, `trials` times, the two taking turns on the same
    records (fresh consumer groups each time), so a noisy moment hits both alike: the rate
    ratios, and the CPU-per-record ratios (raw's over the bus's: above 1, the bus is cheaper)."""
    rates, cpus = [], []
    for i in range(trials):
        raw = await raw_consume(bootstrap, topic, n, parse=True)
        bus = await bus_consume(bootstrap, topic, n)
        rates.append(bus.per_s / raw.per_s)
        cpus.append(raw.cpu_us / bus.cpu_us)
        say(
            f"  trial {i + 1}/{trials}: raw+parse {raw.per_s:,.0f} /s {raw.cpu_us:.1f} us CPU,"
            f" bus {bus.per_s:,.0f} /s {bus.cpu_us:.1f} us CPU;"
            f" {rates[-1]:.2f}x rate, {cpus[-1]:.2f}x CPU"
        )
    return rates, cpus


@contextlib.asynccontextmanager
async def _relay_setup(
    bootstrap: str, mongo_url: str, topic: str
) -> AsyncIterator[tuple[MongoDocumentStore, KafkaBus]]:
    """A fresh FerretDB database and a started bus; both cleaned up after."""
    store = MongoDocumentStore(mongo_url, f"bench_relay_{uuid.uuid4().hex[:6]}")
    bus = KafkaBus(bootstrap, client_id="bench")
    bus.declare(topic)
    await bus.start()
    try:
        yield store, bus
    finally:
        await bus.stop()
        with contextlib.suppress(Exception):
            await store._client.drop_database(store._db.name)  # bench cleanup
        await store.close()


async def relay_drain(bootstrap: str, mongo_url: str, topic: str, docs: int) -> float:
    async with _relay_setup(bootstrap, mongo_url, topic) as (store, bus):
        evs = envelopes(docs, subjects=docs)
        for e in evs:
            await store.insert("aggs", {"_id": e.subject, "n": 1}, [outbox_entry(topic, e)])
        relay = OutboxRelay(store, bus, ["aggs"])
        t0 = time.perf_counter()
        sent = await relay.drain()
        elapsed = time.perf_counter() - t0
        assert sent == docs, (sent, docs)
        assert not await store.pending("aggs", 1)
        return docs / elapsed


class _Agg(BaseModel):
    id: str
    n: int = 1
    version: int = 0


async def relay_batches(bootstrap: str, mongo_url: str, topic: str, docs: int) -> float:
    """The insert path: aggregates added 10 at a time, each with one event; the relay drains
    the batches it was handed (publish, then one delete per batch)."""
    async with _relay_setup(bootstrap, mongo_url, topic) as (store, bus):
        by_id = {e.subject: e for e in envelopes(docs, subjects=docs)}
        relay = OutboxRelay(store, bus, ["aggs"])
        aggs = Aggregates(store, "aggs", _Agg, relay.notify)
        ids = list(by_id)
        for i in range(0, docs, 10):
            batch = [_Agg(id=k) for k in ids[i : i + 10]]
            await aggs.add_many(batch, lambda a: [(topic, by_id[a.id])])
        t0 = time.perf_counter()
        sent = await relay.drain_written()
        elapsed = time.perf_counter() - t0
        assert sent == docs, (sent, docs)
        return docs / elapsed


async def run(bootstrap: str, mongo_url: str, n: int, relay_docs: int, say: Say) -> BusFigures:
    evs = envelopes(n)
    recs = records(evs)
    topics = [await new_topic(bootstrap, p) for p in ("raw", "many", "each")]
    try:
        say(f"raw aiokafka producer: {n:,} records ...")
        rp = await raw_produce(bootstrap, topics[0], recs)
        say(f"  {rp:,.0f} records/s; raw consumer ...")
        rc = (await raw_consume(bootstrap, topics[0], n)).per_s
        say(f"  {rc:,.0f} records/s; raw consumer reading each record as a CloudEvent ...")
        rcp = (await raw_consume(bootstrap, topics[0], n, parse=True)).per_s
        say(f"  {rcp:,.0f} records/s; bus.publish_many ...")
        pm = await bus_publish(bootstrap, topics[1], evs, many=True)
        each_n = min(n, 2000)
        say(f"  {pm:,.0f} events/s; bus.publish one at a time ({each_n:,}) ...")
        pe = await bus_publish(bootstrap, topics[2], evs[:each_n], many=False)
        say(f"  {pe:,.0f} events/s; bus consume, no-op handler ...")
        bc = (await bus_consume(bootstrap, topics[1], n)).per_s
        ratios, cpus = await consume_trials(bootstrap, topics[1], n, TRIALS, say)
        say(f"  relay drain of {relay_docs:,} aggregates in FerretDB ...")
        rl = await relay_drain(bootstrap, mongo_url, topics[2], relay_docs)
        say(f"  {rl:,.0f} events/s; relay of {relay_docs:,} inserted aggregates' batches ...")
        rb = await relay_batches(bootstrap, mongo_url, topics[2], relay_docs)
        say(f"  {rb:,.0f} events/s")
        return BusFigures(rp, rc, rcp, pm, pe, bc, rl, relay_docs, rb, ratios, cpus)
    finally:
        await drop_topics(bootstrap, topics)
