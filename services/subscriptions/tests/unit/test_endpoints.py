"""The endpoints API: register (with its whsec_ secret), filters, ownership, update, disable,
rotation with overlap, test events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from g60_contracts.enums import Role
from services.subscriptions.tests.unit.conftest import Env
from subscriptions.adapters.sender import signed_headers
from subscriptions.service.ports import WebhookRequest
from tests.polling import eventually


async def test_register_returns_a_standard_webhooks_secret_shown_once(env: Env) -> None:
    created = await env.register(event_types=["match.*", "offer.published"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["match.*", "offer.published"]
    assert created["status"] == "enabled"
    r = await env.client.get(f"/v1/webhook-endpoints/{created['id']}")
    assert r.status_code == 200 and "secret" not in r.json()


async def test_an_unknown_filter_is_a_422_naming_event_types(env: Env) -> None:
    for bad in (["match.nope"], ["nope.*"], []):
        r = await env.client.post(
            "/v1/webhook-endpoints", json={"url": "https://p.example/h", "event_types": bad}
        )
        assert r.status_code == 422, (bad, r.text)
        assert "event_types" in r.text


async def test_plain_http_and_internal_addresses_are_refused_naming_url(env: Env) -> None:
    for url in ("http://partner.example/h", "https://10.1.2.3/h", "https://[::1]/h"):
        r = await env.client.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["invalid_params"][0]["name"] == "body.url"


async def test_idempotency_key_returns_the_first_endpoint(env: Env) -> None:
    body = {"url": "https://p.example/h", "event_types": ["*"]}
    headers = {"Idempotency-Key": "k1"}
    first = await env.client.post("/v1/webhook-endpoints", json=body, headers=headers)
    again = await env.client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


async def test_an_endpoint_is_its_owners_only(env: Env) -> None:
    mine = await env.as_(Role.enterprise, "ent_a")
    theirs = await env.as_(Role.enterprise, "ent_b")
    created = await env.register(mine)
    assert (
        await env.client.get(f"/v1/webhook-endpoints/{created['id']}", headers=theirs)
    ).status_code == 404
    listed = (await env.client.get("/v1/webhook-endpoints", headers=theirs)).json()["items"]
    assert listed == []
    listed = (await env.client.get("/v1/webhook-endpoints", headers=mine)).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    everything = (await env.client.get("/v1/webhook-endpoints")).json()["items"]
    assert created["id"] in [e["id"] for e in everything]  # the operator sees all


async def test_a_partners_rotated_key_still_manages_its_endpoints(env: Env) -> None:
    """`make keys-rotate`: the successor (and its own successor) manages the endpoints the
    first key registered; another partner's key does not see them."""
    first = await env.keys.create(Role.partner)
    created = await env.register({"Authorization": f"Bearer {first}"})
    path = f"/v1/webhook-endpoints/{created['id']}"
    key_id = first[4:].split(".", 1)[0]
    second, info = await env.keys.rotate(key_id, timedelta(hours=1))
    third, _ = await env.keys.rotate(info.id, timedelta(hours=1))
    for key in (second, third):
        mine = {"Authorization": f"Bearer {key}"}
        assert (await env.client.get(path, headers=mine)).status_code == 200
        listed = (await env.client.get("/v1/webhook-endpoints", headers=mine)).json()["items"]
        assert [e["id"] for e in listed] == [created["id"]]
    r = await env.client.patch(path, json={"description": "after"}, headers=mine)
    assert r.status_code == 200 and r.json()["description"] == "after"
    other = await env.as_(Role.partner)
    assert (await env.client.get(path, headers=other)).status_code == 404
    assert (await env.client.get("/v1/webhook-endpoints", headers=other)).json()["items"] == []


async def test_update_disable_and_enable_again(env: Env) -> None:
    created = await env.register()
    path = f"/v1/webhook-endpoints/{created['id']}"
    r = await env.client.patch(path, json={"event_types": ["project.*"], "ordered": True})
    assert r.status_code == 200 and r.json()["event_types"] == ["project.*"] and r.json()["ordered"]
    r = await env.client.post(f"{path}/disable")
    assert r.json()["status"] == "disabled" and "disabled by key" in r.json()["disabled_reason"]
    r = await env.client.patch(path, json={"enabled": True})
    assert r.json()["status"] == "enabled" and r.json()["disabled_reason"] is None
    r = await env.client.patch(path, json={"description": "x"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412


async def test_rotation_signs_with_both_secrets_during_the_overlap(env: Env) -> None:
    created = await env.register()
    old = created["secret"]
    r = await env.client.post(
        f"/v1/webhook-endpoints/{created['id']}/rotate", json={"overlap_s": 3600}
    )
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and new.startswith("whsec_")
    await env.client.post(f"/v1/webhook-endpoints/{created['id']}/test")
    await eventually(lambda: env.sender.requests)
    request = env.sender.requests[0]
    assert set(request.secrets) == {old, new}
    headers = signed_headers(request)
    for secret in (old, new):
        Webhook(secret).verify(request.body, headers)  # raises when it does not verify
    # after the overlap only the new one signs
    endpoint = await env.built.service.endpoints.endpoints.get(created["id"])
    assert endpoint is not None
    later = datetime.now(UTC) + timedelta(hours=2)
    assert endpoint.signing_secrets(later) == [new]


async def test_a_test_event_is_delivered_and_logged(env: Env) -> None:
    created = await env.register()
    r = await env.client.post(f"/v1/webhook-endpoints/{created['id']}/test")
    assert r.status_code == 202 and r.json()["event_type"] == "g60.webhook.test.v1"
    delivery = r.json()["id"]
    path = f"/v1/webhook-endpoints/{created['id']}/deliveries"

    async def delivered() -> bool:
        item = (await env.client.get(f"{path}/{delivery}")).json()
        return item["status"] == "delivered"

    await eventually(delivered)
    log = (await env.client.get(path)).json()["items"]
    assert [d["id"] for d in log] == [delivery]
    assert log[0]["attempts"][0]["status_code"] == 200


def test_the_signature_is_the_standard_webhooks_one() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime.fromtimestamp(1614265330, UTC)
    body = '{"test": 2432232314}'
    request = WebhookRequest("https://x", "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body, [secret])
    # the example of the Standard Webhooks specification
    assert signed_headers(request)["webhook-signature"] == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
