"""Rate-limit buckets decided in process and synchronised with the shared store once a
`sync_s`: as many decisions as the stored bucket would give within one process, a store
round trip per key per sync window rather than two per request, the stored bucket as the
start after a restart, and the documented tolerance across processes."""

from __future__ import annotations

import asyncio

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.ratelimit import BUCKETS, Rate, SharedBuckets
from g60_chassis.store import Doc
from g60_chassis.synced_buckets import SyncedBuckets


class Clock:
    """A fake clock whose `sleep` ends when the clock has been moved past it."""

    def __init__(self) -> None:
        self._now = 1_000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = value
        for until, done in self._sleepers:
            if until <= value and not done.done():
                done.set_result(None)

    async def sleep(self, seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, done))
        await done


def synced(store: MemoryDocumentStore, clock: Clock, sync_s: float = 1.0) -> SyncedBuckets:
    return SyncedBuckets(store, clock, sync_s=sync_s, sleep=clock.sleep)


class CountingStore(MemoryDocumentStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def get(self, collection: str, id: str) -> Doc | None:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip: others arrive meanwhile
        return await super().get(collection, id)

    async def update(self, collection: str, doc: Doc, expected: int, events: object = None) -> int:
        self.calls += 1
        return await super().update(collection, doc, expected)

    async def insert(self, collection: str, doc: Doc, events: object = None) -> None:
        self.calls += 1
        await super().insert(collection, doc)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_process_decides_as_the_stored_bucket_would_with_one_read() -> None:
    store, clock = CountingStore(), Clock()
    buckets, rate = synced(store, clock, 1.0), Rate(per_s=2.0, burst=5)
    taken = await asyncio.gather(*(buckets.take("key:k", rate) for _ in range(8)))
    assert [d.allowed for d in taken] == [True] * 5 + [False] * 3
    assert [d.remaining for d in taken[:5]] == [4, 3, 2, 1, 0]
    assert store.calls == 1  # the first read; the decisions are local
    clock.now += 0.5  # one token back, still within the sync window
    assert [(await buckets.take("key:k", rate)).allowed for _ in range(2)] == [True, False]
    assert store.calls == 1


async def test_the_tokens_taken_reach_the_store_once_a_window_and_a_restart_starts_there() -> None:
    store, clock = CountingStore(), Clock()
    rate = Rate(per_s=1.0, burst=4)
    first = synced(store, clock, 1.0)
    assert all([(await first.take("key:k", rate)).allowed for _ in range(3)])
    await settle()  # the sync for the end of the window waits
    assert store.calls == 1
    clock.now += 1.0  # the window is over: the tokens go to the store
    assert (await first.take("key:k", rate)).allowed  # before the sync ran: added with them
    await settle()
    assert store.calls == 3  # the first read; then one read and one write for four tokens
    stored = await store.get(BUCKETS, "key:k")
    assert stored is not None
    # 3 taken at t0 and one at t0 + 1, exactly as one bucket counts them: t0 + 4
    assert stored["tat"] == 1_004.0
    restarted = synced(store, clock, 1.0)  # knows nothing but the store
    decisions = [(await restarted.take("key:k", rate)).allowed for _ in range(2)]
    assert decisions == [True, False]  # the stored bucket's last token (4 of 4 + 1 refilled)


async def test_two_processes_stay_within_the_tolerance_and_repay_the_excess() -> None:
    store, clock = MemoryDocumentStore(), Clock()
    rate, sync = Rate(per_s=10.0, burst=10), 1.0
    a, b = synced(store, clock, sync), synced(store, clock, sync)
    allowed = 0
    for _ in range(200):  # 10 s, each process asked 20 times a second (4x the rate in all)
        clock.now += 0.05
        for buckets in (a, b):
            allowed += (await buckets.take("key:k", rate)).allowed
        await settle()
    one_bucket = rate.burst + rate.per_s * 10  # what one exact bucket gives in 10 s: 110
    assert allowed <= one_bucket + (rate.burst + rate.per_s * sync)  # (K - 1) x tolerance
    assert allowed >= one_bucket * 0.9  # and not starved: the excess is repaid, not more


async def test_a_stale_view_is_read_again_before_deciding() -> None:
    store, clock = MemoryDocumentStore(), Clock()
    rate = Rate(per_s=0.1, burst=3)
    mine = synced(store, clock, 1.0)
    assert (await mine.take("key:k", rate)).allowed
    exact = SharedBuckets(store, clock)  # another process: its three go to the store
    assert [(await exact.take("key:k", rate)).allowed for _ in range(3)] == [True] * 3
    clock.now += 5.0  # past stale_s (3 s): the view is synced before this decision, the
    # token taken here added to the other's three: one over the burst, so refused
    assert not (await mine.take("key:k", rate)).allowed
    stored = await store.get(BUCKETS, "key:k")
    assert stored is not None and stored["tat"] == 1_000.0 + 4 * 10


async def test_the_last_tokens_reach_the_store_when_the_key_goes_idle() -> None:
    store, clock = MemoryDocumentStore(), Clock()
    buckets, rate = synced(store, clock, 1.0), Rate(per_s=1.0, burst=5)
    assert all([(await buckets.take("key:k", rate)).allowed for _ in range(2)])
    await settle()
    assert await store.get(BUCKETS, "key:k") is None  # within the window: not yet
    clock.now += 1.0  # no request after: the window's end writes them anyway
    await settle()
    stored = await store.get(BUCKETS, "key:k")
    assert stored is not None and stored["tat"] == 1_002.0
