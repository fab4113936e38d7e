"""The end-to-end half of `make bench-flow`: the three services as processes (the e2e harness)
on Kafka and FerretDB, `offers` offers, then needs (projects) POSTed at rising rates until the
flow stops keeping up; then latencies at half the sustained rate, and where the time goes.

A need counts as proposed when the matcher's `g60.match.proposed.v1` for it is on the matches
topic (the matcher stores the match and its event in one write; the relay publishes it). The
bench reads the projects and matches topics with a raw consumer, so each need's time splits
into: HTTP (the POST), projects relay + broker (POST answered → project event on the topic),
matcher + its relay (project event → proposal event).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import flow_calls
import flow_clean
import flow_cpu
import flow_tail
import flow_waits
import httpx
from aiokafka import AIOKafkaConsumer

from allinone.catalogue import uscc
from tests.e2e.harness import Platform

Say = Callable[[str], None]
# The burst: 200 needs at 20/s (took 427 s to drain; target: within 10 s of the last POST)
BURST = (20.0, 10.0)
SECTOR = "new_materials"


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@dataclass
class Tracker:
    """When each need was POSTed, answered, seen on the projects topic, proposed."""

    posted: dict[str, float] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)
    on_topic: dict[str, float] = field(default_factory=dict)
    proposed: dict[str, float] = field(default_factory=dict)
    # the first proposal's record timestamp (when the matcher's relay sent it), on this clock
    published: dict[str, float] = field(default_factory=dict)

    def complete(self, pid: str) -> bool:
        return all(pid in d for d in (self.answered, self.on_topic, self.published))

    def times(self, pid: str) -> flow_tail.Times:
        return flow_tail.Times(
            self.posted[pid],
            self.answered[pid],
            self.on_topic[pid],
            self.published[pid],
            self.proposed[pid],
        )

    async def follow(self, bootstrap: str, projects: str, matches: str) -> None:
        consumer = AIOKafkaConsumer(
            projects,
            matches,
            bootstrap_servers=bootstrap,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.perf_counter()
                to_perf = now - time.time()
                for recs in batch.values():
                    for r in recs:
                        headers = dict(r.headers)
                        kind = headers.get("ce_type", b"").decode()
                        if r.topic == projects and kind == "g60.project.submitted.v1":
                            self.on_topic.setdefault(r.key.decode(), r.timestamp / 1000 + to_perf)
                        elif r.topic == matches and kind == "g60.match.proposed.v1":
                            pid = _project_of(r.value)
                            if pid:
                                self.proposed.setdefault(pid, now)
                                self.published.setdefault(pid, r.timestamp / 1000 + to_perf)
        finally:
            await consumer.stop()


def _project_of(value: bytes) -> str | None:
    import json

    try:
        return str(json.loads(value)["project_id"])
    except (ValueError, KeyError):
        return None


@dataclass
class Step:
    rate: float
    needs: int
    kept_up: bool
    drained_s: float
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by component
    calls: dict[str, flow_calls.Counts] = field(default_factory=dict)  # per need, by service
    waits: flow_waits.Sample = field(default_factory=dict)  # the matcher's, during the step
    seconds: float = 0.0  # from the first POST to the end of the wait for proposals
    tail: flow_tail.Tail | None = None  # the slowest needs, by stage


@dataclass
class FlowFigures:
    steps: list[Step]
    sustained: float
    half: Step | None
    http: list[float]
    relay_broker: list[float]
    matcher: list[float]
    seen: list[float]  # the proposal's record made -> read by the bench
    burst: Step | None = None  # the 200 needs at 20/s, drained within 10 s?


def start_platform(base_port: int, logs: Path) -> Platform:
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "G60_BUS": "kafka",
        "G60_STORE": "mongo",
        "G60_MONGO_DB_PREFIX": f"bench{run}",
        "G60_TOPIC_PROJECTS": f"bench.{run}.projects",
        "G60_TOPIC_FUNDING": f"bench.{run}.funding",
        "G60_TOPIC_MATCHES": f"bench.{run}.matches",
        "G60_CONSUMER_GROUP_PREFIX": f"bench-{run}",
        "G60_BOOTSTRAP_OPERATOR_KEY": f"operator-{run}-" + uuid.uuid4().hex,
        "G60_OUTBOX_INTERVAL_S": "0.2",
        # a bulk load with one key: the limits would answer 429 above 50 requests/s a key
        # (100 an address); the bench measures the flow, the rate limits keep their checks
        "G60_RATE_KEY_PER_S": "100000",
        "G60_RATE_KEY_BURST": "100000",
        "G60_RATE_ADDRESS_PER_S": "100000",
        "G60_RATE_ADDRESS_BURST": "100000",
        "G60_DATA_DIR": str(logs),
    }
    ports = {s: base_port + i for i, s in enumerate(("projects", "funding", "matching"))}
    p = Platform(env, ports, logs)
    for service in ports:
        p.start(service)
    return p


async def _post(c: httpx.AsyncClient, url: str, body: dict[str, object]) -> dict[str, object]:
    """As a partner should: a create carries an Idempotency-Key, so a connection lost before
    the answer is retried without creating twice."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(3):
        try:
            r = await c.post(url, json=body, headers=key)
            break
        except httpx.TransportError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.2)
    r.raise_for_status()
    return dict(r.json())


