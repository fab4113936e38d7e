"""The funding service over HTTP on fakes (memory store, memory bus): funders and the offer
catalogue — roles, validation, If-Match, Idempotency-Key, pages — and the events they publish."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from funding.bootstrap import FundingApp
from funding.entrypoints.consumer import match_events
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_contracts.enums import Role
from g60_contracts.funding import OFFER_EXAMPLE

Env = tuple[httpx.AsyncClient, MemoryBus, KeyStore, FundingApp]  # the conftest fixtures
Publish = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
PROBLEM = "application/problem+json"


async def _as(keys: KeyStore, role: Role, tenant: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {await keys.create(role, tenant)}"}


async def test_publish_offer_stores_it_and_publishes_the_snapshot(
    env: Env, publish: Publish
) -> None:
    client, bus, _, built = env
    funder, _ = await publish()
    r = await client.post("/v1/offers", json={**OFFER_EXAMPLE, "funder_id": funder["id"]})
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    offer = r.json()
    assert r.headers["location"] == f"/v1/offers/{offer['id']}"
    assert offer["remaining_cny"] == OFFER_EXAMPLE["capacity_cny"]
    assert (offer["funder_kind"], offer["status"], offer["version"]) == ("bank", "active", 1)
    assert (offer["reserved_cny"], offer["committed_cny"], offer["deals_taken"]) == (0, 0, 0)
    assert "reservations" not in offer and "request_hash" not in offer
    got = await client.get(f"/v1/funders/{funder['id']}")
    assert got.status_code == 200 and got.json()["kind"] == "bank"

    await built.relay.drain()
    topic = built.settings.topic_funding
    sent = [(t, e.type, e.subject) for t, e in bus.log]
    assert (topic, "g60.funder.registered.v1", funder["id"]) in sent
    assert (topic, "g60.offer.published.v1", offer["id"]) in sent
    snapshot = next(e.data for _, e in bus.log if e.subject == offer["id"])
    assert snapshot == offer  # the event carries the offer exactly as the API shows it


async def test_rule_and_schema_errors_are_problem_json_naming_the_field(
    env: Env, publish: Publish
) -> None:
    client, *_ = env
    funder, offer = await publish()
    base = {**OFFER_EXAMPLE, "funder_id": funder["id"]}
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({**base, "ticket_min_cny": 10, "ticket_max_cny": 5}, {"body.ticket_min_cny"}),
        ({**base, "valid_from": "2028-01-01"}, {"body.valid_from"}),  # after valid_until
        (
            {**base, "instrument": "magic", "capacity_cny": -1},
            {"body.instrument", "body.capacity_cny"},
        ),
        ({**base, "funder_id": None}, {"body.funder_id"}),  # an operator must name the funder
        ({**base, "funder_id": "fun_nope"}, {"body.funder_id"}),
    ]
    for body, names in cases:
        r = await client.post("/v1/offers", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, body
        assert {p["name"] for p in r.json()["invalid_params"]} == names
        assert "Traceback" not in r.text
    url = f"/v1/offers/{offer['id']}"
    for patch, name in [
        ({"ticket_max_cny": 1}, "body.ticket_max_cny"),
        ({"name": None}, "body.name"),
    ]:
        r = await client.patch(url, json=patch)
        assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == name
    missing = await client.get("/v1/offers/off_nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_roles_tenancy_and_the_public_catalogue(env: Env, publish: Publish) -> None:
    client, _, keys, _ = env
    funder_a, offer_a = await publish()
    funder_b, offer_b = await publish()
    as_a = await _as(keys, Role.funder, funder_a["id"])
    as_partner = await _as(keys, Role.partner)
    as_ent = await _as(keys, Role.enterprise, "ent_1")

    assert (await client.get("/v1/offers", headers={"Authorization": ""})).status_code == 401
    for who in (as_a, as_partner, as_ent):  # every role reads the catalogue
        assert (await client.get(f"/v1/offers/{offer_b['id']}", headers=who)).status_code == 200
        assert len((await client.get("/v1/offers", headers=who)).json()["items"]) == 2
        assert (await client.get(f"/v1/funders/{funder_b['id']}", headers=who)).status_code == 200
    for who in (as_partner, as_ent):  # but only operators and funders write offers
        assert (await client.post("/v1/offers", json=OFFER_EXAMPLE, headers=who)).status_code == 403
        r = await client.post(f"/v1/offers/{offer_a['id']}/withdraw", headers=who)
        assert r.status_code == 403
    funder = {"name": "X", "kind": "vc"}
    assert (await client.post("/v1/funders", json=funder, headers=as_a)).status_code == 403

    # a funder key manages its own offers only: another funder's is a 404 to write
    other = f"/v1/offers/{offer_b['id']}"
    assert (await client.patch(other, json={"name": "mine"}, headers=as_a)).status_code == 404
    assert (await client.post(f"{other}/withdraw", headers=as_a)).status_code == 404
    theirs = {**OFFER_EXAMPLE, "funder_id": funder_b["id"]}
    assert (await client.post("/v1/offers", json=theirs, headers=as_a)).status_code == 404
    own = await client.post("/v1/offers", json={**OFFER_EXAMPLE, "funder_id": None}, headers=as_a)
    assert own.status_code == 201 and own.json()["funder_id"] == funder_a["id"]
    mine = f"/v1/offers/{offer_a['id']}"
    assert (await client.patch(mine, json={"name": "mine"}, headers=as_a)).status_code == 200


async def test_idempotency_key_returns_the_first_offer(env: Env, publish: Publish) -> None:
    client, *_ = env
    funder, _ = await publish()
    body = {**OFFER_EXAMPLE, "funder_id": funder["id"]}
    first = await client.post("/v1/offers", json=body, headers={"Idempotency-Key": "k1"})
    again = await client.post("/v1/offers", json=body, headers={"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    changed = {**body, "capacity_cny": 1}
    other = await client.post("/v1/offers", json=changed, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422


async def test_patch_with_if_match_then_withdraw(env: Env, publish: Publish) -> None:
    client, bus, _, built = env
    _, offer = await publish()
    url = f"/v1/offers/{offer['id']}"
    stale = await client.patch(url, json={"capacity_cny": 1}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    ok = await client.patch(url, json={"capacity_cny": 600_000_000}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    assert ok.json()["remaining_cny"] == 600_000_000
    w = await client.post(f"{url}/withdraw")
    assert w.json()["status"] == "withdrawn" and w.headers["etag"] == '"3"'
    assert (await client.post(f"{url}/withdraw")).json()["version"] == 3  # idempotent
    conflict = await client.patch(url, json={"name": "again"})
    assert conflict.status_code == 409 and conflict.headers["content-type"] == PROBLEM
    await built.relay.drain()
    types = [e.type for _, e in bus.log if e.subject == offer["id"]]
    assert types == [
        "g60.offer.published.v1",
        "g60.offer.updated.v1",
        "g60.offer.capacity_changed.v1",
        "g60.offer.withdrawn.v1",
    ]


async def test_a_patch_without_if_match_survives_racing_reservations(
    env: Env, publish: Publish
) -> None:
    client, _, _, built = env
    _, offer = await publish()
    agreed = [
        Envelope(
            type="g60.match.agreed.v1",
            source="/t",
            subject=f"m{i}",
            data={
                "id": f"m{i}",
                "project_id": "prj_1",
                "offer_id": offer["id"],
                "enterprise_id": "ent_1",
                "funder_id": offer["funder_id"],
                "instrument": "credit_loan",
                "status": "agreed",
                "score": 0.7,
                "allocated": False,
                "enterprise_view": {"total": 0.7, "terms": []},
                "funder_view": {"total": 0.7, "terms": []},
                "amount_cny": 1_000_000,
                "accepted_by_enterprise": True,
                "accepted_by_funder": True,
                "version": 2,
                "created_at": "2026-11-26T00:00:00Z",
                "updated_at": "2026-11-26T00:00:00Z",
            },
        )
        for i in range(10)
    ]
    handle = match_events(built.service)
    patch = client.patch(f"/v1/offers/{offer['id']}", json={"name": "renamed"})
    r, *_ = await asyncio.gather(patch, *(handle(e) for e in agreed))
    assert isinstance(r, httpx.Response) and r.status_code == 200
    after = (await client.get(f"/v1/offers/{offer['id']}")).json()
    assert after["name"] == "renamed" and after["deals_taken"] == 10


async def test_filters_and_pages_walk_the_catalogue_once(env: Env, publish: Publish) -> None:
    client, *_ = env
    bank, _ = await publish()
    vc, _ = await publish(kind="vc", instrument="equity")
    ids = set()
    for i in range(6):
        body = {**OFFER_EXAMPLE, "funder_id": bank["id"], "name": f"o{i}"}
        ids.add((await client.post("/v1/offers", json=body)).json()["id"])
    (await client.post(f"/v1/offers/{ids.copy().pop()}/withdraw")).raise_for_status()

    async def walk(**params: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            page = (
                await client.get(
                    "/v1/offers",
                    params={"limit": 3, **params, **({"cursor": cursor} if cursor else {})},
                )
            ).json()
            seen += [o["id"] for o in page["items"]]
            if not (cursor := page["next_cursor"]):
                return seen

    everything = await walk()
    assert len(everything) == len(set(everything)) == 8
    assert (
        set(await walk(funder_id=bank["id"])) >= ids and len(await walk(funder_id=bank["id"])) == 7
    )
    assert len(await walk(instrument="equity")) == 1
    assert len(await walk(status="withdrawn")) == 1
    assert len(await walk(funder_id=bank["id"], status="active")) == 6
    bad = await client.get("/v1/offers", params={"cursor": "a"})  # not base64 of an id
    assert bad.status_code == 422 and bad.json()["invalid_params"][0]["name"].endswith("cursor")


@pytest.mark.parametrize("path", ["/openapi.json", "/asyncapi"])
async def test_the_contract_documents(env: Env, path: str) -> None:
    client, *_ = env
    r = await client.get(path)
    assert r.status_code == 200
    text = r.text
    assert "G60 funding" in text
    if path == "/asyncapi":
        assert "g60.capacity.reserved.v1" in text and "g60.match.agreed.v1" in text


# what an outside probe got through (issue 10): a NaN weight broke the catalogue for everyone
@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"preferences": {"weights": {"sector": float("nan")}}}, "body.preferences.weights.sector"),
        ({"preferences": {"weights": {"cost": 1.0}}}, "body.preferences.weights.cost.[key]"),
        ({"max_deals": 10**20}, "body.max_deals"),
        ({"capacity_cny": True}, "body.capacity_cny"),
        ({"stages": ["seed", "seed"]}, "body.stages"),
        ({"name": "\u200b"}, "body.name"),
    ],
)
async def test_an_offer_the_matcher_could_not_take_is_a_422(
    env: Env, publish: Publish, over: dict[str, Any], field: str
) -> None:
    client = env[0]
    funder, _ = await publish()
    body = {**OFFER_EXAMPLE, "funder_id": funder["id"], **over}
    r = await client.post(
        "/v1/offers",
        content=json.dumps(body, allow_nan=True),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert field in {p["name"] for p in r.json()["invalid_params"]}
    assert (await client.get("/v1/offers")).status_code == 200


async def test_an_infinite_weight_in_a_patch_is_a_422_and_the_catalogue_still_reads(
    env: Env, publish: Publish
) -> None:
    client = env[0]
    _, offer = await publish()
    r = await client.patch(
        f"/v1/offers/{offer['id']}",
        content='{"preferences": {"weights": {"sector": Infinity}}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert (await client.get(f"/v1/offers/{offer['id']}")).status_code == 200
    assert (await client.patch(f"/v1/offers/{offer['id']}", json={"name": None})).status_code == 422


async def test_a_funder_key_reused_for_another_body_is_a_422(env: Env) -> None:
    client = env[0]
    body = {"name": "Bank", "kind": "bank"}
    first = await client.post("/v1/funders", json=body, headers={"Idempotency-Key": "f1"})
    again = await client.post("/v1/funders", json=body, headers={"Idempotency-Key": "f1"})
    other = await client.post(
        "/v1/funders", json={**body, "name": "Other"}, headers={"Idempotency-Key": "f1"}
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 422)
    assert again.json() == first.json()


async def test_concurrent_retries_of_an_offer_get_the_first_result(
    env: Env, publish: Publish
) -> None:
    client = env[0]
    funder, _ = await publish()
    body = {**OFFER_EXAMPLE, "funder_id": funder["id"]}
    rs = await asyncio.gather(
        *(client.post("/v1/offers", json=body, headers={"Idempotency-Key": "o"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in rs) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in rs}) == 1
