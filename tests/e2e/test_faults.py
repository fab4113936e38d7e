"""Faults under load: needs are POSTed at a steady pace (each with an Idempotency-Key, retried
until accepted, as a partner would) while a server is restarted or a service is killed with
SIGKILL. Each run ends with every need stored once, matched once by the matcher, and every
consumer group of the platform caught up (lag 0). No timing is asserted: the limits are there
only so that a broken run ends.

The short versions run in `make test`; `make chaos` runs the long ones (marker `chaos`)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import uuid
from collections.abc import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from tests.e2e.harness import ROOT, Platform
from tests.e2e.test_distributed import Client, _enterprise, _offer, _project
from tests.polling import eventually

pytestmark = pytest.mark.e2e
SECTORS = ["integrated_circuits", "artificial_intelligence", "new_energy", "biomedicine"]


def infra(command: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(["bash", str(ROOT / "deploy/local/infra.sh"), command], check=True)

    return run


def faults(platform: Platform) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    def kill(service: str) -> tuple[Callable[[], None], Callable[[], None]]:
        return (lambda: platform.stop(service, signal.SIGKILL), lambda: platform.start(service))

    return {
        "postgres": (infra("stop-postgres"), infra("start-postgres")),
        "ferretdb": (infra("stop-ferretdb"), infra("start-ferretdb")),
        "kafka": (infra("stop-kafka"), infra("start-kafka")),
        "kill-projects": kill("projects"),
        "kill-funding": kill("funding"),
        "kill-matching": kill("matching"),
    }


async def post_until_accepted(op: Client, body: dict[str, object], key: str) -> str:
    """A partner's retry loop: the same Idempotency-Key until a 2xx (the id is the same)."""
    for _ in range(600):
        try:
            r = await op.call(
                "POST", "projects", "/v1/projects", json=body, headers={"Idempotency-Key": key}
            )
            if r.status_code < 300:
                return str(r.json()["id"])
            assert r.status_code >= 500 or r.status_code == 429, r.text  # never a 4xx here
        except httpx.HTTPError:
            pass  # the service is down or restarting
        await asyncio.sleep(0.5)
    raise AssertionError(f"need {key} never accepted")


async def lag(bootstrap: str, prefix: str) -> int:
    """Records not yet committed by the platform's consumer groups (those named `prefix-*`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        total = 0
        for group, _ in await admin.list_consumer_groups():
            if not group.startswith(prefix + "-"):
                continue
            committed = await admin.list_consumer_group_offsets(group)
            tps = [tp for tp in committed if not tp.topic.endswith(".dlq")]
            ends = await consumer.end_offsets(tps) if tps else {}
            total += sum(max(0, ends[tp] - committed[tp].offset) for tp in tps)
        return total
    finally:
        await consumer.stop()
        await admin.close()


async def run_fault(platform: Platform, operator, fault: str, needs: int) -> None:
    op, rng = Client(platform, operator), random.Random(fault)
    sector = rng.choice(SECTORS)
    funder = await op.ok("POST", "funding", "/v1/funders", json={"name": "Bank F", "kind": "bank"})
    offer = await op.ok(
        "POST", "funding", "/v1/offers", json=_offer(funder["id"], sectors=[sector])
    )
    ent = await op.ok(
        "POST", "projects", "/v1/enterprises", json=_enterprise(rng, sectors=[sector])
    )

    async def offer_known():
        return await op.seen("matching", f"/v1/offers/{offer['id']}/matches")

    await eventually(offer_known, timeout=120)
    body = _project(ent["id"], sector=sector)
    run = uuid.uuid4().hex[:8]
    stop, start = faults(platform)[fault]
    ids: list[str] = []

    async def load() -> None:
        for i in range(needs):
            ids.append(await post_until_accepted(op, body, f"{fault}-{run}-{i}"))
            await asyncio.sleep(0.1)

    loader = asyncio.create_task(load())
    await eventually(lambda: len(ids) >= needs // 3, timeout=300, interval=0.2)
    await asyncio.to_thread(stop)
    try:
        await asyncio.sleep(3)  # load keeps coming while it is down
    finally:
        await asyncio.to_thread(start)
    await asyncio.wait_for(loader, timeout=600)
    assert len(set(ids)) == needs  # each need stored once (the same id on every retry)

    async def all_matched():
        items, cursor = [], None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = await op.seen("matching", f"/v1/offers/{offer['id']}/matches", params=params)
            if page is None:
                return None
            items, cursor = items + page["items"], page.get("next_cursor")
            if not cursor:
                break
        # this run's needs: the session's earlier runs in the same sector match the offer too
        mine = [m for m in items if m["enterprise_id"] == ent["id"]]
        return mine if len(mine) >= needs else None

    items = await eventually(all_matched, timeout=600, interval=1.0)
    assert sorted(m["project_id"] for m in items) == sorted(ids)  # none lost, none twice
    for pid in ids:
        assert (await op.call("GET", "projects", f"/v1/projects/{pid}")).status_code == 200
    prefix = platform.env["G60_CONSUMER_GROUP_PREFIX"]

    async def caught_up():
        return await lag(platform.env["G60_KAFKA_BOOTSTRAP"], prefix) == 0

    await eventually(caught_up, timeout=300, interval=2.0)


@pytest.mark.parametrize("fault", ["postgres", "kill-projects"])
async def test_short_fault_under_load_loses_and_repeats_nothing(platform, operator, fault):
    await run_fault(platform, operator, fault, needs=30)


@pytest.mark.chaos
@pytest.mark.parametrize(
    "fault", ["kafka", "postgres", "ferretdb", "kill-projects", "kill-funding", "kill-matching"]
)
async def test_fault_under_load_loses_and_repeats_nothing(platform, operator, fault):
    await run_fault(platform, operator, fault, needs=150)
