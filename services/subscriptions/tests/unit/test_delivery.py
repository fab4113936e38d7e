"""Fan-out, tenancy, retries and endpoint health, message in → deliveries out (fake sender)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.principal import OPERATOR
from g60_contracts.enums import Role
from services.subscriptions.tests.unit import factories as ev
from services.subscriptions.tests.unit.conftest import FAST, Env, FakeSender, start
from subscriptions.domain.delivery import Delivery, SendResult
from subscriptions.service.ports import EndpointDraft
from subscriptions.settings import WebhookSettings
from tests.polling import eventually


async def _deliveries(env: Env, endpoint_id: str) -> list[Delivery]:
    store = env.built.service.dispatcher.deliveries
    return await store.every(endpoint_id)


async def test_the_body_is_the_structured_cloudevent_and_the_id_is_stable(env: Env) -> None:
    endpoint = await env.register(event_types=["project.*"])
    event = ev.project("ent_a")
    await env.publish(event)
    await eventually(lambda: env.sender.requests)
    request = env.sender.requests[0]
    body = json.loads(request.body)
    assert body["specversion"] == "1.0" and body["id"] == event.id
    assert body["type"] == "g60.project.submitted.v1" and body["subject"] == "prj_1"
    assert body["data"]["enterprise_id"] == "ent_a"
    [delivery] = await _deliveries(env, endpoint["id"])
    assert delivery.id == request.message_id


async def test_a_redelivered_event_is_not_delivered_twice(env: Env) -> None:
    await env.register(event_types=["project.*"])
    event = ev.project("ent_a")
    await env.publish(event)
    await env.publish(event)  # Kafka redelivers after a crash
    await eventually(lambda: env.sender.requests)
    await env.client.get("/healthz")
    assert len({r.message_id for r in env.sender.requests}) == 1
    assert len(env.sender.requests) == 1


async def test_filters_pick_the_event_types(env: Env) -> None:
    matches = await env.register(event_types=["match.agreed"])
    everything = await env.register(event_types=["*"])
    await env.publish(ev.match("ent_a", "fun_a", kind="proposed"))
    await env.publish(ev.match("ent_a", "fun_a", kind="agreed"))
    await eventually(lambda: len(env.sender.requests) == 3)
    assert [d.event_type for d in await _deliveries(env, matches["id"])] == ["g60.match.agreed.v1"]
    assert len(await _deliveries(env, everything["id"])) == 2


async def test_an_endpoint_receives_only_what_its_key_may_read(env: Env) -> None:
    keys = {
        "operator": None,
        "ent_a": await env.as_(Role.enterprise, "ent_a"),
        "fun_a": await env.as_(Role.funder, "fun_a"),
        "partner": await env.as_(Role.partner),
    }
    ids = {name: (await env.register(headers))["id"] for name, headers in keys.items()}
    events = [
        ev.project("ent_a", "prj_a"),
        ev.project("ent_b", "prj_b"),
        ev.offer("fun_a", "off_a"),
        ev.offer("fun_b", "off_b"),
        ev.match("ent_a", "fun_b", "mat_ab"),
        ev.match("ent_b", "fun_a", "mat_ba"),
        ev.match("ent_b", "fun_b", "mat_bb"),
        ev.capacity("off_a"),
    ]
    for event in events:
        await env.publish(event)
    await eventually(lambda: len(env.sender.requests) == 8 + 2 + 2 + 4)
    got = {name: sorted(d.subject for d in await _deliveries(env, id)) for name, id in ids.items()}
    assert got["ent_a"] == ["mat_ab", "prj_a"]
    assert got["fun_a"] == ["mat_ba", "off_a"]
    assert got["partner"] == ["off_a", "off_b", "prj_a", "prj_b"]  # the catalogue, no matches
    assert len(got["operator"]) == 8


async def test_a_failing_receiver_gets_retries_with_the_same_webhook_id(env: Env) -> None:
    endpoint = await env.register()
    answers = iter([500, 503, 200])
    env.sender.answer = lambda r: SendResult(status_code=next(answers, 200))
    await env.publish(ev.project("ent_a"))
    await eventually(lambda: len(env.sender.requests) >= 3)
    assert len({r.message_id for r in env.sender.requests}) == 1

    async def delivered() -> bool:
        [d] = await _deliveries(env, endpoint["id"])
        return d.status == "delivered" and [a.status_code for a in d.attempts] == [500, 503, 200]

    await eventually(delivered)


async def test_after_the_last_retry_the_delivery_failed_and_a_manual_retry_sends_it(
    env: Env,
) -> None:
    endpoint = await env.register()
    env.sender.answer = lambda r: SendResult(status_code=500)
    await env.publish(ev.project("ent_a"))

    async def failed() -> Delivery | None:
        [d] = await _deliveries(env, endpoint["id"])
        return d if d.status == "failed" else None

    delivery = await eventually(failed)
    assert len(delivery.attempts) == len(FAST.retry_schedule_s)
    env.sender.answer = lambda r: SendResult(status_code=204)
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery.id}/retry"
    assert (await env.client.post(path)).status_code == 202

    async def delivered() -> bool:
        [d] = await _deliveries(env, endpoint["id"])
        return d.status == "delivered"

    await eventually(delivered)
    assert {r.message_id for r in env.sender.requests} == {delivery.id}


async def test_410_gone_disables_the_endpoint_with_the_reason(env: Env) -> None:
    endpoint = await env.register()
    env.sender.answer = lambda r: SendResult(status_code=410)
    await env.publish(ev.project("ent_a", "prj_1"))

    async def disabled() -> dict | None:
        got = (await env.client.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
        return got if got["status"] == "disabled" else None

    got = await eventually(disabled)
    assert "410" in got["disabled_reason"]
    await env.publish(ev.project("ent_a", "prj_2"))  # a disabled endpoint gets nothing more
    assert len(env.sender.requests) == 1


@pytest.mark.parametrize(
    "hooks", [FAST.model_copy(update={"disable_after_s": 0.05})], ids=["disable_after"]
)
async def test_failing_for_too_long_disables_the_endpoint(env: Env) -> None:
    endpoint = await env.register()
    env.sender.answer = lambda r: SendResult(status_code=500)
    await env.publish(ev.project("ent_a"))

    async def disabled() -> dict | None:
        got = (await env.client.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
        return got if got["status"] == "disabled" else None

    got = await eventually(disabled)
    assert got["disabled_reason"].startswith("every delivery failed since")


@pytest.mark.parametrize(
    "hooks", [FAST.model_copy(update={"retry_schedule_s": (0.0, 0.01, 0.01)})], ids=["fast"]
)
async def test_retry_after_pushes_the_next_attempt_later(env: Env) -> None:
    endpoint = await env.register()
    env.sender.answer = lambda r: SendResult(status_code=429, retry_after_s=3600)
    before = datetime.now(UTC)
    await env.publish(ev.project("ent_a"))

    async def waiting() -> Delivery | None:
        [d] = await _deliveries(env, endpoint["id"])
        return d if d.attempts else None

    delivery = await eventually(waiting)
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at >= before + timedelta(seconds=3600)


async def test_per_subject_order_when_asked(env: Env) -> None:
    endpoint = await env.register(ordered=True, max_in_flight=4)
    first_tries = {"n": 0}

    def answer(request):  # the first event of prj_1 fails twice, the rest go through
        event = json.loads(request.body)
        first = event["type"] == "g60.project.submitted.v1" and event["subject"] == "prj_1"
        if first and first_tries["n"] < 2:
            first_tries["n"] += 1
            return SendResult(status_code=500)
        return SendResult(status_code=200)

    env.sender.answer = answer
    kinds = ["submitted", "updated", "withdrawn"]
    for kind in kinds:
        await env.publish(ev.project("ent_a", "prj_1", kind))
    await env.publish(ev.project("ent_a", "prj_2"))

    async def all_delivered() -> bool:
        return all(d.status == "delivered" for d in await _deliveries(env, endpoint["id"]))

    await eventually(lambda: len(env.sender.requests) >= 6)
    await eventually(all_delivered)
    sent = [json.loads(r.body) for r in env.sender.requests]
    prj_1 = [e["type"] for e in sent if e["subject"] == "prj_1"]
    assert prj_1 == [f"g60.project.{k}.v1" for k in ["submitted"] * 3 + kinds[1:]]


async def test_concurrency_per_endpoint_is_bounded(env: Env) -> None:
    await env.register(max_in_flight=2)
    env.sender.delay_s = 0.02
    for i in range(12):
        await env.publish(ev.project("ent_a", f"prj_{i}"))
    await eventually(lambda: len(env.sender.requests) == 12)
    assert env.sender.max_in_flight == 2


async def test_replay_since_sends_again_with_the_same_ids(env: Env) -> None:
    endpoint = await env.register()
    for i in range(3):
        await env.publish(ev.project("ent_a", f"prj_{i}"))
    await eventually(lambda: len(env.sender.requests) == 3)

    async def settled() -> bool:
        return all(d.status == "delivered" for d in await _deliveries(env, endpoint["id"]))

    await eventually(settled)
    first = sorted(r.message_id for r in env.sender.requests)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = await env.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay", params={"since": since}
    )
    assert r.status_code == 202 and r.json()["rescheduled"] == 3
    await eventually(lambda: len(env.sender.requests) == 6)
    assert sorted(r.message_id for r in env.sender.requests[3:]) == first


async def test_a_restart_loses_no_pending_delivery_and_keeps_its_id() -> None:
    """The schedule is in the store: a service built again on it sends what was pending, with
    the same webhook-id, at the time the first one had planned."""
    store = MemoryDocumentStore()
    down = FakeSender(answer=lambda r: SendResult(error="connection refused"))
    # the retry is due after the restart: a stop slower than 0.6 s used every attempt before it
    schedule = WebhookSettings(retry_schedule_s=(0.0, 2.0, 2.0), rescan_s=0.2)
    built, bus, _ = await start(store, down, schedule)
    await built.start()
    try:
        draft = EndpointDraft(url="https://partner.example/hook", event_types=["*"])
        endpoint, _ = await built.service.endpoints.register(OPERATOR, draft)
        await bus.publish("g60.projects", ev.project("ent_a"))
        await eventually(lambda: down.requests)
    finally:
        await built.stop()
    [pending] = await built.service.dispatcher.deliveries.every(endpoint.id)
    assert pending.status == "pending" and pending.next_attempt_at is not None
    up = FakeSender()
    again, _, _ = await start(store, up, schedule)
    await again.start()
    try:
        await eventually(lambda: up.requests)
    finally:
        await again.stop()
    assert [r.message_id for r in up.requests] == [pending.id]
    [done] = await again.service.dispatcher.deliveries.every(endpoint.id)
    assert done.status == "delivered" and len(done.attempts) == 2


class GatedScan(MemoryDocumentStore):
    """The store of a restarted service whose read of the pending deliveries is slow: it
    waits for `gate` (when set up)."""

    gate: asyncio.Event | None = None

    async def find(self, collection: str, where=None, **kw):  # type: ignore[no-untyped-def]
        if collection == "deliveries" and where == {"status": "pending"} and self.gate:
            await self.gate.wait()
        return await super().find(collection, where, **kw)


async def test_after_a_restart_a_new_event_does_not_overtake_an_older_pending_one() -> None:
    """Ordered endpoint: an event pending from before the restart goes before one of the same
    subject fanned out while the restarted service is still reading its backlog."""
    store = GatedScan()
    down = FakeSender(answer=lambda r: SendResult(error="connection refused"))
    # the retry falls due after the restart: with 50 ms between attempts a busy machine used
    # them all before the first service stopped, and nothing was left pending to order by
    schedule = WebhookSettings(retry_schedule_s=(0.0, 2.0, 2.0), rescan_s=30.0)
    built, bus, _ = await start(store, down, schedule)
    await built.start()
    try:
        draft = EndpointDraft(url="https://partner.example/hook", event_types=["*"], ordered=True)
        await built.service.endpoints.register(OPERATOR, draft)
        await bus.publish("g60.projects", ev.project("ent_a", "prj_1", "submitted"))
        await eventually(lambda: down.requests)
    finally:
        await built.stop()
    store.gate = asyncio.Event()
    up = FakeSender()
    again, bus, _ = await start(store, up, schedule)
    await again.start()
    try:
        await bus.publish("g60.projects", ev.project("ent_a", "prj_1", "updated"))
        await asyncio.sleep(0.2)  # time to send it first, were that allowed
        assert up.requests == []
        store.gate.set()
        await eventually(lambda: len(up.requests) >= 2)
    finally:
        await again.stop()
    types = [json.loads(r.body)["type"] for r in up.requests]
    assert types == ["g60.project.submitted.v1", "g60.project.updated.v1"]