async def seed(p: Platform, offers: int, say: Say) -> tuple[httpx.AsyncClient, list[str]]:
    headers = {"Authorization": f"Bearer {p.env['G60_BOOTSTRAP_OPERATOR_KEY']}"}
    c = httpx.AsyncClient(headers=headers, timeout=60)
    funder = await _post(c, p.url("funding") + "/v1/funders", {"name": "Bank", "kind": "bank"})
    sem = asyncio.Semaphore(16)
    rng = random.Random(8)

    async def offer(i: int) -> str:
        body = {
            "funder_id": funder["id"],
            "name": f"科创贷 {i}",
            "instrument": "credit_loan",
            "ticket_min_cny": 1_000_000,
            "ticket_max_cny": 30_000_000 + i * 10_000,
            "capacity_cny": 5_000_000_000,
            "pricing": {"rate_bp": 300 + i % 200},
            "decision_days": 5 + i % 20,
        }
        async with sem:
            return str((await _post(c, p.url("funding") + "/v1/offers", body))["id"])

    t0 = time.perf_counter()
    ids = await asyncio.gather(*(offer(i) for i in range(offers)))
    say(f"  {offers:,} offers posted in {time.perf_counter() - t0:.1f} s")
    enterprises = []
    for _ in range(20):
        ent = {
            "name": f"测试科技 {uuid.uuid4().hex[:6]}",
            "uscc": uscc(rng, 0),
            "city": "shanghai",
            "sectors": [SECTOR],
            "founded_on": "2015-01-01",
            "annual_revenue_cny": 50_000_000,
            "qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2030-01-01"}],
        }
        enterprises.append(str((await _post(c, p.url("projects") + "/v1/enterprises", ent))["id"]))
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:  # the matcher knows the last offer
        r = await c.get(p.url("matching") + f"/v1/offers/{ids[-1]}/matches")
        if r.status_code == 200:
            break
        await asyncio.sleep(0.5)
    say(f"  matcher has the offers after {time.perf_counter() - t0:.1f} s")
    return c, enterprises


async def step(
    p: Platform,
    c: httpx.AsyncClient,
    ents: list[str],
    tr: Tracker,
    rate: float,
    seconds: float,
    grace: float = 0.0,
) -> Step:
    """POST rate x seconds needs, then wait up to `grace` (at least 5 s and `seconds`) after
    the last POST for their proposals."""
    n = max(1, int(rate * seconds))
    url = p.url("projects") + "/v1/projects"
    ids: list[str] = []

    async def one(i: int) -> None:
        body = {
            "enterprise_id": ents[i % len(ents)],
            "title": "Composite line",
            "amount_cny": 5_000_000,
            "instruments": ["credit_loan"],
            "stage": "series_a",
            "sector": SECTOR,
        }
        t = time.perf_counter()
        project = await _post(c, url, body)
        pid = str(project["id"])
        tr.posted[pid], tr.answered[pid] = t, time.perf_counter()
        ids.append(pid)

    pids = {service: proc.pid for service, proc in p.procs.items()}
    urls = {service: p.url(service) for service in p.procs}
    calls0 = await flow_calls.sample(c, urls)
    topic = p.env["G60_TOPIC_PROJECTS"]
    waits0 = await flow_waits.sample(c, urls["matching"], topic)
    cpu0 = flow_cpu.sample(pids)
    t0 = time.perf_counter()
    tasks = []
    for i in range(n):  # open loop: a POST every 1/rate s, whatever the answers take
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    # from the last POST as scheduled, not as answered: a service whose answers lag (1.2 s
    # HTTP median at 80/s) must not stretch the time the flow is given to keep up
    last = t0 + (n - 1) / rate
    grace = max(5.0, seconds, grace)
    while time.perf_counter() - last < grace and not all(i in tr.proposed for i in ids):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    kept = all(i in tr.proposed for i in ids)
    drained = max((tr.proposed[i] for i in ids if i in tr.proposed), default=last) - last
    lat = [tr.proposed[i] - tr.posted[i] for i in ids if i in tr.proposed]
    cpu = flow_cpu.used(cpu0, flow_cpu.sample(pids))
    calls = flow_calls.per_need(calls0, await flow_calls.sample(c, urls), n)
    waits = flow_waits.diff(waits0, await flow_waits.sample(c, urls["matching"], topic))
    seconds = time.perf_counter() - t0
    slow = flow_tail.tail([tr.times(i) for i in ids if tr.complete(i)])
    return Step(rate, n, kept, max(0.0, drained), lat, cpu, calls, waits, seconds, slow)


