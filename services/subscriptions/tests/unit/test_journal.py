"""The deliveries' store layout: what a delivery writes, batched outcomes, a fan-out cut
between its two writes, and documents of the first layout (one updated document per
delivery) still read and sent."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import Doc, StoreError
from services.subscriptions.tests.unit import factories as ev
from services.subscriptions.tests.unit.conftest import Env
from subscriptions.adapters.events import incoming
from subscriptions.domain.delivery import Attempt, Delivery, RetryRules, SendResult
from subscriptions.domain.records import log_id, logged_of
from subscriptions.service.journal import LOG, MESSAGES, SCHEDULE, DeliveryJournal
from subscriptions.service.outcomes import OutcomeWriter
from tests.polling import eventually

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class CountingStore(MemoryDocumentStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fail_schedule_inserts = 0

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        self.calls["insert", collection] += 1
        if collection == SCHEDULE and self.fail_schedule_inserts:
            self.fail_schedule_inserts -= 1
            raise StoreError("the store went away")
        await super().insert(collection, doc, events)

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        self.calls["insert_many", collection] += 1
        return await super().insert_many(collection, docs)

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: Any = None
    ) -> int:
        self.calls["update", collection] += 1
        return await super().update(collection, doc, expected_version, events)

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        self.calls["delete_many", collection] += 1
        await super().delete_many(collection, ids)


def delivery(n: int) -> Delivery:
    return ev.delivery(n, NOW)


async def test_outcomes_waiting_together_are_one_insert_and_one_delete() -> None:
    store = CountingStore()
    journal = DeliveryJournal(store)
    for n in range(10):
        assert await journal.add(delivery(n))
    working = [await journal.working(f"msg_{n:04d}") for n in range(10)]
    ok, retry = SendResult(status_code=200), SendResult(status_code=503)
    results = [ok] * 8 + [retry] * 2
    after = await asyncio.gather(
        *(journal.record(d, r, NOW, RetryRules()) for d, r in zip(working, results, strict=True))  # type: ignore[arg-type]
    )
    assert journal.writer.batches == 1
    assert store.calls["insert_many", LOG] == 1 and store.calls["delete_many", SCHEDULE] == 1
    assert store.calls["update", MESSAGES] == 0  # the message is never rewritten
    assert store.calls["update", SCHEDULE] == 2  # the two retried ones, rescheduled
    assert [a is None for a in after] == [True] * 8 + [False] * 2
    views = [await journal.get(f"msg_{n:04d}") for n in range(10)]
    assert [v.status for v in views if v] == ["delivered"] * 8 + ["pending"] * 2
    assert all(v is not None and len(v.attempts) == 1 for v in views)
    assert [e.id for e in await journal.schedule.every()] == ["msg_0008", "msg_0009"]


async def test_a_fan_out_cut_between_its_two_writes_is_scheduled_when_the_event_comes_again() -> (
    None
):
    store = CountingStore()
    journal = DeliveryJournal(store)
    store.fail_schedule_inserts = 1
    with pytest.raises(StoreError):
        await journal.add(delivery(1))
    assert await journal.schedule.get("msg_0001") is None  # the message alone: not scheduled
    assert not await journal.add(delivery(1))  # the event again (Kafka redelivers it)
    entry = await journal.schedule.get("msg_0001")
    assert entry is not None and entry.lease_until is None  # anyone may send it
    # once delivered, the same event again schedules nothing
    working = await journal.working("msg_0001")
    assert working is not None
    await journal.record(working, SendResult(status_code=200), NOW, RetryRules())
    assert not await journal.add(delivery(1))
    assert await journal.schedule.get("msg_0001") is None


def first_layout(env_endpoint: str, n: int, status: str, attempts: int) -> Doc:
    """A `deliveries` document as the first layout wrote it (updated on every attempt)."""
    return {
        "_id": f"msg_2026112800000000000{n}",
        "endpoint_id": env_endpoint,
        "event_id": f"evt_old_{n}",
        "event_type": "g60.project.submitted.v1",
        "subject": f"prj_old_{n}",
        "seq": n,
        "body": '{"id": "old"}',
        "status": status,
        "attempts": [
            Attempt(at=NOW, status_code=503, latency_ms=3.0).model_dump(mode="json")
            for _ in range(attempts)
        ],
        "round_start": 0,
        "next_attempt_at": (NOW - timedelta(minutes=1)).isoformat()
        if status == "pending"
        else None,
        "lease_until": None,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


async def test_first_layout_documents_are_read_and_a_pending_one_is_sent(env: Env) -> None:
    endpoint = (await env.register())["id"]
    pending = first_layout(endpoint, 1, "pending", 2)
    failed = first_layout(endpoint, 2, "failed", 3)
    for doc in (pending, failed):
        await env.store.insert(MESSAGES, doc)
    await eventually(lambda: [r for r in env.sender.requests if r.message_id == pending["_id"]])
    path = f"/v1/webhook-endpoints/{endpoint}/deliveries"

    async def delivered() -> dict[str, Any] | None:
        item = (await env.client.get(f"{path}/{pending['_id']}")).json()
        return item if item["status"] == "delivered" else None

    item = await eventually(delivered)
    assert [a["status_code"] for a in item["attempts"]] == [503, 503, 200]
    old = (await env.client.get(f"{path}/{failed['_id']}")).json()
    assert old["status"] == "failed" and len(old["attempts"]) == 3
    listed = (await env.client.get(path, params={"status": "failed"})).json()["items"]
    assert [d["id"] for d in listed] == [failed["_id"]]
    # the failed one replayed: same id, sent again
    r = await env.client.post(f"{path}/{failed['_id']}/retry")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    await eventually(lambda: [r for r in env.sender.requests if r.message_id == failed["_id"]])
    assert env.sender.requests[0].body == '{"id": "old"}'


async def test_the_log_lists_by_status_across_pages(env: Env) -> None:
    endpoint = (await env.register(event_types=["project.*"]))["id"]
    for n in range(5):
        await env.publish(ev.project("ent_a", f"prj_{n}"))
    await eventually(lambda: len(env.sender.requests) == 5)
    path = f"/v1/webhook-endpoints/{endpoint}/deliveries"

    async def all_delivered() -> bool:
        items = (await env.client.get(path, params={"status": "delivered", "limit": 50})).json()
        return len(items["items"]) == 5

    await eventually(all_delivered)
    first = (await env.client.get(path, params={"status": "delivered", "limit": 2})).json()
    second = (
        await env.client.get(
            path, params={"status": "delivered", "limit": 50, "cursor": first["next_cursor"]}
        )
    ).json()
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert len(ids) == 5 == len(set(ids)) and ids == sorted(ids)
    assert (await env.client.get(path, params={"status": "pending"})).json()["items"] == []
    assert log_id("msg_1", 7) < log_id("msg_1", 10) < "msg_2"


async def test_the_writer_fails_every_outcome_of_a_batch_the_store_refused() -> None:
    class Down(MemoryDocumentStore):
        async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
            raise StoreError("down")

    journal = DeliveryJournal(Down())
    writer = OutcomeWriter(journal.log, journal.schedule)
    d = delivery(1)
    d.record(SendResult(status_code=200), NOW, RetryRules())
    with pytest.raises(StoreError):
        await writer.write(d, logged_of(d, 1))


async def test_a_consumed_batch_is_fanned_out_in_two_store_calls_and_only_once(env: Env) -> None:
    ordered = (await env.register(event_types=["project.*"], ordered=True))["id"]
    other = (await env.register(event_types=["project.*"]))["id"]
    events = [incoming(ev.project("ent_a", "prj_1", kind)) for kind in ("submitted", "updated")]
    events += [incoming(ev.project("ent_a", "prj_2"))]
    fanout = env.built.service.fanout
    assert await fanout.on_events([e for e in events if e is not None]) == 6
    assert await fanout.on_events([e for e in events if e is not None]) == 0  # redelivered
    await eventually(lambda: len(env.sender.requests) == 6)
    await env.client.get("/healthz")
    assert len(env.sender.requests) == 6
    journal = env.built.service.dispatcher.deliveries
    assert len({r.message_id for r in env.sender.requests}) == 6
    mine = {d.id for d in await journal.every(ordered)}
    assert len(mine) == 3 and len(await journal.every(other)) == 3
    prj_1 = [
        json.loads(r.body)["type"]
        for r in env.sender.requests
        if r.message_id in mine and json.loads(r.body)["subject"] == "prj_1"
    ]
    assert prj_1 == ["g60.project.submitted.v1", "g60.project.updated.v1"]  # in order
