"""Benchmark of webhook delivery (`make bench-webhooks`), with the baseline run in the same
command.

Figures (the issue's targets in brackets):
  * deliveries/s to a loopback stub partner: N deliveries scheduled, then the dispatcher started
    and timed until the stub has them all (each one: claimed in the store, signed with
    standardwebhooks, POSTed through the SSRF-guarded transport, its outcome stored), against a
    raw httpx POST loop (one client, one request after the other, no store, no signature) to
    the same stub [>= 0.5x]. Run on the memory store (the dispatcher's own cost) and on FerretDB
    (what the service does in the distributed shape).
  * p50/p99 from an event acknowledged by Kafka to its receipt by the stub, at a steady rate,
    the service consuming the real topic with its store on FerretDB.

Needs Kafka and FerretDB (`make infra-up`); G60_KAFKA_BOOTSTRAP / G60_MONGO_URL.

    .venv/bin/python bench/bench_webhooks.py            # 5 rounds of 2,000, 30 s of events
    .venv/bin/python bench/bench_webhooks.py --quick    # 3 rounds of 500, 10 s

The raw baseline is noisy on a shared machine (850 then 585 POST/s in one run before): a
warm-up first, then rounds in which each dispatcher run is paired with a raw run just before
it; the figures are medians over the rounds and the ratio the median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.principal import OPERATOR
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import Doc
from g60_contracts.projects import ProjectOut
from subscriptions.adapters.events import incoming
from subscriptions.bootstrap import bootstrap
from subscriptions.entrypoints.app import create
from subscriptions.service.ports import EndpointDraft
from subscriptions.settings import WebhookSettings
from tests.polling import eventually
from tests.webhook_stub import StubPartner

T = TypeVar("T")
T0 = time.perf_counter()
KAFKA = os.environ.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MONGO = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
EXAMPLE = dict(ProjectOut.model_config["json_schema_extra"]["examples"][0])  # type: ignore[index, arg-type]


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def event(i: int) -> Envelope:
    data = {**EXAMPLE, "id": f"prj_{i}", "enterprise_id": "ent_bench"}
    return Envelope("g60.project.updated.v1", "/g60/projects", f"prj_{i}", data)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def raw_loop(stub: StubPartner, n: int) -> float:
    body = incoming(event(0)).body.encode()  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        await client.post(stub.url, content=body)
        start = time.perf_counter()
        for _ in range(n):
            (await client.post(stub.url, content=body)).raise_for_status()
        return n / (time.perf_counter() - start)


async def raw_concurrent(stub: StubPartner, n: int, width: int) -> float:
    """The same POSTs, `width` at a time (what the dispatcher's lane allows per endpoint)."""
    body = incoming(event(0)).body.encode()  # type: ignore[union-attr]
    gate = asyncio.Semaphore(width)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=width)) as client:

        async def one() -> None:
            async with gate:
                (await client.post(stub.url, content=body)).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


# the endpoint: the default 8 requests in flight; its rate raised to 1000/s (default 50/s)
HOOKS = WebhookSettings(allow_loopback=True, rate_per_s=1000.0)


