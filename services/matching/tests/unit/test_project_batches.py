"""A consumed batch of the projects topic (`project_batches`) has the effect of its events
handled one by one, in order: same matches, same outbox events; a redelivered batch creates
nothing twice."""

from __future__ import annotations

from typing import Any

from g60_chassis.batches import unsent
from g60_chassis.envelope import Envelope
from g60_contracts.projects import ENTERPRISE_EXAMPLE, PROJECT_EXAMPLE
from matching.entrypoints.consumer import project_batches
from services.matching.tests.unit.test_use_cases import T0, Market


def enterprise(id: str) -> Envelope:
    data = {**ENTERPRISE_EXAMPLE, "id": id, "created_at": T0.isoformat()}
    return Envelope(type="g60.enterprise.registered.v1", source="/t", subject=id, data=data)


def project(id: str, version: int, status: str = "open", **kw: Any) -> Envelope:
    data = {
        **PROJECT_EXAMPLE,
        "enterprise_id": "ent-1",
        "id": id,
        "status": status,
        "version": version,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        **kw,
    }
    kind = "submitted" if status == "open" else "withdrawn"
    return Envelope(type=f"g60.project.{kind}.v1", source="/t", subject=id, data=data)


# projects before their enterprise, a project changed twice, one withdrawn mid-batch
STREAM = [
    project("p1", 1),
    project("p2", 1, enterprise_id="ent-2"),
    project("p3", 1),
    project("p1", 2, amount_cny=90_000_000),
    enterprise("ent-2"),
    project("p3", 2, status="withdrawn"),
    project("p4", 1),
]


async def outcome(market: Market) -> dict[str, tuple[str, int | None, list[str]]]:
    docs = await market.store.find("matches", limit=1000)
    events = await unsent(market.store, "matches")  # its insert's batch, then its own outbox
    return {
        d["_id"]: (d["status"], d["rank"], [e["type"] for e in events.get(d["_id"], [])])
        for d in docs
    }


async def seeded() -> Market:
    market = Market()
    await market.enterprise()
    for offer in ("off-1", "off-2", "off-3", "off-4"):
        await market.offer(offer)
    return market


async def test_a_batch_has_the_effect_of_its_events_one_by_one() -> None:
    one_by_one, batched = await seeded(), await seeded()
    for e in STREAM:
        await one_by_one.projects(e)
    await project_batches(batched.svc)(STREAM)
    expected = await outcome(one_by_one)
    assert expected and await outcome(batched) == expected
    statuses = {s for s, _, _ in expected.values()}
    assert statuses == {"proposed", "retracted"}  # the withdrawn project's were retracted


async def test_a_redelivered_batch_creates_nothing_twice() -> None:
    market = await seeded()
    handle = project_batches(market.svc)
    opened = [e for e in STREAM if e.data.get("status", "open") == "open"]
    await handle(opened)
    first = await outcome(market)
    await handle(opened)
    assert await outcome(market) == first
    assert all(events == ["g60.match.proposed.v1"] for _, _, events in first.values())