async def run(
    base_port: int, logs: Path, offers: int, rates: list[float], seconds: float, say: Say
) -> FlowFigures:
    say(f"starting the three services on :{base_port}-{base_port + 2} ...")
    p = await asyncio.to_thread(start_platform, base_port, logs)
    tr = Tracker()
    follower = asyncio.create_task(
        tr.follow(
            p.env["G60_KAFKA_BOOTSTRAP"], p.env["G60_TOPIC_PROJECTS"], p.env["G60_TOPIC_MATCHES"]
        )
    )
    c = None
    try:
        c, ents = await seed(p, offers, say)
        steps: list[Step] = []
        for rate in rates:
            say(f"  {rate:g} needs/s for {seconds:g} s ...")
            s = await step(p, c, ents, tr, rate, seconds)
            steps.append(s)
            p50, p99 = pct(s.latencies, 0.5) * 1000, pct(s.latencies, 0.99) * 1000
            say(
                f"    {'kept up' if s.kept_up else 'fell behind'}: {len(s.latencies)}/{s.needs}"
                f" proposed, last {s.drained_s:.1f} s after the last POST,"
                f" p50 {p50:.0f} ms p99 {p99:.0f} ms"
            )
            if not s.kept_up:
                break
        kept = [s.rate for s in steps if s.kept_up]
        sustained = max(kept, default=0.0)
        half = None
        if sustained:
            await drained(tr, say, c, p.url("matching"))
            half = await step(p, c, ents, tr, sustained / 2, seconds * 2)
        await drained(tr, say, c, p.url("matching"))
        say(f"  burst: {BURST[0] * BURST[1]:g} needs at {BURST[0]:g}/s ...")
        burst = await step(p, c, ents, tr, BURST[0], BURST[1], grace=120.0)
        say(
            f"    all proposed {burst.drained_s:.1f} s after the last POST"
            if burst.kept_up
            else f"    {len(burst.latencies)}/{burst.needs} proposed within 120 s"
        )
        done = [i for i in tr.proposed if i in tr.answered and i in tr.on_topic]
        return FlowFigures(
            steps,
            sustained,
            half,
            http=[tr.answered[i] - tr.posted[i] for i in done],
            relay_broker=[max(0.0, tr.on_topic[i] - tr.answered[i]) for i in done],
            matcher=[max(0.0, tr.published[i] - tr.on_topic[i]) for i in done],
            seen=[max(0.0, tr.proposed[i] - tr.published[i]) for i in done],
            burst=burst,
        )
    finally:
        follower.cancel()
        if c is not None:
            await c.aclose()
        for service in list(p.procs):
            await asyncio.to_thread(p.stop, service)
        await flow_clean.drop_run(p.env)


async def drained(tr: Tracker, say: Say, c: httpx.AsyncClient, matching: str) -> None:
    """Every need posted so far proposed, and the matcher's allocation idle (its flags
    written): a step measured while the previous step's backlog of flags is still being
    written measures that backlog, not its own rate."""
    say("  waiting for the backlog to drain (at most 10 min) ...")
    t = time.perf_counter()
    while time.perf_counter() - t < 600 and not set(tr.posted) <= set(tr.proposed):  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    proposed = time.perf_counter() - t
    while time.perf_counter() - t < 600 and await flow_waits.allocation_pending(c, matching):  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    say(
        f"  drained in {time.perf_counter() - t:.0f} s"
        f" (proposals {proposed:.0f} s, then the allocation's flags)"
    )


def median_ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.0f} ms" if xs else "n/a"
