"""Rate-limit buckets decided in process and synchronised with the shared store at most once a
`sync_s` per key: the distributed shape's default (`G60_RATE_LIMIT_SYNC_S`, 1 s).

`SharedBuckets` (`ratelimit.py`) reads and rewrites a key's bucket on the store for every
request: two store commands per POST, a fifth of the projects service's calls per need and as
many FerretDB and PostgreSQL round trips. Here each process keeps its view of the bucket (the
stored GCRA arrival time, plus the tokens it took since) and decides every request on it at
once; in the background, once a `sync_s` while the key is used, it reads the stored bucket,
adds the tokens it took (one compare-and-set write) and takes the result, which holds what
the other processes added, as its new view. A view older than `stale_s` (an idle key, or
a store that did not answer) is synchronised before the next decision, so a restarted
process, or one that has not seen a key for a while, starts from the stored bucket.

Tolerance (documented in `docs/decisions.md`): with K processes using one key, each decides
on a view at most about `sync_s` old, so within one sync window a key may get up to
(K - 1) x (burst + per_s x sync_s) requests more than one bucket allows; the excess is stored
as debt (the arrival time goes past the bucket's end) and refused afterwards, so over a longer
time the key keeps its rate. A process that dies forgets the tokens it took since its last
sync (at most burst + per_s x sync_s). One process (the embedded shape, or one instance per
service) is exact."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from g60_chassis.ratelimit import BUCKETS, Decision, Rate, gcra
from g60_chassis.store import DocumentStore, DuplicateKey, VersionConflict

log = logging.getLogger(__name__)


@dataclass
class _View:
    tat: float  # the stored arrival time at the last sync, plus the tokens taken here since
    synced_at: float  # when it was read (this process's clock)
    version: int  # the stored bucket's version then (0: none stored)
    taken: int = 0  # tokens taken here and not yet added to the stored bucket


class SyncedBuckets:
    def __init__(
        self,
        store: DocumentStore,
        clock: Callable[[], float] = time.time,
        *,
        sync_s: float = 1.0,
        stale_s: float | None = None,
        attempts: int = 5,
        max_keys: int = 100_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store, self._clock, self._attempts = store, clock, attempts
        self._sleep = sleep
        self.sync_s = sync_s
        self.stale_s = stale_s if stale_s is not None else 3 * sync_s
        self._max = max_keys
        self._views: dict[str, _View] = {}
        self._syncs: dict[str, asyncio.Task[None]] = {}
        self.syncs = 0  # store round trips made (read + write), for tests and benchmarks

    async def take(self, key: str, rate: Rate, *, dry_run: bool = False) -> Decision:
        view = self._views.get(key)
        if view is None or self._clock() - view.synced_at > self.stale_s:
            sync = self._syncs.get(key)  # one under way: its end is past already if stale
            if sync is None or sync.done():
                sync = self._sync(key, rate)
            await asyncio.shield(sync)  # one sync for all the callers
            view = self._views[key]
        now = self._clock()
        decision, tat = gcra(view.tat, now, rate)
        if decision.allowed and not dry_run:
            view.tat, view.taken = tat, view.taken + 1
        if key not in self._syncs and (view.taken or now - view.synced_at >= self.sync_s):
            # in the background, at the end of the window: this request does not wait for it,
            # and the tokens taken reach the store within `sync_s` even if the key goes idle
            self._sync(key, rate, max(0.0, view.synced_at + self.sync_s - now))
        return decision

    def _sync(self, key: str, rate: Rate, delay: float = 0.0) -> asyncio.Task[None]:
        task = self._syncs.get(key)
        if task is None:
            task = asyncio.create_task(self._sync_now(key, rate, delay))
            self._syncs[key] = task
            task.add_done_callback(lambda t: self._synced(key, t))
        return task

    def _synced(self, key: str, task: asyncio.Task[None]) -> None:
        self._syncs.pop(key, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            view = self._views.get(key)
            if view is not None:  # in the background: the next request tries again
                log.warning("rate-limit bucket %s: sync failed: %r", key, exc)

    async def _sync_now(self, key: str, rate: Rate, delay: float = 0.0) -> None:
        """After `delay`: read the stored bucket, add the tokens taken here since the last
        sync (one compare-and-set), and make the result this process's view."""
        if delay > 0:
            await self._sleep(delay)
        now = self._clock()
        stored, version = now, 0
        for _ in range(self._attempts):
            now = self._clock()
            doc = await self._store.get(BUCKETS, key)
            self.syncs += 1
            stored, version = (float(doc["tat"]), int(doc["version"])) if doc else (now, 0)
            view = self._views.get(key)
            if view is None:  # first sight of the key here: the stored bucket as it is
                self._keep(key, stored, version, now)
                return
            taken, local = view.taken, view.tat
            if not taken:
                tat = stored
            elif version == view.version:  # nobody else wrote since: this view is exact
                tat = local
            else:  # others took tokens too: ours on top, dated now (never fewer than taken)
                tat = max(stored, now) + taken * rate.interval
            try:
                if taken and doc is None:
                    await self._store.insert(BUCKETS, {"_id": key, "tat": tat})
                    version = 1
                elif taken and doc is not None:
                    version = await self._store.update(BUCKETS, {**doc, "tat": tat}, doc["version"])
            except (VersionConflict, DuplicateKey):
                continue  # another process wrote it meanwhile: read again
            # the tokens taken here while the write was out stay to be added next time
            view.taken -= taken
            self._keep(key, tat + (view.tat - local), version, now)
            return
        # heavy contention on one bucket: decide on what was read; the tokens taken here
        # stay to be added by the next sync
        log.warning("rate-limit bucket %s: no sync after %d attempts", key, self._attempts)
        view = self._views.get(key)
        self._keep(key, max(stored, view.tat if view else stored), version, now)

    def _keep(self, key: str, tat: float, version: int, now: float) -> None:
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= self._max:
                self._forget(now)
            view = self._views[key] = _View(tat, now, version)
        view.tat, view.synced_at, view.version = tat, now, version

    def _forget(self, now: float) -> None:
        """Bounded: views with nothing to sync whose bucket is full again go (re-read if used)."""
        self._views = {
            k: v for k, v in self._views.items() if v.taken or v.tat > now or k in self._syncs
        }
