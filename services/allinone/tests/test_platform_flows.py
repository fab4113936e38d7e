"""The three services on fakes (memory stores, in-process bus) behind one ASGI app: the flows a
partner relies on, beyond the happy path of the demo deal."""

from __future__ import annotations

import random

import httpx
import pytest
from asgi_lifespan import LifespanManager

from allinone.app import build_parts, create
from allinone.catalogue import uscc
from g60_chassis.envelope import Envelope
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from services.allinone.tests.settling import settle


@pytest.fixture
async def platform():
    settings = PlatformSettings(store="memory", bus="memory", outbox_interval_s=0.05)
    parts = build_parts(settings)
    app = create(settings, parts)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
        key = await parts[0].keys.create(Role.operator)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {key}"}
        ) as client:

            async def settle_all() -> None:
                await settle(parts)

            yield client, parts, settle_all


async def _catalogue(client, rng, cities=(), sectors=("aerospace",)):
    funder = (await client.post("/v1/funders", json={"name": "B", "kind": "bank"})).json()
    offer = (
        await client.post(
            "/v1/offers",
            json={
                "funder_id": funder["id"],
                "name": "科创贷",
                "instrument": "credit_loan",
                "ticket_min_cny": 1_000_000,
                "ticket_max_cny": 30_000_000,
                "capacity_cny": 10**9,
                "cities": list(cities),
                "sectors": list(sectors),
                "pricing": {"rate_bp": 380},
            },
        )
    ).json()
    ent = (
        await client.post(
            "/v1/enterprises",
            json={
                "name": "E",
                "uscc": uscc(rng, 0),
                "city": "wuhu",
                "sectors": ["aerospace"],
                "founded_on": "2018-01-01",
            },
        )
    ).json()
    project = (
        await client.post(
            "/v1/projects",
            json={
                "enterprise_id": ent["id"],
                "title": "T",
                "amount_cny": 5_000_000,
                "instruments": ["credit_loan"],
                "stage": "series_a",
                "sector": "aerospace",
            },
        )
    ).json()
    return funder, offer, ent, project


