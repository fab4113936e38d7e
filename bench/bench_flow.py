"""Benchmark of the event path (`make bench-flow`), with baselines run in the same command.

Figures (the issue's targets in brackets):
  * bus publish rate (KafkaBus.publish_many, what the relay uses) / raw aiokafka idempotent
    producer (acks=all) [>= 0.5x]; bus consume rate with a no-op handler / raw consumer [>= 0.5x]
  * outbox relay: events/s draining aggregates stored in FerretDB
  * end to end, three services as processes, 1,000 offers: needs POSTed at rising rates until
    the flow stops keeping up -> the sustained rate of needs whose proposals are out [>= 100/s];
    p50/p99 POST -> proposal at half that rate [p99 <= 1 s], next to a raw baseline: Kafka
    produce -> consume round trip p99 + one document write p99
  * the issue's burst: 200 needs at 20/s, all proposed within 10 s of the last POST?
  * where the time goes: HTTP (the POST), relay + broker (POST answered -> project event on the
    topic), matcher (project event -> proposal event; includes the matcher's own relay)

Needs Kafka and FerretDB (`make infra-up`); G60_KAFKA_BOOTSTRAP / G60_MONGO_URL.

    .venv/bin/python bench/bench_flow.py            # full
    .venv/bin/python bench/bench_flow.py --quick    # fewer records, 200 offers, short steps
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flow_bus
import flow_calls
import flow_e2e
import flow_tail
import flow_waits
from flow_e2e import median_ms, pct

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


async def round_trip_p99(bootstrap: str, n: int) -> list[float]:
    """Produce one record, wait until a consumer has it; n times."""
    topic = await flow_bus.new_topic(bootstrap, "rtt")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    out = []
    try:
        await producer.send_and_wait(topic, b"warm", key=b"k")
        await consumer.getone()
        for i in range(n):
            t = time.perf_counter()
            await producer.send_and_wait(topic, str(i).encode(), key=b"k")
            await consumer.getone()
            out.append(time.perf_counter() - t)
    finally:
        await producer.stop()
        await consumer.stop()
        await flow_bus.drop_topics(bootstrap, [topic])
    return out


async def write_p99(mongo_url: str, n: int) -> list[float]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    name = f"bench_write_{uuid.uuid4().hex[:6]}"
    out = []
    try:
        coll = client[name]["docs"]
        await coll.insert_one({"_id": "warm"})
        for i in range(n):
            t = time.perf_counter()
            await coll.insert_one({"_id": f"d{i}", "n": i, "outbox": [{"id": f"e{i}"}]})
            out.append(time.perf_counter() - t)
    finally:
        await client.drop_database(name)
        await client.close()
    return out


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--logs", help="keep the services' logs in this directory")
    ap.add_argument("--only-e2e", action="store_true", help="skip the bus figures (faster)")
    ap.add_argument(
        "--rates",
        type=lambda text: [int(r) for r in text.replace(",", " ").split()],
        help='the end-to-end steps in needs/s, e.g. "40 80 100 120" (default: doubling to 80 '
        "quick, 160 full)",
    )
    args = ap.parse_args()
    kafka_port = os.environ.get("KAFKA_PORT", "9092")
    mongo_port = os.environ.get("FERRETDB_PORT", "27017")
    bootstrap = os.environ.setdefault("G60_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka_port}")
    mongo = os.environ.setdefault("G60_MONGO_URL", f"mongodb://127.0.0.1:{mongo_port}")
    base_port = int(os.environ.get("G60_E2E_BASE_PORT", "8101")) + 10
    n, relay_docs = (5_000, 500) if args.quick else (20_000, 2_000)

    say(f"bus: raw aiokafka against the platform's bus on {bootstrap}")
    bus = None if args.only_e2e else await flow_bus.run(bootstrap, mongo, n, relay_docs, say)
    say("baselines: Kafka produce->consume round trip, one document write ...")
    rtt = await round_trip_p99(bootstrap, 200)
    wr = await write_p99(mongo, 200)
    e2e = None
    if not args.skip_e2e:
        offers = 200 if args.quick else 1_000
        rates = args.rates or ([5, 10, 20, 40, 80] if args.quick else [5, 10, 20, 40, 80, 160])
        seconds = 5.0 if args.quick else 10.0
        with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp:
            logs = args.logs or tmp
            say(f"end to end: {offers:,} offers, needs at {rates} /s, {seconds:g} s each")
            e2e = await flow_e2e.run(base_port, Path(logs), offers, rates, seconds, say)

    if bus is not None:
        print_bus(bus)
    print_e2e(e2e, rtt, wr)


def print_bus(bus: flow_bus.BusFigures) -> None:
    print("\n== bus (same broker, same records) ==")
    print(f"raw producer (idempotent, acks=all)   {bus.raw_produce:>10,.0f} /s")
    print(
        f"bus publish_many                       {bus.bus_publish_many:>10,.0f} /s   "
        f"{ratio(bus.bus_publish_many, bus.raw_produce)} raw   [target >= 0.5x]"
    )
    print(
        f"bus publish, one at a time             {bus.bus_publish_each:>10,.0f} /s   "
        f"{ratio(bus.bus_publish_each, bus.raw_produce)} raw   (the relay before batching)"
    )
    print(f"raw consumer (getmany, no work)        {bus.raw_consume:>10,.0f} /s")
    print(f"raw consumer + CloudEvent parse        {bus.raw_consume_parsed:>10,.0f} /s")
    print(
        f"bus consume, no-op handler             {bus.bus_consume:>10,.0f} /s   "
        f"{ratio(bus.bus_consume, bus.raw_consume)} raw, "
        f"{ratio(bus.bus_consume, bus.raw_consume_parsed)} raw+parse   [target >= 0.5x]"
    )
    rs, cs = sorted(bus.consume_ratios), sorted(bus.consume_cpu_ratios)
    print(
        f"bus consume / raw+parse, {len(rs)} trials taking turns: "
        f"median {statistics.median(rs):.2f}x"
        f" (min {rs[0]:.2f}x, max {rs[-1]:.2f}x)   [target >= 0.5x]"
    )
    print(
        f"  CPU per record, raw+parse's / the bus's: median {statistics.median(cs):.2f}x"
        f" (min {cs[0]:.2f}x, max {cs[-1]:.2f}x)"
    )
    print(
        f"outbox relay, {bus.relay_docs:,} aggregates in FerretDB {bus.relay:>7,.0f} /s   "
        f"{ratio(bus.relay, bus.bus_publish_many)} of publish_many"
    )
    print(
        f"outbox relay, inserts' batches of 10     {bus.relay_batches:>7,.0f} /s   "
        f"{ratio(bus.relay_batches, bus.bus_publish_many)} of publish_many, "
        f"{ratio(bus.relay_batches, bus.relay)} the outboxes'"
    )


def print_e2e(e2e: flow_e2e.FlowFigures | None, rtt: list[float], wr: list[float]) -> None:
    rtt99, wr99 = pct(rtt, 0.99), pct(wr, 0.99)
    print("\n== raw baseline ==")
    for label, xs in (("Kafka produce->consume round trip", rtt), ("one document write", wr)):
        print(f"{label:<38} p50 {pct(xs, 0.5) * 1000:6.1f} ms  p99 {pct(xs, 0.99) * 1000:6.1f} ms")
    print(f"baseline p99 (round trip + write)      {(rtt99 + wr99) * 1000:6.1f} ms")
    if e2e is not None:
        print("\n== end to end ==")
        for s in e2e.steps:
            verdict = "kept up    " if s.kept_up else "fell behind"
            p50, p99 = pct(s.latencies, 0.5) * 1000, pct(s.latencies, 0.99) * 1000
            print(
                f"{s.rate:>6g} needs/s x {s.needs:>5}: {verdict}  proposed {len(s.latencies):>5}"
                f"  last {s.drained_s:5.1f} s after the last POST  p50 {p50:7.0f} ms"
                f"  p99 {p99:7.0f} ms"
            )
        print(f"sustained rate (needs proposed)        {e2e.sustained:g} /s   [target >= 100/s]")
        if e2e.half is not None:
            h = e2e.half
            p99 = pct(h.latencies, 0.99)
            p50 = pct(h.latencies, 0.5) * 1000
            print(
                f"at half that rate ({h.rate:g}/s)            p50 {p50:.0f} ms"
                f"  p99 {p99 * 1000:.0f} ms  = {ratio(p99, rtt99 + wr99)} the baseline p99"
                "   [target p99 <= 1 s]"
            )
        if e2e.burst is not None:
            b = e2e.burst
            got = f"{len(b.latencies)}/{b.needs} proposed"
            last = f"last {b.drained_s:.1f} s after the last POST" if b.kept_up else "not all"
            print(
                f"burst {b.needs} needs at {b.rate:g}/s: {got}, {last}, "
                f"p99 {pct(b.latencies, 0.99) * 1000:.0f} ms   [target: drained <= 10 s]"
            )
        print("CPU by component, ms per need (the step, its drain included):")
        names = ["projects", "matching", "funding", "ferretdb", "postgres", "kafka"]
        print("  " + " " * 21 + "".join(f"{n:>10}" for n in names))
        for s in [
            *e2e.steps,
            *([e2e.half] if e2e.half else []),
            *([e2e.burst] if e2e.burst else []),
        ]:
            row = "".join(f"{s.cpu.get(n, 0) / s.needs * 1000:>10.1f}" for n in names)
            print(f"  {s.rate:>6g} needs/s x {s.needs:>5} {row}")
        print("store commands and broker requests per need, by service (the step, its drain):")
        for s in e2e.steps:
            if s.rate >= 20:
                print("\n".join(flow_calls.table(s.rate, s.calls)))
        print("where the time goes (medians over every proposed need):")
        print(f"  HTTP POST (projects service, store)  {median_ms(e2e.http)}")
        print(f"  relay + broker (answer -> on topic)  {median_ms(e2e.relay_broker)}")
        print(f"  matcher (on topic -> proposal sent)  {median_ms(e2e.matcher)}")
        print(f"  broker + bench (sent -> read)        {median_ms(e2e.seen)}")
        print(flow_waits.HEADER)
        for s in [*e2e.steps, *([e2e.half] if e2e.half else [])]:
            print(flow_waits.line(s.rate, s.waits, s.seconds))
        print(flow_tail.HEADER)
        for s in [*e2e.steps, *([e2e.half] if e2e.half else [])]:
            print(flow_tail.line(s.rate, s.tail))


if __name__ == "__main__":
    asyncio.run(main())
