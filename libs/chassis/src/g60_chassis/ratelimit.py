"""Rate limits: a token bucket per API key, per client address, and a much smaller one for
failed authentications per address (a brute force then gets 429s, whatever key it tries next).

The bucket is kept as GCRA (the generic cell rate algorithm: a token bucket stored as one
"theoretical arrival time" per key), so a check is one read and one compare-and-set. Two
stores: in process memory, and on the platform's shared document store (the key store's:
MongoDB in the distributed shape), where the services share one bucket per API key.

Written here rather than taken from `limits` (5.8): its asynchronous MongoDB storage needs
Motor, which this platform does not use, it has no token bucket (fixed/moving/sliding windows),
and its counters rely on atomic `$inc`s that FerretDB does not make atomic under concurrency;
the compare-and-set of the document store is what holds on every backend here."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from g60_chassis.store import DocumentStore, DuplicateKey, VersionConflict

BUCKETS = "rate_buckets"


@dataclass(frozen=True)
class Rate:
    """`per_s` tokens a second into a bucket of `burst` tokens."""

    per_s: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.per_s


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int  # 0 when allowed
    reset_s: int  # until the bucket is full again

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


def gcra(tat: float, now: float, rate: Rate, cost: int = 1) -> tuple[Decision, float]:
    """The decision for taking `cost` tokens, and the new arrival time to store if allowed."""
    t = rate.interval
    base = max(tat, now)
    new_tat = base + cost * t
    allowed = new_tat - now <= rate.burst * t + 1e-9
    stored = new_tat if allowed else tat
    remaining = max(0, math.floor((rate.burst * t - (max(stored, now) - now)) / t + 1e-9))
    retry = 0 if allowed else max(1, math.ceil(new_tat - now - rate.burst * t))
    reset = max(0, math.ceil(max(stored, now) - now))
    return Decision(allowed, rate.burst, remaining, retry, reset), stored


class Buckets(Protocol):
    async def take(self, key: str, rate: Rate, *, dry_run: bool = False) -> Decision: ...


class MemoryBuckets:
    """One process's buckets (the embedded shape). Bounded: buckets full again are dropped."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._tat: dict[str, float] = {}
        self._clock, self._max = clock, max_keys

    async def take(self, key: str, rate: Rate, *, dry_run: bool = False) -> Decision:
        now = self._clock()
        decision, tat = gcra(self._tat.get(key, now), now, rate)
        if decision.allowed and not dry_run:
            if len(self._tat) >= self._max:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._tat[key] = tat
        return decision


class SharedBuckets:
    """Buckets on a document store every service reads (compare-and-set on the version).

    Requests with one key that arrive while this process is reading or writing its bucket are
    decided together in the next turn: one read and one compare-and-set for all of them (each
    gets a token in arrival order while the bucket has one), rather than a read and a write
    each, one after the other. Under a burst on one key (a partner's bulk load) that was the
    HTTP path's longest wait; the decisions are the same as taking the tokens one by one."""

    def __init__(
        self, store: DocumentStore, clock: Callable[[], float] = time.time, attempts: int = 5
    ) -> None:
        self._store, self._clock, self._attempts = store, clock, attempts
        self._waiting: dict[str, list[asyncio.Future[Decision]]] = {}
        self._turns: set[asyncio.Task[None]] = set()

    async def take(self, key: str, rate: Rate, *, dry_run: bool = False) -> Decision:
        if dry_run:
            now = self._clock()
            doc = await self._store.get(BUCKETS, key)
            return gcra(float(doc["tat"]) if doc else now, now, rate)[0]
        decided: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(key)
        if waiting is not None:  # a turn is under way: join the next one
            waiting.append(decided)
        else:
            self._waiting[key] = [decided]
            # its own task: a caller that goes away (a dropped connection) stops no one else
            turn = asyncio.create_task(self._turns_of(key, rate))
            self._turns.add(turn)
            turn.add_done_callback(self._turns.discard)
        return await decided

    async def _turns_of(self, key: str, rate: Rate) -> None:
        waiting = self._waiting[key]
        try:
            while waiting:
                batch = list(waiting)
                waiting.clear()
                try:
                    decisions = await self._take(key, rate, len(batch))
                except Exception as exc:
                    for f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for f, decision in zip(batch, decisions, strict=True):
                    if not f.done():
                        f.set_result(decision)
        finally:
            del self._waiting[key]

    async def _take(self, key: str, rate: Rate, n: int) -> list[Decision]:
        decisions: list[Decision] = []
        for _ in range(self._attempts):
            now = self._clock()
            doc = await self._store.get(BUCKETS, key)
            start = tat = float(doc["tat"]) if doc else now
            decisions = []
            for _ in range(n):
                decision, tat = gcra(tat, now, rate)
                decisions.append(decision)
            if not any(d.allowed for d in decisions):
                return decisions
            try:
                if doc is None:
                    await self._store.insert(BUCKETS, {"_id": key, "tat": tat})
                elif tat != start:
                    await self._store.update(BUCKETS, {**doc, "tat": tat}, doc["version"])
                return decisions
            except (VersionConflict, DuplicateKey):
                continue  # another process took tokens meanwhile: decide again
        return decisions  # heavy contention on one bucket: let these through


@dataclass(frozen=True)
class Limits:
    per_key: Rate
    per_address: Rate
    auth_failures: Rate


class RateLimiter:
    """`keys`: the buckets of API keys (shared by the services in the distributed shape, so a
    key has one budget); `addresses`: those of client addresses and their failed
    authentications, in this process (a check costs no round trip; each service then gives an
    address its own budget)."""

    def __init__(self, keys: Buckets, limits: Limits, addresses: Buckets | None = None) -> None:
        self.keys, self.limits = keys, limits
        self.addresses = addresses or keys

    async def address(self, address: str) -> Decision:
        """Before authentication: this address's bucket, and whether it failed too often."""
        limits = self.limits
        blocked = await self.addresses.take(f"fail:{address}", limits.auth_failures, dry_run=True)
        if not blocked.allowed:
            return blocked
        return await self.addresses.take(f"addr:{address}", limits.per_address)

    async def key(self, key_id: str) -> Decision:
        return await self.keys.take(f"key:{key_id}", self.limits.per_key)

    async def failed(self, address: str) -> Decision:
        return await self.addresses.take(f"fail:{address}", self.limits.auth_failures)
