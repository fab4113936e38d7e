"""Rate limits: the token bucket's arithmetic on a fake clock, and over HTTP the 429s a partner
sees (problem+json with Retry-After and RateLimit-* headers), the harder limit on failed
authentications, and one bucket shared by two services on the shared store."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from g60_chassis.auth import KeyStore
from g60_chassis.http import create_app
from g60_chassis.keys_api import keys_router
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.ratelimit import (
    Limits,
    MemoryBuckets,
    Rate,
    RateLimiter,
    SharedBuckets,
    gcra,
)
from g60_contracts.enums import Role


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    rate, now, tat = Rate(per_s=2.0, burst=3), 100.0, 100.0
    taken = []
    for _ in range(4):
        decision, tat = gcra(tat, now, rate)
        taken.append((decision.allowed, decision.remaining))
    assert taken == [(True, 2), (True, 1), (True, 0), (False, 0)]
    refused, _ = gcra(tat, now, rate)
    assert refused.retry_after_s == 1 and refused.headers()["Retry-After"] == "1"
    later, _ = gcra(tat, now + 0.5, rate)  # half a second: one token back
    assert later.allowed


async def test_memory_buckets_refill_with_time() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    rate = Rate(per_s=1.0, burst=2)
    assert [(await buckets.take("k", rate)).allowed for _ in range(3)] == [True, True, False]
    clock.now += 1.0
    assert (await buckets.take("k", rate)).allowed


async def test_two_services_share_one_bucket_per_key() -> None:
    shared = MemoryDocumentStore()  # the auth store every service reads
    clock = Clock()
    a, b = SharedBuckets(shared, clock), SharedBuckets(shared, clock)
    rate = Rate(per_s=1.0, burst=4)
    results = [(await (a if i % 2 else b).take("key:k", rate)).allowed for i in range(6)]
    assert results == [True] * 4 + [False] * 2


class CountingStore(MemoryDocumentStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def get(self, collection: str, id: str) -> dict[str, object] | None:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip: others arrive meanwhile
        return await super().get(collection, id)


async def test_a_burst_on_one_key_is_decided_in_few_store_turns_as_if_one_by_one() -> None:
    store, clock = CountingStore(), Clock()
    buckets, rate = SharedBuckets(store, clock), Rate(per_s=1.0, burst=5)
    taken = await asyncio.gather(*(buckets.take("key:k", rate) for _ in range(20)))
    assert [d.allowed for d in taken] == [True] * 5 + [False] * 15
    assert [d.remaining for d in taken[:5]] == [4, 3, 2, 1, 0]
    assert store.calls <= 2  # the first request's turn, then the other 19 together
    clock.now += 1.0
    assert (await buckets.take("key:k", rate)).allowed


def _client(limits: Limits, keys: KeyStore) -> httpx.AsyncClient:
    app = create_app(
        title="t",
        description="t",
        routers=[keys_router({})],
        keys=keys,
        checks={},
        limiter=RateLimiter(MemoryBuckets(), limits),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


LIMITS = Limits(
    per_key=Rate(per_s=0.01, burst=3),
    per_address=Rate(per_s=100.0, burst=100),
    auth_failures=Rate(per_s=0.01, burst=2),
)


@pytest.fixture
async def keys() -> KeyStore:
    return KeyStore(MemoryDocumentStore())


async def test_a_key_over_its_limit_gets_a_problem_json_429_with_retry_after(keys) -> None:
    key = await keys.create(Role.operator)
    async with _client(LIMITS, keys) as client:
        auth = {"Authorization": f"Bearer {key}"}
        ok = [await client.get("/v1/keys", headers=auth) for _ in range(3)]
        assert [r.status_code for r in ok] == [200] * 3
        assert [r.headers["RateLimit-Remaining"] for r in ok] == ["2", "1", "0"]
        assert ok[0].headers["RateLimit-Limit"] == "3"
        limited = await client.get("/v1/keys", headers=auth)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert limited.json()["status"] == 429


async def test_failed_authentications_block_the_address_even_for_a_good_key(keys) -> None:
    good = await keys.create(Role.operator)
    async with _client(LIMITS, keys) as client:
        wrong = {"Authorization": "Bearer g60_000000000000.guess"}
        codes = [(await client.get("/v1/keys", headers=wrong)).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        blocked = await client.get("/v1/keys", headers={"Authorization": f"Bearer {good}"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
