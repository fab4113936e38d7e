"""Webhooks end to end: the four services as processes on Kafka and FerretDB, a stub partner
(a real HTTP server on loopback) receiving what the subscriptions service sends. No timing is
asserted; the limits only end a broken run."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.harness import ROOT, Platform
from tests.e2e.test_distributed import Client, _enterprise, _project
from tests.polling import eventually
from tests.webhook_stub import Received, StubPartner

pytestmark = pytest.mark.e2e
STUB_PORT = int(os.environ.get("G60_E2E_BASE_PORT", "8101")) + 10
HOOKS = "/v1/webhook-endpoints"


async def _register(op: Client, url: str, **over: Any) -> dict[str, Any]:
    body = {"url": url, "event_types": ["project.*"], **over}
    return dict(await op.ok("POST", "subscriptions", HOOKS, json=body))


async def _log(op: Client, endpoint_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await op.ok(
            "GET", "subscriptions", f"{HOOKS}/{endpoint_id}/deliveries", params=params
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def _projects(op: Client, count: int, updates: int = 0) -> list[str]:
    rng = random.Random()
    enterprise = await op.ok("POST", "projects", "/v1/enterprises", json=_enterprise(rng))
    ids = []
    for _ in range(count):
        project = await op.ok("POST", "projects", "/v1/projects", json=_project(enterprise["id"]))
        ids.append(project["id"])
    for i in range(updates):
        for id in ids:
            await op.ok("PATCH", "projects", f"/v1/projects/{id}", json={"title": f"v{i}"})
    return ids


def _events(stub: StubPartner, subjects: set[str]) -> list[tuple[Received, dict[str, Any]]]:
    out = []
    for r in stub.received:
        event = json.loads(r.body)
        if event.get("subject") in subjects:
            out.append((r, event))
    return out


async def _all_delivered(op: Client, endpoint_id: str, count: int) -> bool:
    log = await _log(op, endpoint_id)
    return len(log) >= count and all(d["status"] == "delivered" for d in log)


async def test_a_partner_down_then_up_gets_every_event_once_in_order(
    platform: Platform, operator: dict[str, str]
) -> None:
    op = Client(platform, operator)
    stub = StubPartner(port=STUB_PORT)  # not started: the partner is down
    endpoint = await _register(op, stub.url, ordered=True)
    try:
        subjects = set(await _projects(op, 3, updates=3))
        expected = len(subjects) * 4  # submitted + 3 updates each

        async def failing() -> bool:  # every event scheduled, and retries under way
            log = await _log(op, endpoint["id"])
            return len(log) >= expected and any(len(d["attempts"]) >= 2 for d in log)

        await eventually(failing, timeout=300)
        await stub.start()  # the partner is back
        await eventually(lambda: _all_delivered(op, endpoint["id"], expected), timeout=300)
    finally:
        await op.call("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/disable")
        await stub.stop()
    log = await _log(op, endpoint["id"])
    got = _events(stub, subjects)
    assert {r.id for r, _ in got} == {d["id"] for d in log}  # the logged ids, unchanged
    first: dict[str, Received] = {}
    for r, _ in got:
        first.setdefault(r.id, r)
    assert len(first) == expected
    versions: dict[str, list[int]] = defaultdict(list)
    for r, event in got:
        if first[r.id] is r:
            versions[event["subject"]].append(event["data"]["version"])
    for subject, seen in versions.items():
        assert seen == sorted(seen) and len(seen) == 4, (subject, seen)


async def _kill_run(
    platform: Platform, operator: dict[str, str], events: int, kills: int, port: int
):
    """`events` project events to a slow partner; the service killed with SIGKILL `kills`
    times while deliveries are in flight, restarted each time. Every event arrives, and every
    repeat carries the webhook-id of its first attempt."""
    op = Client(platform, operator)
    stub = StubPartner(port=port, delay_s=0.3)
    await stub.start()
    endpoint = await _register(op, stub.url, max_in_flight=2)
    try:
        subjects = set(await _projects(op, events))
        for k in range(kills):
            target = (k + 1) * max(2, events // (kills + 1))
            await eventually(lambda t=target: _arrived(stub, subjects, t), timeout=300)
            platform.stop("subscriptions", signal.SIGKILL)
            platform.start("subscriptions")
        await eventually(lambda: _all_delivered(op, endpoint["id"], len(subjects)), timeout=600)
    finally:
        await op.call("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/disable")
        await stub.stop()
    ids_of: dict[str, set[str]] = defaultdict(set)
    for r, event in _events(stub, subjects):
        ids_of[event["id"]].add(r.id)
    assert len(ids_of) == len(subjects)  # every event arrived
    assert all(len(ids) == 1 for ids in ids_of.values()), ids_of  # a repeat only with its id


async def test_kill_9_mid_delivery_loses_nothing_and_keeps_the_ids(
    platform: Platform, operator: dict[str, str]
) -> None:
    await _kill_run(platform, operator, events=12, kills=1, port=STUB_PORT + 1)


@pytest.mark.chaos
async def test_kill_9_again_and_again_under_a_stream_of_events(
    platform: Platform, operator: dict[str, str]
) -> None:
    await _kill_run(platform, operator, events=120, kills=4, port=STUB_PORT + 4)


async def _arrived(stub: StubPartner, subjects: set[str], count: int) -> bool:
    return len(_events(stub, subjects)) >= count


async def test_410_gone_disables_the_endpoint(platform: Platform, operator: dict[str, str]):
    op = Client(platform, operator)
    stub = StubPartner(port=STUB_PORT + 2, status=410)
    await stub.start()
    endpoint = await _register(op, stub.url)
    try:
        await op.ok("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/test")

        async def disabled() -> dict[str, Any] | None:
            got = await op.ok("GET", "subscriptions", f"{HOOKS}/{endpoint['id']}")
            return got if got["status"] == "disabled" else None

        got = await eventually(disabled, timeout=300)
    finally:
        await stub.stop()
    assert "410" in got["disabled_reason"]


def _receiver(secret: str) -> Any:
    path = ROOT / "docs" / "examples" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app(secret, lambda event: None)


async def _receive(secret: str, body: bytes, headers: dict[str, str]) -> int:
    transport = httpx.ASGITransport(app=_receiver(secret))
    async with httpx.AsyncClient(transport=transport, base_url="http://partner") as client:
        r = await client.post("/g60/webhooks", content=body, headers=headers)
    return r.status_code


async def test_the_receiver_example_and_a_rotation(platform: Platform, operator: dict[str, str]):
    """What the platform really sent is accepted by the docs' receiver; tampered, old or signed
    with another secret it is rejected; during a rotation's overlap both secrets verify."""
    op = Client(platform, operator)
    stub = StubPartner(port=STUB_PORT + 3)
    await stub.start()
    endpoint = await _register(op, stub.url)
    old = endpoint["secret"]
    try:
        await op.ok("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/test")
        await eventually(lambda: _count(stub, 1), timeout=300)
        sent = stub.received[0]
        headers = {k: v for k, v in sent.headers.items() if k.startswith("webhook-")}
        assert await _receive(old, sent.body, headers) == 204
        assert await _receive(old, sent.body.replace(b"test", b"tset"), headers) == 400
        other = "whsec_" + "A" * 43 + "="
        assert await _receive(other, sent.body, headers) == 400
        stale = datetime.now(UTC) - timedelta(minutes=10)
        signature = Webhook(old).sign(headers["webhook-id"], stale, sent.body.decode())
        stale_headers = {
            **headers,
            "webhook-timestamp": str(int(stale.timestamp())),
            "webhook-signature": signature,
        }
        assert await _receive(old, sent.body, stale_headers) == 400

        rotated = await op.ok(
            "POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/rotate", json={"overlap_s": 600}
        )
        new = rotated["secret"]
        await op.ok("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/test")
        await eventually(lambda: _count(stub, 2), timeout=300)
        sent = stub.received[-1]
        headers = {k: v for k, v in sent.headers.items() if k.startswith("webhook-")}
        assert await _receive(old, sent.body, headers) == 204
        assert await _receive(new, sent.body, headers) == 204
    finally:
        await op.call("POST", "subscriptions", f"{HOOKS}/{endpoint['id']}/disable")
        await stub.stop()


async def _count(stub: StubPartner, n: int) -> bool:
    return len(stub.received) >= n