class Counted(MongoDocumentStore):
    """The FerretDB store, counting and timing its calls (per call kind and collection) once
    `on` is set: the per-step breakdown of a delivery's store work."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(url, database)
        self.on = False
        self.calls: dict[tuple[str, str], list[float]] = {}

    async def _timed(self, kind: str, collection: str, call: Awaitable[T]) -> T:
        start = time.perf_counter()
        try:
            return await call
        finally:
            if self.on:
                seen = self.calls.setdefault((kind, collection), [0, 0.0])
                seen[0] += 1
                seen[1] += time.perf_counter() - start

    async def get(self, collection: str, id: str) -> Doc | None:
        return await self._timed("get", collection, super().get(collection, id))

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        await self._timed("insert", collection, super().insert(collection, doc, events))

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        return await self._timed("insert_many", collection, super().insert_many(collection, docs))

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        change = super().update(collection, doc, expected_version, events)
        return await self._timed("update", collection, change)

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        await self._timed("delete_many", collection, super().delete_many(collection, ids))

    async def find(self, collection: str, where: Any = None, **kw: Any) -> list[Doc]:
        return await self._timed("find", collection, super().find(collection, where, **kw))

    def breakdown(self, n: int) -> list[str]:
        total = sum(t for _, t in self.calls.values())
        out = []
        for (kind, collection), (count, spent) in sorted(self.calls.items()):
            out.append(
                f"    {kind:>11} {collection:<18} {count / n:6.3f} per delivery, "
                f"{spent / count * 1000:6.2f} ms each, {spent / total:4.0%} of the store's time"
            )
        return out


BREAKDOWN: list[str] = []
FANOUT: dict[str, list[float]] = {"one by one": [], "batches of 100": []}


async def dispatcher_rate(stub: StubPartner, n: int, settings: PlatformSettings) -> float:
    counted = None
    if settings.store == "mongo":
        counted = Counted(MONGO, f"{settings.mongo_db_prefix}_subscriptions")
    built = bootstrap(
        settings,
        store=counted,
        bus=MemoryBus(),
        keys=KeyStore(MemoryDocumentStore()),
        webhooks=HOOKS,
    )
    svc = built.service
    await built.ensure_indexes()
    draft = EndpointDraft(url=stub.url, event_types=["project.*"])
    await svc.endpoints.register(OPERATOR, draft)
    # the fan-out (not timed in the ratio): half one event at a time, half in batches of 100
    # as a consumed Kafka batch is
    start, half = time.perf_counter(), n // 2
    for i in range(half):
        await svc.fanout.on_event(incoming(event(i)))  # type: ignore[arg-type]
    one_by_one = half / (time.perf_counter() - start)
    start = time.perf_counter()
    for first in range(half, n, 100):
        chunk = [incoming(event(i)) for i in range(first, min(n, first + 100))]
        await svc.fanout.on_events(chunk)  # type: ignore[arg-type]
    batched = (n - half) / (time.perf_counter() - start)
    if counted is not None:
        FANOUT["one by one"].append(one_by_one)
        FANOUT["batches of 100"].append(batched)
        counted.on = True
    before = len(stub.received)
    batches_before = svc.dispatcher.deliveries.writer.batches
    start = time.perf_counter()
    await svc.dispatcher.start()
    try:
        await eventually(lambda: len(stub.received) - before >= n, timeout=600, interval=0.005)
        rate = n / (time.perf_counter() - start)
    finally:
        await svc.dispatcher.stop()
        if counted is not None:
            counted.on = False
            batches = svc.dispatcher.deliveries.writer.batches - batches_before
            BREAKDOWN[:] = [
                f"  store calls while dispatching {n} deliveries on FerretDB (last round; "
                f"{n / max(1, batches):.1f} outcomes per batch):",
                *counted.breakdown(n),
            ]
        await built.stop()
        await built.store.close()
    return rate


async def kafka_latency(stub: StubPartner, seconds: float, per_s: float) -> list[float]:
    run = uuid.uuid4().hex[:8]
    settings = PlatformSettings(
        bus="kafka",
        store="mongo",
        kafka_bootstrap=KAFKA,
        mongo_url=MONGO,
        mongo_db_prefix=f"bench{run}",
        topic_projects=f"bench.{run}.projects",
        topic_funding=f"bench.{run}.funding",
        topic_matches=f"bench.{run}.matches",
        consumer_group_prefix=f"bench-{run}",
        rate_limit_enabled=False,
    )
    built = bootstrap(settings, webhooks=HOOKS)
    app = create(built=built)
    acked: dict[str, float] = {}
    async with LifespanManager(app, startup_timeout=300, shutdown_timeout=120):
        draft = EndpointDraft(url=stub.url, event_types=["project.*"])
        await built.service.endpoints.register(OPERATOR, draft)
        built.bus.declare(settings.topic_projects)
        warm = event(-1)
        await built.bus.publish(settings.topic_projects, warm)  # the group has joined once
        await eventually(lambda: any(warm.id in r.body.decode() for r in stub.received), 300)
        stub.received.clear()
        count = int(seconds * per_s)
        start = time.perf_counter()
        for i in range(count):
            e = event(i)
            await built.bus.publish(settings.topic_projects, e)
            acked[e.id] = time.time()
            await asyncio.sleep(max(0.0, start + (i + 1) / per_s - time.perf_counter()))
        await eventually(lambda: len(stub.received) >= count, timeout=600)
    import json

    return [
        (r.at - acked[json.loads(r.body)["id"]]) * 1000
        for r in stub.received
        if json.loads(r.body)["id"] in acked
    ]


async def drop(settings: PlatformSettings) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGO)
    await client.drop_database(f"{settings.mongo_db_prefix}_subscriptions")
    await client.close()


async def measure(run: Callable[[], Awaitable[float]], stub: StubPartner) -> float:
    """One measurement from the same starting point: the stub's log emptied, garbage
    collected (a full collection inside a timed run was one cause of the noisy baseline)."""
    stub.received.clear()
    gc.collect()
    return await run()


async def main(quick: bool) -> None:
    n = 500 if quick else 2000
    rounds = 3 if quick else 5
    seconds = 10.0 if quick else 30.0
    stub = StubPartner()
    await stub.start()
    try:
        say(f"warm-up: raw httpx POST loop, {n // 4} requests to the loopback stub ...")
        await raw_loop(stub, n // 4)
        raws: list[float] = []
        memory: list[float] = []
        mongo: list[float] = []
        ratios: dict[str, list[float]] = {"memory": [], "FerretDB": []}
        for r in range(rounds):
            # interleaved: each dispatcher run next to a raw run of its own, ratio per pair
            for kind, out in (("memory", memory), ("FerretDB", mongo)):
                raw = await measure(lambda: raw_loop(stub, n), stub)
                if kind == "memory":
                    settings = PlatformSettings(store="memory")
                else:
                    prefix = f"bench{uuid.uuid4().hex[:8]}"
                    settings = PlatformSettings(
                        store="mongo", mongo_url=MONGO, mongo_db_prefix=prefix
                    )
                rate = await measure(functools.partial(dispatcher_rate, stub, n, settings), stub)
                if kind == "FerretDB":
                    await drop(settings)
                raws.append(raw)
                out.append(rate)
                ratios[kind].append(rate / raw)
                say(
                    f"  round {r + 1}/{rounds}: raw {raw:,.0f} POST/s, dispatcher ({kind}) "
                    f"{rate:,.0f} deliveries/s = {rate / raw:.2f}x"
                )
        wide = await measure(lambda: raw_concurrent(stub, n, HOOKS.max_in_flight), stub)
        say(f"  raw, {HOOKS.max_in_flight} at a time: {wide:,.0f} POST/s")
        say(f"event on Kafka -> stub receipt, 20 events/s for {seconds:.0f} s ...")
        stub.received.clear()
        latencies = await kafka_latency(stub, seconds, 20.0)
        say(
            f"  {len(latencies)} events: p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {pct(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
        )
        med = statistics.median
        spread = f"{min(raws):,.0f}-{max(raws):,.0f}"
        print()
        print(f"medians of {rounds} interleaved rounds of {n} deliveries (ratio: median per pair)")
        for kind, rates in (("memory", memory), ("FerretDB", mongo)):
            lo, hi = min(ratios[kind]), max(ratios[kind])
            print(
                f"deliveries/s ({kind + ' store)':16s} {med(rates):8,.0f}   "
                f"{med(ratios[kind]):.2f}x raw (rounds {lo:.2f}-{hi:.2f}) [>= 0.5x]"
            )
        print(f"raw httpx POST loop           {med(raws):8,.0f}   (runs: {spread})")
        print(
            f"raw, {HOOKS.max_in_flight} at a time            {wide:8,.0f}   "
            f"(dispatcher on FerretDB: {med(mongo) / wide:.2f}x of it)"
        )
        print(
            f"Kafka -> receipt p50 / p99    {statistics.median(latencies):.0f} ms / "
            f"{pct(latencies, 0.99):.0f} ms"
        )
        for how, rates in FANOUT.items():
            print(f"fan-out on FerretDB, {how:<15}{med(rates):6,.0f} deliveries stored/s")
        print("\n".join(BREAKDOWN))
    finally:
        await stub.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
