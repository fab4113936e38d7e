"""The services as a partner uses them: three processes over HTTP, Kafka and FerretDB."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from allinone.catalogue import uscc
from tests.e2e.harness import ROOT, Platform
from tests.polling import eventually

pytestmark = pytest.mark.e2e


def _offer(funder_id: str, **over):
    return {
        "funder_id": funder_id,
        "name": "科创贷",
        "instrument": "credit_loan",
        "ticket_min_cny": 1_000_000,
        "ticket_max_cny": 30_000_000,
        "capacity_cny": 500_000_000,
        "pricing": {"rate_bp": 380},
        "decision_days": 10,
        **over,
    }


def _enterprise(rng: random.Random, **over):
    return {
        "name": f"测试科技 {uuid.uuid4().hex[:6]}",
        "uscc": uscc(rng, 0),
        "city": "shanghai",
        "sectors": ["new_materials"],
        "founded_on": "2015-01-01",
        "annual_revenue_cny": 50_000_000,
        "qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2030-01-01"}],
        **over,
    }


def _project(enterprise_id: str, **over):
    return {
        "enterprise_id": enterprise_id,
        "title": "Composite line",
        "amount_cny": 5_000_000,
        "instruments": ["credit_loan"],
        "stage": "series_a",
        "sector": "new_materials",
        **over,
    }


class Client:
    def __init__(self, platform: Platform, headers: dict[str, str]) -> None:
        self.p, self.h = platform, headers

    async def call(self, method: str, service: str, path: str, **kw) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.p.url(service), timeout=120) as c:
            return await c.request(method, path, headers={**self.h, **kw.pop("headers", {})}, **kw)

    async def seen(self, service: str, path: str, **kw):
        """GET that answers None while the object has not reached that service (404)."""
        r = await self.call("GET", service, path, **kw)
        if r.status_code == 404:
            return None
        assert r.status_code < 400, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    async def ok(self, method: str, service: str, path: str, **kw):
        r = await self.call(method, service, path, **kw)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


async def _setup(op: Client, rng: random.Random, offer_over=None, ent_over=None, prj_over=None):
    funder = await op.ok("POST", "funding", "/v1/funders", json={"name": "Bank", "kind": "bank"})
    offer = await op.ok(
        "POST", "funding", "/v1/offers", json=_offer(funder["id"], **(offer_over or {}))
    )
    ent = await op.ok(
        "POST", "projects", "/v1/enterprises", json=_enterprise(rng, **(ent_over or {}))
    )
    project = await op.ok(
        "POST", "projects", "/v1/projects", json=_project(ent["id"], **(prj_over or {}))
    )
    return funder, offer, ent, project


async def _key(op: Client, role: str, tenant: str) -> dict[str, str]:
    owner = "projects" if role == "enterprise" else "funding"  # the service owning the tenant
    body = await op.ok("POST", owner, "/v1/keys", json={"role": role, "tenant_id": tenant})
    return {"Authorization": f"Bearer {body['key']}"}


async def test_matches_are_proposed_with_both_breakdowns(platform, operator):
    op, rng = Client(platform, operator), random.Random(1)
    funder, offer, _ent, project = await _setup(op, rng)
    wrong_city = await op.ok(
        "POST", "funding", "/v1/offers", json=_offer(funder["id"], cities=["wuhu"])
    )

    async def proposed():
        page = await op.seen("matching", f"/v1/projects/{project['id']}/matches")
        if page and any(m["offer_id"] == offer["id"] for m in page["items"]):
            return page["items"]
        return None

    items = await eventually(proposed, timeout=240)  # how fast: `make bench-flow`
    assert wrong_city["id"] not in {m["offer_id"] for m in items}  # eligible offers only
    match = next(m for m in items if m["offer_id"] == offer["id"])
    assert match["enterprise_view"]["terms"] and match["funder_view"]["terms"]
    scores = [m["score"] for m in items if m["status"] == "proposed"]
    assert scores == sorted(scores, reverse=True)
    consumer = AIOKafkaConsumer(
        platform.env["G60_TOPIC_MATCHES"],
        bootstrap_servers=platform.env["G60_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        group_id=f"check-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:

        async def on_topic():
            batch = await consumer.getmany(timeout_ms=500)
            return any(
                dict(r.headers).get("ce_type") == b"g60.match.proposed.v1"
                and r.key.decode() == match["id"]
                for recs in batch.values()
                for r in recs
            )

        await eventually(on_topic, timeout=120)
    finally:
        await consumer.stop()


async def test_a_deal_from_proposal_to_close(platform, operator):
    op, rng = Client(platform, operator), random.Random(2)
    funder, offer, ent, project = await _setup(op, rng)
    as_ent = Client(platform, await _key(op, "enterprise", ent["id"]))
    as_fun = Client(platform, await _key(op, "funder", funder["id"]))

    async def match_of_offer():
        page = await as_ent.seen("matching", f"/v1/projects/{project['id']}/matches")
        return next(
            (m for m in (page or {"items": []})["items"] if m["offer_id"] == offer["id"]), None
        )

    match = await eventually(match_of_offer)
    await as_ent.ok("POST", "matching", f"/v1/matches/{match['id']}/accept")
    agreed = await as_fun.ok("POST", "matching", f"/v1/matches/{match['id']}/accept")
    assert agreed["status"] == "agreed"

    async def reserved():
        m = await as_fun.ok("GET", "matching", f"/v1/matches/{match['id']}")
        return m if m["status"] == "reserved" else None

    await eventually(reserved)
    closed = await as_fun.ok(
        "POST", "matching", f"/v1/matches/{match['id']}/close", json={"amount_cny": 5_000_000}
    )
    assert closed["status"] == "closed"

    async def funded():
        p = await as_ent.ok("GET", "projects", f"/v1/projects/{project['id']}")
        return p if p["status"] == "funded" else None

    assert (await eventually(funded))["funded_amount_cny"] == 5_000_000

    async def committed():
        o = await as_fun.ok("GET", "funding", f"/v1/offers/{offer['id']}")
        return o if o["committed_cny"] == 5_000_000 else None

    after = await eventually(committed)
    assert after["remaining_cny"] == offer["remaining_cny"] - 5_000_000


async def test_fifty_concurrent_agreements_never_overbook_an_offer(platform, operator):
    op, rng = Client(platform, operator), random.Random(3)
    funder = await op.ok(
        "POST", "funding", "/v1/funders", json={"name": "Small bank", "kind": "bank"}
    )
    offer = await op.ok(
        "POST",
        "funding",
        "/v1/offers",
        json=_offer(
            funder["id"],
            sectors=["aerospace"],
            capacity_cny=500_000_000,
            max_deals=5,
        ),
    )
    projects = []
    for _ in range(50):
        ent = await op.ok(
            "POST", "projects", "/v1/enterprises", json=_enterprise(rng, sectors=["aerospace"])
        )
        projects.append(
            await op.ok(
                "POST", "projects", "/v1/projects", json=_project(ent["id"], sector="aerospace")
            )
        )

    async def all_proposed():
        page = await op.seen("matching", f"/v1/offers/{offer['id']}/matches") or {"items": []}
        ids = [m["id"] for m in page["items"]]
        return ids if len(ids) == 50 else None

    match_ids = await eventually(all_proposed, timeout=240)

    async def agree(mid: str) -> None:
        await op.ok("POST", "matching", f"/v1/matches/{mid}/accept", params={"side": "enterprise"})
        await op.ok("POST", "matching", f"/v1/matches/{mid}/accept", params={"side": "funder"})

    await asyncio.gather(*(agree(m) for m in match_ids))

    async def all_answered():
        page = await op.seen("matching", f"/v1/offers/{offer['id']}/matches") or {"items": []}
        statuses = [m["status"] for m in page["items"]]
        return statuses if all(s in ("reserved", "rejected") for s in statuses) else None

    statuses = await eventually(all_answered, timeout=240)
    assert statuses.count("reserved") == 5 and statuses.count("rejected") == 45
    final = await op.ok("GET", "funding", f"/v1/offers/{offer['id']}")
    assert final["deals_taken"] == 5 and final["remaining_cny"] >= 0


async def test_a_malformed_event_is_dead_lettered_and_the_next_one_processed(platform, operator):
    op, rng = Client(platform, operator), random.Random(4)
    producer = AIOKafkaProducer(bootstrap_servers=platform.env["G60_KAFKA_BOOTSTRAP"])
    await producer.start()
    try:
        await producer.send_and_wait(
            platform.env["G60_TOPIC_PROJECTS"],
            b'{"id": "broken"}',
            key=b"broken",
            headers=[
                ("ce_id", b"x1"),
                ("ce_type", b"g60.project.submitted.v1"),
                ("ce_source", b"/test"),
                ("ce_subject", b"broken"),
            ],
        )
    finally:
        await producer.stop()
    _funder, _offer, _ent, project = await _setup(op, rng)

    async def matched():
        page = await op.seen("matching", f"/v1/projects/{project['id']}/matches")
        return page and page["items"]

    await eventually(matched)
    consumer = AIOKafkaConsumer(
        platform.env["G60_TOPIC_PROJECTS"] + ".dlq",
        bootstrap_servers=platform.env["G60_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        group_id=f"dlq-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:

        async def dead_lettered():
            batch = await consumer.getmany(timeout_ms=500)
            return [dict(r.headers) for recs in batch.values() for r in recs if r.key == b"broken"]

        letters = await eventually(dead_lettered, timeout=120)
        assert letters[0]["dlq_original_topic"].decode() == platform.env["G60_TOPIC_PROJECTS"]
        assert letters[0]["dlq_attempts"] == b"1"
    finally:
        await consumer.stop()


async def test_tenants_are_isolated(platform, operator):
    op, rng = Client(platform, operator), random.Random(5)
    _, _, ent_a, _ = await _setup(op, rng)
    _, _, _, project_b = await _setup(op, rng)
    as_a = Client(platform, await _key(op, "enterprise", ent_a["id"]))
    assert (
        await as_a.call("GET", "projects", f"/v1/projects/{project_b['id']}")
    ).status_code == 404
    assert (
        await as_a.call("GET", "matching", f"/v1/projects/{project_b['id']}/matches")
    ).status_code == 404
    r = await as_a.call("POST", "funding", "/v1/offers", json=_offer("fun_x"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


async def test_matching_killed_mid_stream_loses_and_duplicates_nothing(platform, operator):
    op, rng = Client(platform, operator), random.Random(6)
    funder = await op.ok("POST", "funding", "/v1/funders", json={"name": "Bank K", "kind": "bank"})
    offer = await op.ok(
        "POST", "funding", "/v1/offers", json=_offer(funder["id"], sectors=["biomedicine"])
    )
    ent = await op.ok(
        "POST", "projects", "/v1/enterprises", json=_enterprise(rng, sectors=["biomedicine"])
    )
    project_ids = []
    for i in range(40):
        if i == 15:
            platform.stop("matching", signal.SIGKILL)
        p = await op.ok(
            "POST", "projects", "/v1/projects", json=_project(ent["id"], sector="biomedicine")
        )
        project_ids.append(p["id"])
    platform.start("matching")

    async def all_there():
        page = await op.seen("matching", f"/v1/offers/{offer['id']}/matches") or {"items": []}
        return page["items"] if len(page["items"]) >= 40 else None

    items = await eventually(all_there, timeout=300, interval=1.0)
    assert sorted(m["project_id"] for m in items) == sorted(project_ids)  # none lost, none twice


async def test_kafka_down_while_posting_loses_nothing_and_duplicates_nothing(platform, operator):
    """Runs last: it stops the shared broker. Projects are accepted while Kafka is down (the
    outbox keeps their events); once it is back every one reaches the matcher exactly once."""
    op, rng = Client(platform, operator), random.Random(7)
    funder = await op.ok("POST", "funding", "/v1/funders", json={"name": "Bank D", "kind": "bank"})
    offer = await op.ok(
        "POST", "funding", "/v1/offers", json=_offer(funder["id"], sectors=["green_finance"])
    )
    ent = await op.ok(
        "POST", "projects", "/v1/enterprises", json=_enterprise(rng, sectors=["green_finance"])
    )

    async def offer_known():
        return await op.seen("matching", f"/v1/offers/{offer['id']}/matches")

    await eventually(offer_known, timeout=240)
    body = _project(ent["id"], sector="green_finance")
    ids = [(await op.ok("POST", "projects", "/v1/projects", json=body))["id"] for _ in range(100)]
    stopped = await asyncio.to_thread(
        subprocess.run, ["bash", str(ROOT / "deploy/local/infra.sh"), "stop-kafka"], check=True
    )
    try:
        assert stopped.returncode == 0
        for _ in range(100):  # accepted while the broker is down
            ids.append((await op.ok("POST", "projects", "/v1/projects", json=body))["id"])
    finally:
        await asyncio.to_thread(
            subprocess.run,
            ["bash", str(ROOT / "deploy/local/infra.sh"), "start-kafka"],
            check=True,
        )

    async def all_there():
        path = f"/v1/offers/{offer['id']}/matches"  # one page of the largest size
        page = await op.seen("matching", path, params={"limit": 200}) or {"items": []}
        return page["items"] if len(page["items"]) >= 200 else None

    items = await eventually(all_there, timeout=300, interval=1.0)
    assert sorted(m["project_id"] for m in items) == sorted(ids)  # all 200, none twice