async def test_withdrawn_offer_retracts_its_proposals(platform):
    client, _, settle = platform
    _, offer, _, project = await _catalogue(client, random.Random(1))
    await settle()
    [match] = (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"]
    assert match["offer_id"] == offer["id"] and match["status"] == "proposed"
    await client.post(f"/v1/offers/{offer['id']}/withdraw")
    await settle()
    assert (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"] == []
    shown = await client.get(f"/v1/projects/{project['id']}/matches", params={"all": True})
    assert [m["status"] for m in shown.json()["items"]] == ["retracted"]


async def test_why_not_names_the_rule_and_advice_counts_the_gain(platform):
    client, _, settle = platform
    _, offer, _, project = await _catalogue(client, random.Random(2), cities=("shanghai",))
    await settle()
    why = (
        await client.get(f"/v1/projects/{project['id']}/explain", params={"offer_id": offer["id"]})
    ).json()
    assert why["eligible"] is False
    assert {"rule": "city", "need": "wuhu", "offer": ["shanghai"]} in why["reasons"]
    assert why["enterprise_view"]["terms"] and why["funder_view"]["terms"]


async def test_operator_must_say_which_side_it_accepts_for(platform):
    client, _, settle = platform
    _, _, _, project = await _catalogue(client, random.Random(3))
    await settle()
    [match] = (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"]
    r = await client.post(f"/v1/matches/{match['id']}/accept")
    assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == "query.side"
    ok = await client.post(f"/v1/matches/{match['id']}/accept", params={"side": "funder"})
    assert ok.json()["accepted_by_funder"] and ok.json()["status"] == "proposed"


async def test_a_project_that_arrives_before_its_enterprise_is_matched_when_it_does(platform):
    client, parts, settle = platform
    bus = parts[0].bus
    _, offer, ent, project = await _catalogue(client, random.Random(4))
    await settle()
    # replay into a fresh matcher the other way round: project first, then its enterprise
    from matching.bootstrap import bootstrap

    fresh = bootstrap(PlatformSettings(store="memory"), bus=type(bus)(), keys=parts[0].keys)
    data_project = (await client.get(f"/v1/projects/{project['id']}")).json()
    data_ent = (await client.get(f"/v1/enterprises/{ent['id']}")).json()
    data_offer = (await client.get(f"/v1/offers/{offer['id']}")).json()
    await fresh.service.on_offer(OfferSnapshot.model_validate(data_offer))
    await fresh.service.on_project(ProjectSnapshot.model_validate(data_project))
    assert fresh.service.engine.proposals_for_project(project["id"]) == []
    await fresh.service.on_enterprise(EnterpriseRegistered.model_validate(data_ent))
    proposals = fresh.service.engine.proposals_for_project(project["id"])
    assert [p.offer_id for p in proposals] == [offer["id"]]
    stored = await fresh.service.matches.every({"project_id": project["id"]})
    assert [m.offer_id for m in stored] == [offer["id"]]


async def test_a_redelivered_project_event_creates_nothing_twice(platform):
    client, parts, settle = platform
    _, offer, _, project = await _catalogue(client, random.Random(5))
    await settle()
    snapshot = (await client.get(f"/v1/projects/{project['id']}")).json()
    handle = parts[2].bus._subs["g60.projects"][0][1]
    event = Envelope(
        type="g60.project.submitted.v1", source="/t", subject=project["id"], data=snapshot
    )
    await handle(event)
    await handle(event)
    items = (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"]
    assert [m["offer_id"] for m in items] == [offer["id"]]


# what an outside probe broke (issue 10) ------------------------------------------------------
async def test_every_refused_transition_is_a_problem_json_409(platform):
    client, _, settle = platform
    _, _, _, project = await _catalogue(client, random.Random(5))
    await settle()
    [match] = (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"]
    url = f"/v1/matches/{match['id']}"
    early = await client.post(f"{url}/close", json={"amount_cny": 1_000_000})
    assert early.status_code == 409, early.text
    assert early.headers["content-type"] == "application/problem+json"
    assert early.json()["status"] == 409 and early.json()["current_status"] == "proposed"
    assert (await client.post(f"{url}/decline", params={"side": "funder"})).status_code == 200
    refused = await client.post(f"{url}/accept", params={"side": "enterprise"})
    assert refused.status_code == 409 and refused.json()["current_status"] == "declined"


async def test_a_funder_explains_only_projects_it_is_matched_with(platform):
    client, parts, settle = platform
    keys = parts[0].keys
    funder, offer, _, project = await _catalogue(client, random.Random(6))
    stranger, other_offer, _, _ = await _catalogue(client, random.Random(7), cities=("shanghai",))
    await settle()
    matched = await client.get(f"/v1/projects/{project['id']}/matches")
    assert {m["funder_id"] for m in matched.json()["items"]} == {funder["id"]}
    as_stranger = {"Authorization": f"Bearer {await keys.create(Role.funder, stranger['id'])}"}
    probe = await client.get(
        f"/v1/projects/{project['id']}/explain",
        params={"offer_id": other_offer["id"]},
        headers=as_stranger,
    )
    assert probe.status_code == 404, probe.text  # it read the enterprise's city here before
    assert "wuhu" not in probe.text
    as_funder = {"Authorization": f"Bearer {await keys.create(Role.funder, funder['id'])}"}
    seen = await client.get(
        f"/v1/projects/{project['id']}/explain",
        params={"offer_id": offer["id"]},
        headers=as_funder,
    )
    assert seen.status_code == 200 and seen.json()["eligible"] is True


async def test_a_funder_does_not_see_the_enterprise_side_of_the_reasons(platform):
    client, parts, settle = platform
    funder, offer, _, project = await _catalogue(client, random.Random(8))
    await settle()
    await client.patch(f"/v1/offers/{offer['id']}", json={"cities": ["shanghai"]})
    await settle()
    key = await parts[0].keys.create(Role.funder, funder["id"])
    why = await client.get(
        f"/v1/projects/{project['id']}/explain",
        params={"offer_id": offer["id"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert why.status_code == 200, why.text
    body = why.json()
    assert body["eligible"] is False and body["reasons"] == [
        {"rule": "city", "offer": ["shanghai"]}
    ]
    assert "wuhu" not in why.text and body["advice"] == []


async def test_explaining_a_withdrawn_offer_is_a_409_not_a_500(platform):
    client, _, settle = platform
    _, offer, _, project = await _catalogue(client, random.Random(9))
    await settle()
    await client.post(f"/v1/offers/{offer['id']}/withdraw")
    await settle()
    r = await client.get(f"/v1/projects/{project['id']}/explain", params={"offer_id": offer["id"]})
    assert r.status_code == 409, r.text
