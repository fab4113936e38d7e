"""The funding service on fakes: offers over HTTP, and the capacity ledger driven by match
events — message in, state and events out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from funding.bootstrap import bootstrap
from funding.entrypoints.app import create
from funding.entrypoints.consumer import match_events
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import MemoryDocumentStore
from g60_contracts.enums import Role
from g60_contracts.funding import OFFER_EXAMPLE

T0 = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
async def env():
    bus = MemoryBus(keep_log=True)
    keys = KeyStore(MemoryDocumentStore())
    built = bootstrap(
        PlatformSettings(store="memory"), store=MemoryDocumentStore(), bus=bus, keys=keys
    )
    app = create(built=built)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.headers["Authorization"] = f"Bearer {await keys.create(Role.operator)}"
            yield client, bus, keys, built


async def _offer(client, **over):
    funder = (await client.post("/v1/funders", json={"name": "Bank", "kind": "bank"})).json()
    r = await client.post("/v1/offers", json={**OFFER_EXAMPLE, "funder_id": funder["id"], **over})
    assert r.status_code == 201, r.text
    return funder, r.json()


def _agreed(
    offer_id: str, match_id: str, amount: int, type: str = "g60.match.agreed.v1"
) -> Envelope:
    data = {
        "id": match_id,
        "project_id": f"prj_{match_id}",
        "offer_id": offer_id,
        "enterprise_id": "ent_1",
        "funder_id": "fun_1",
        "instrument": "credit_loan",
        "status": "agreed",
        "score": 0.7,
        "allocated": False,
        "enterprise_view": {"total": 0.7, "terms": []},
        "funder_view": {"total": 0.7, "terms": []},
        "amount_cny": amount,
        "accepted_by_enterprise": True,
        "accepted_by_funder": True,
        "closed_amount_cny": amount if type == "g60.deal.closed.v1" else None,
        "version": 2,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    return Envelope(type=type, source="/test", subject=match_id, data=data)


async def test_offer_is_published_with_its_capacity(env):
    client, bus, _, built = env
    _, offer = await _offer(client)
    assert offer["remaining_cny"] == OFFER_EXAMPLE["capacity_cny"]
    assert offer["funder_kind"] == "bank" and offer["status"] == "active"
    await built.relay.drain()
    assert [e.type for _, e in bus.log] == ["g60.funder.registered.v1", "g60.offer.published.v1"]


async def test_bad_ticket_range_names_the_field(env):
    client, *_ = env
    funder = (await client.post("/v1/funders", json={"name": "B", "kind": "bank"})).json()
    r = await client.post(
        "/v1/offers",
        json={
            **OFFER_EXAMPLE,
            "funder_id": funder["id"],
            "ticket_min_cny": 10,
            "ticket_max_cny": 5,
        },
    )
    assert r.status_code == 422
    assert r.json()["invalid_params"][0]["name"] == "body.ticket_min_cny"


async def test_funder_manages_only_its_own_offers_but_reads_the_catalogue(env):
    client, _, keys, _ = env
    funder_a, offer_a = await _offer(client)
    funder_b, offer_b = await _offer(client)
    as_a = {"Authorization": f"Bearer {await keys.create(Role.funder, funder_a['id'])}"}
    assert (await client.get(f"/v1/offers/{offer_b['id']}", headers=as_a)).status_code == 200
    assert (
        await client.post(f"/v1/offers/{offer_b['id']}/withdraw", headers=as_a)
    ).status_code == 404
    own = await client.post("/v1/offers", json={**OFFER_EXAMPLE, "funder_id": None}, headers=as_a)
    assert own.status_code == 201 and own.json()["funder_id"] == funder_a["id"]
    as_ent = {"Authorization": f"Bearer {await keys.create(Role.enterprise, 'ent_1')}"}
    assert (await client.post("/v1/offers", json=OFFER_EXAMPLE, headers=as_ent)).status_code == 403


async def test_fifty_concurrent_agreements_reserve_exactly_max_deals(env):
    client, bus, _, built = env
    _, offer = await _offer(client, capacity_cny=1_000_000_000, max_deals=5)
    handle = match_events(built.service)
    await asyncio.gather(*(handle(_agreed(offer["id"], f"m{i}", 10_000_000)) for i in range(50)))
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["deals_taken"] == 5 and after["reserved_cny"] == 50_000_000
    await built.relay.drain()
    types = [e.type for _, e in bus.log]
    assert types.count("g60.capacity.reserved.v1") == 5
    assert types.count("g60.capacity.rejected.v1") == 45


async def test_capacity_is_never_overbooked(env):
    client, _, _, built = env
    _, offer = await _offer(client, capacity_cny=35_000_000, max_deals=None)
    handle = match_events(built.service)
    await asyncio.gather(*(handle(_agreed(offer["id"], f"m{i}", 10_000_000)) for i in range(20)))
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["reserved_cny"] == 30_000_000 and after["remaining_cny"] == 5_000_000


async def test_redelivered_agreement_reserves_once_and_close_commits_and_decline_releases(env):
    client, bus, _, built = env
    _, offer = await _offer(client, capacity_cny=100_000_000)
    handle = match_events(built.service)
    await handle(_agreed(offer["id"], "m1", 20_000_000))
    await handle(_agreed(offer["id"], "m1", 20_000_000))
    await handle(_agreed(offer["id"], "m2", 10_000_000))
    mid = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert mid["reserved_cny"] == 30_000_000 and mid["deals_taken"] == 2
    await handle(_agreed(offer["id"], "m1", 18_000_000, "g60.deal.closed.v1"))
    await handle(_agreed(offer["id"], "m1", 18_000_000, "g60.deal.closed.v1"))
    await handle(_agreed(offer["id"], "m2", 10_000_000, "g60.match.declined.v1"))
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["committed_cny"] == 18_000_000  # 2 m of the reservation released
    assert after["reserved_cny"] == 0 and after["deals_taken"] == 1
    assert after["remaining_cny"] == 82_000_000


async def test_withdrawn_offer_rejects_reservations(env):
    client, bus, _, built = env
    _, offer = await _offer(client)
    await client.post(f"/v1/offers/{offer['id']}/withdraw")
    await match_events(built.service)(_agreed(offer["id"], "m1", 5_000_000))
    await built.relay.drain()
    rejected = [e for _, e in bus.log if e.type == "g60.capacity.rejected.v1"]
    assert rejected[0].data["reason"] == "withdrawn"
    assert (await client.patch(f"/v1/offers/{offer['id']}", json={"name": "x"})).status_code == 409


async def test_malformed_match_event_is_refused_for_the_dead_letter_queue(env):
    _, _, _, built = env
    bad = Envelope(type="g60.match.agreed.v1", source="/t", subject="m", data={"id": "m"})
    with pytest.raises(ValidationError):
        await match_events(built.service)(bad)


async def test_capacity_cannot_shrink_below_what_is_held(env):
    client, _, _, built = env
    _, offer = await _offer(client, capacity_cny=100_000_000)
    await match_events(built.service)(_agreed(offer["id"], "m1", 30_000_000))
    r = await client.patch(f"/v1/offers/{offer['id']}", json={"capacity_cny": 20_000_000})
    assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == "body.capacity_cny"
    ok = await client.patch(
        f"/v1/offers/{offer['id']}", json={"capacity_cny": 50_000_000}, headers={"If-Match": '"2"'}
    )
    assert ok.status_code == 200 and ok.json()["remaining_cny"] == 20_000_000
