"""The outbox relay: publishes the events that writes stored beside their state, then marks
them sent. At-least-once: a crash between publish and mark re-publishes (consumers are
idempotent, event ids are stable); a bus that is down only delays publication.

Two places hold events: the batches of inserted aggregates (`batches.py`: one document per
insert call, deleted in one write once published) and each aggregate's own outbox (the events
of its updates). Batched: the pending events of many aggregates go to the bus in one
`publish_many` (all in flight at once, one wait for the acknowledgements); per aggregate only
the leading confirmed events of its outbox are marked (an event is never marked while an
earlier one of the same aggregate is to be published again), all those marks in one store
call; a batch is deleted only once all its events were confirmed.

Per aggregate order: batches go first; an aggregate's own outbox waits while the batch that
created it (its `outbox_batch` tag) may still be pending: that is checked after reading the
aggregate (a batch known gone, deleted here or found missing, stays gone).

A batch just written is not read back: its writer hands it over (`notify(..., batch=)`). The
scan (at start, every `full_scan_s`, after any failure) reads every waiting batch (creating
documents a crashed writer left out) and every flagged outbox; the running relay reads their
ids beside its work (`outbox_scan.py`): new batches never wait for that read. Running, it deletes
the batches it published in one call a second (`sent_batches.py`); `drain` and
`drain_written` called directly delete them before returning."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from g60_chassis import batches, outbox_scan
from g60_chassis.batches import Batch, batch_collection
from g60_chassis.bus import EventBus
from g60_chassis.outbox_publish import (
    PublishFailed,
    outbox_entry,
    publish_batches,
    publish_outboxes,
)
from g60_chassis.outbox_scan import Scanned
from g60_chassis.sent_batches import SentBatches
from g60_chassis.store import BATCH, Doc, DocumentStore

log = logging.getLogger(__name__)
__all__ = ["OutboxRelay", "PublishFailed", "outbox_entry"]
GONE_KEPT = 10_000  # batch ids remembered as deleted (an older one costs a read if seen again)
BATCH_PAGE = 20  # stored batches recovered per publish (each ~10 documents and their events)
DIRTY_PAGE = 64  # updated aggregates read per publish (new inserts wait at most one page)


class OutboxRelay:
    def __init__(
        self,
        store: DocumentStore,
        bus: EventBus,
        collections: list[str],
        *,
        interval_s: float = 1.0,
        batch: int = 200,
        max_backoff_s: float = 10.0,
        full_scan_s: float = 30.0,
        delete_after_s: float = 1.0,
    ) -> None:
        """`delete_after_s`: how long the running relay lets published batches wait for their
        delete (one store call for all of them; 0: one per publish, as `drain` does)."""
        self._store, self._bus, self._collections = store, bus, collections
        self._interval, self._batch, self._max_backoff = interval_s, batch, max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._dirty: dict[tuple[str, str], None] = {}  # updated aggregates, in write order
        self._writing: set[str] = set()  # batches being written in this process
        self._handed: dict[str, Batch] = {}  # batches their writers handed over, in order
        self._gone: dict[str, None] = {}  # batches known deleted (bounded; oldest dropped)
        # updated aggregates whose own events wait for a batch of this process: by batch id
        self._after: dict[str, dict[tuple[str, str], None]] = {}
        self._sent = SentBatches(store, delete_after_s)  # published, their deletes deferred
        # a full scan first: whatever a previous run left behind
        self._full_scan_s, self._next_scan = full_scan_s, 0.0
        self.published = 0

    def notify(
        self, collection: str | None = None, id: str | None = None, batch: Batch | None = None
    ) -> None:
        """Called after a write that added events, so they go out without waiting a tick.
        With the aggregate named, only that document is read (no scan of the collection);
        a `batch` of inserted aggregates' events is published as handed."""
        if batch is not None:
            if batch.state == "writing":
                self._writing.add(batch.id)
                return
            self._writing.discard(batch.id)
            if batch.state == "written":
                self._handed[batch.id] = batch
            else:  # its writer failed: the scan takes it over (and what waits for it)
                self._release([batch.id])
                self._next_scan = 0.0
        elif collection is not None and id is not None:
            self._dirty[(collection, id)] = None
        self._wake.set()

    def _release(self, batch_ids: list[str]) -> None:
        """The aggregates waiting for these batches are read again."""
        for id in batch_ids:
            waiting = self._after.pop(id, None)
            if waiting:
                self._dirty.update(waiting)
                self._wake.set()

    def _forget(self, ids: list[str]) -> None:
        self._gone.update(dict.fromkeys(ids))
        while len(self._gone) > GONE_KEPT:
            del self._gone[next(iter(self._gone))]

    async def _publish_batches(self, found: list[Batch], defer: bool = False) -> int:
        """Publish these batches' events in one go; delete the batches all confirmed (`defer`:
        with the next flush). Raises PublishFailed (after that) if anything was not."""
        done, sent, failure = await publish_batches(self._bus, found)
        for collection, ids in done.items():
            self._sent.add(collection, ids)
        if not (defer and self._sent.after_s > 0):
            await self._flush()
        failed_ids = [b.id for b in found if b.id not in self._sent and b.id not in self._gone]
        self._release(failed_ids)  # failed ones: blocked again, then scanned
        self.published += sent
        if failure is not None:
            raise failure
        return sent

    async def _flush(self) -> None:
        """Delete the published batches whose deletes wait; what waited for them may go."""
        deleted = await self._sent.flush()
        self._forget(deleted)
        self._release(deleted)

    async def _unblocked(self, collection: str, docs: list[Doc]) -> list[Doc]:
        """The documents whose creating batch is gone (read after the documents were): their
        own events may go out. Those waiting for a batch of this process are read again once
        it is published; for another's, the next scan publishes the batch first."""
        local = self._writing.union(self._handed, self._sent.ids)
        unknown = {str(d[BATCH]) for d in docs if d.get(BATCH)} - local - self._gone.keys()
        if unknown:
            where = batch_collection(collection)
            ids = sorted(unknown)
            found = await asyncio.gather(*(self._store.get(where, b) for b in ids))
            self._forget([b for b, f in zip(ids, found, strict=True) if f is None])
        ready = []
        for doc in docs:
            tag = doc.get(BATCH)
            if not tag or tag in self._gone:
                ready.append(doc)
            elif tag in local:
                self._after.setdefault(str(tag), {})[(collection, str(doc["_id"]))] = None
                self._sent.urgent |= tag in self._sent  # published: its delete goes now
            else:
                self._next_scan = min(self._next_scan, asyncio.get_running_loop().time() + 1.0)
        return ready

    async def _publish(self, collection: str, docs: list[Doc]) -> int:
        """Publish the outboxes of `docs` whose creating batch is gone (`publish_outboxes`)."""
        docs = await self._unblocked(collection, [d for d in docs if d.get("outbox")])
        sent, failure = await publish_outboxes(self._store, self._bus, collection, docs)
        self.published += sent
        if failure is not None:
            raise failure
        return sent

    async def _drain_handed(self, defer: bool = False) -> int:
        sent = 0
        while self._handed:
            chunk: list[Batch] = []
            size = 0
            while self._handed and (not chunk or size < self._batch):
                batch = self._handed.pop(next(iter(self._handed)))
                chunk.append(batch)
                size += batch.size
            sent += await self._publish_batches(chunk, defer)
        return sent

    async def drain_written(self, defer: bool = False) -> int:
        """Publish the batches handed over and the events of the aggregates updated since the
        last call (the batches first: an update's events never before its insert's). `defer`
        (the running relay): the published batches' deletes wait for their flush, unless an
        update waits for one of them."""
        async with self._drain_lock:
            sent = await self._drain_dirty(defer)
            due = self._sent.due_in()
            if due is not None and (not defer or due == 0):
                await self._flush()
                sent += await self._drain_dirty(defer)  # the updates that waited for those
        return sent

    async def _drain_dirty(self, defer: bool) -> int:
        """The handed batches, then the updated aggregates' outboxes a page at a time, with the
        batches handed meanwhile before each next page (new inserts never wait for many)."""
        sent = await self._drain_handed(defer)
        while self._dirty:
            keys = list(itertools.islice(self._dirty, DIRTY_PAGE))
            for key in keys:
                del self._dirty[key]
            read = await asyncio.gather(*(self._store.get(c, id) for c, id in keys))
            by_collection: dict[str, list[Doc]] = {}
            for (collection, _), doc in zip(keys, read, strict=True):
                if doc and doc.get("outbox"):
                    by_collection.setdefault(collection, []).append(doc)
            for collection, found in by_collection.items():
                sent += await self._publish(collection, found)
            sent += await self._drain_handed(defer)
        return sent

    async def drain(self, defer: bool = False, scanned: Scanned | None = None) -> int:
        """Publish everything pending now; returns how many events went out. `defer`: as for
        `drain_written`. `scanned`: what the running relay's scan read beside its work."""
        async with self._drain_lock:
            if scanned is not None:
                sent = 0
                for collection, ids in scanned.batches.items():
                    sent += await self._drain_stored(collection, defer, ids)
                self._dirty.update(scanned.waiting())
                return sent + await self._drain_dirty(defer)
            self._dirty.clear()  # the scan covers them
            await self._flush()  # the scan reads only the batches not yet published
            sent = await self._drain_handed(defer)
            for collection in self._collections:
                ids = await self._store.ids(batch_collection(collection))
                sent += await self._drain_stored(collection, defer, ids)
                while True:
                    docs = await self._store.pending(collection, self._batch)
                    out = await self._publish(collection, docs)
                    sent += out
                    if len(docs) < self._batch or not out:  # not out: all wait for a batch
                        break
        return sent

    async def _drain_stored(self, collection: str, defer: bool, ids: list[str]) -> int:
        """Publish the stored batches that nobody here publishes (`outbox_scan.py`), creating
        their missing documents first; only those are read whole (a batch gone since: skipped)."""
        # left to their writers, published (deletes deferred), or deleted since the read
        local = self._writing.union(self._handed, self._sent.ids, self._gone)
        orphans, sent, where = [i for i in ids if i not in local], 0, batch_collection(collection)
        for start in range(0, len(orphans), BATCH_PAGE):
            page = orphans[start : start + BATCH_PAGE]
            read = await asyncio.gather(*(self._store.get(where, id) for id in page))
            found = [await batches.recover(self._store, collection, b) for b in read if b]
            sent += await self._publish_batches(found, defer)
        return sent

    async def _run(self) -> None:
        backoff = self._interval
        scan: asyncio.Task[Scanned] | None = None  # the scan's read, beside the relay's work
        try:
            while True:
                self._wake.clear()  # before draining: a write during the drain wakes next turn
                try:
                    loop = asyncio.get_running_loop()
                    if scan is None and loop.time() >= self._next_scan:
                        self._next_scan = loop.time() + self._full_scan_s
                        read_ids = outbox_scan.scan(self._store, self._collections)
                        scan = asyncio.create_task(read_ids, name="outbox-scan")
                        scan.add_done_callback(lambda _: self._wake.set())
                    if scan is not None and scan.done():
                        read, scan = scan, None
                        await self.drain(defer=True, scanned=read.result())
                    else:  # new batches do not wait for the scan's read
                        await self.drain_written(defer=True)
                    backoff = self._interval
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox relay: publish failed, retrying in %.1fs: %r", backoff, exc)
                    self._next_scan = 0.0  # after a failure, scan: nothing is left behind
                    backoff = min(backoff * 2, self._max_backoff)
                # asyncio.timeout: 3.11's wait_for can swallow a cancellation (stop() hangs)
                due = self._sent.due_in()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff if due is None else min(backoff, due)):
                        await self._wake.wait()
        finally:
            if scan is not None:
                scan.cancel()

    async def prepare(self) -> None:
        """Before anything writes: what the scan needs on each collection (an index)."""
        for collection in self._collections:
            await self._store.prepare_outbox(collection)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # a last drain so a clean shutdown leaves nothing behind that the bus can take now
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)
