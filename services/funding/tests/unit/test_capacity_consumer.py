"""The capacity ledger driven by match events through the service's own consumer, on fakes:
message in, state and events out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from funding.bootstrap import FundingApp
from funding.entrypoints.consumer import match_events
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus, PermanentError
from g60_chassis.envelope import Envelope

Env = tuple[httpx.AsyncClient, MemoryBus, KeyStore, FundingApp]  # the conftest fixtures
Publish = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]

T0 = datetime(2026, 11, 26, tzinfo=UTC)
AGREED, CLOSED = "g60.match.agreed.v1", "g60.deal.closed.v1"


def match(
    offer_id: str, match_id: str, amount: int, type: str = AGREED, closed: int | None = None
) -> Envelope:
    """A MatchSnapshot event as the matching service publishes it."""
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
        "closed_amount_cny": closed,
        "version": 2,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    return Envelope(type=type, source="/test", subject=match_id, data=data)


async def _state(env: Env, offer_id: str) -> dict[str, Any]:
    doc = await env[3].service.offers.raw(offer_id)
    assert doc is not None
    return doc


@pytest.mark.parametrize(
    ("room", "reason"),
    [
        ({"capacity_cny": 1_000_000_000, "max_deals": 5}, "max_deals"),
        ({"capacity_cny": 50_000_000, "max_deals": None}, "capacity"),
    ],
)
async def test_fifty_concurrent_agreements_reserve_exactly_five(
    env: Env, publish: Publish, room: dict[str, Any], reason: str
) -> None:
    client, bus, _, built = env
    _, offer = await publish(**room)
    handle = match_events(built.service)
    await asyncio.gather(*(handle(match(offer["id"], f"m{i}", 10_000_000)) for i in range(50)))

    assert built.store.conflicts > 0  # type: ignore[attr-defined]  # the writers did race
    doc = await _state(env, offer["id"])
    states = [r["state"] for r in doc["reservations"].values()]
    assert states.count("reserved") == 5 and states.count("rejected") == 45
    assert {r["reason"] for r in doc["reservations"].values() if r["reason"]} == {reason}
    assert doc["deals_taken"] == 5 and doc["reserved_cny"] == 50_000_000
    assert doc["reserved_cny"] + doc["committed_cny"] <= doc["capacity_cny"]

    await built.relay.drain()
    decisions = [e for _, e in bus.log if e.type.startswith("g60.capacity.")]
    assert [e.type for e in decisions].count("g60.capacity.reserved.v1") == 5
    assert [e.type for e in decisions].count("g60.capacity.rejected.v1") == 45
    assert all(e.subject == offer["id"] for e in decisions)  # keyed by offer: one partition
    snapshots = [e.data for _, e in bus.log if e.type == "g60.offer.capacity_changed.v1"]
    assert len(snapshots) == 5
    for s in [*snapshots, *(e.data for e in decisions)]:
        assert s["remaining_cny"] >= 0  # never negative, at any step
    for s in snapshots:
        assert s["reserved_cny"] + s["committed_cny"] <= s["capacity_cny"]
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["remaining_cny"] == room["capacity_cny"] - 50_000_000


async def test_a_redelivered_agreement_reserves_once(env: Env, publish: Publish) -> None:
    client, bus, _, built = env
    _, offer = await publish(capacity_cny=100_000_000)
    handle = match_events(built.service)
    await handle(match(offer["id"], "m1", 20_000_000))
    await handle(match(offer["id"], "m1", 20_000_000))
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["reserved_cny"] == 20_000_000 and after["deals_taken"] == 1
    await built.relay.drain()
    reserved = [(t, e) for t, e in bus.log if e.type == "g60.capacity.reserved.v1"]
    assert len(reserved) == 1
    topic, event = reserved[0]
    assert topic == built.settings.topic_funding and event.subject == offer["id"]
    assert event.data == {
        "match_id": "m1",
        "offer_id": offer["id"],
        "project_id": "prj_m1",
        "amount_cny": 20_000_000,
        "remaining_cny": 80_000_000,
        "reason": None,
    }
    changed = next(e.data for _, e in bus.log if e.type == "g60.offer.capacity_changed.v1")
    assert changed["remaining_cny"] == 80_000_000 and changed["funder_kind"] == "bank"
    assert changed["deals_taken"] == 1 and changed["version"] == 2
    assert "reservations" not in changed


async def test_close_commits_once_and_decline_releases(env: Env, publish: Publish) -> None:
    client, _, _, built = env
    _, offer = await publish(capacity_cny=100_000_000)
    handle = match_events(built.service)
    await handle(match(offer["id"], "m1", 20_000_000))
    await handle(match(offer["id"], "m2", 10_000_000))
    for _ in range(2):
        await handle(match(offer["id"], "m1", 20_000_000, CLOSED, closed=18_000_000))
        await handle(match(offer["id"], "m2", 10_000_000, "g60.match.declined.v1"))
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["committed_cny"] == 18_000_000  # 2 m of the reservation released
    assert after["reserved_cny"] == 0 and after["deals_taken"] == 1
    assert after["remaining_cny"] == 82_000_000
    doc = await _state(env, offer["id"])
    assert doc["reservations"]["m1"] == {
        "amount_cny": 18_000_000,
        "state": "committed",
        "reason": None,
    }
    assert doc["reservations"]["m2"]["state"] == "released"


@pytest.mark.parametrize("type", ["g60.match.expired.v1", "g60.match.retracted.v1"])
async def test_expiry_and_retraction_release(env: Env, publish: Publish, type: str) -> None:
    client, _, _, built = env
    _, offer = await publish(capacity_cny=100_000_000)
    handle = match_events(built.service)
    await handle(match(offer["id"], "m1", 20_000_000))
    await handle(match(offer["id"], "m1", 20_000_000, type))
    await handle(match(offer["id"], "m9", 20_000_000, type))  # never reserved: nothing to do
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert (after["remaining_cny"], after["deals_taken"], after["version"]) == (100_000_000, 0, 3)


async def test_a_close_above_the_reservation_never_overbooks(
    env: Env, publish: Publish, caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _, built = env
    _, offer = await publish(capacity_cny=100_000_000)
    handle = match_events(built.service)
    await handle(match(offer["id"], "m1", 20_000_000))
    await handle(match(offer["id"], "m2", 75_000_000))
    await handle(match(offer["id"], "m1", 20_000_000, CLOSED, closed=25_000_000))  # fits
    await handle(match(offer["id"], "m2", 75_000_000, CLOSED, closed=90_000_000))  # does not
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["committed_cny"] == 25_000_000 + 75_000_000
    assert after["remaining_cny"] == 0
    assert "committed the reserved amount only" in caplog.text


async def test_withdrawn_offer_rejects_reservations(env: Env, publish: Publish) -> None:
    client, bus, _, built = env
    _, offer = await publish()
    await client.post(f"/v1/offers/{offer['id']}/withdraw")
    await match_events(built.service)(match(offer["id"], "m1", 5_000_000))
    await built.relay.drain()
    rejected = [e for _, e in bus.log if e.type == "g60.capacity.rejected.v1"]
    assert rejected[0].data["reason"] == "withdrawn"


async def test_malformed_match_event_is_refused_for_the_dead_letter_queue(env: Env) -> None:
    built = env[3]
    bad = Envelope(type=AGREED, source="/t", subject="m", data={"id": "m"})
    with pytest.raises(ValidationError):
        await match_events(built.service)(bad)
    with pytest.raises(PermanentError):  # an agreement on an offer that never existed
        await match_events(built.service)(match("off_nope", "m1", 1))


async def test_the_bus_dead_letters_a_malformed_event_and_keeps_going(
    env: Env, publish: Publish
) -> None:
    client, bus, _, built = env
    _, offer = await publish()
    topic = built.settings.topic_matches
    await bus.publish(topic, Envelope(type=AGREED, source="/t", subject="m", data={"x": 1}))
    await bus.publish(topic, match(offer["id"], "m1", 5_000_000))
    assert [d.topic for d in bus.dead_letters] == [f"{topic}.dlq"]
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["reserved_cny"] == 5_000_000


async def test_capacity_cannot_shrink_below_what_is_held(env: Env, publish: Publish) -> None:
    client, _, _, built = env
    _, offer = await publish(capacity_cny=100_000_000)
    await match_events(built.service)(match(offer["id"], "m1", 30_000_000))
    r = await client.patch(f"/v1/offers/{offer['id']}", json={"capacity_cny": 20_000_000})
    assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == "body.capacity_cny"
    ok = await client.patch(
        f"/v1/offers/{offer['id']}", json={"capacity_cny": 50_000_000}, headers={"If-Match": '"2"'}
    )
    assert ok.status_code == 200 and ok.json()["remaining_cny"] == 20_000_000
