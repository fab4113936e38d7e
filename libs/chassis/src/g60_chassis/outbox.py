"""The outbox relay: publishes the events that aggregates stored in their own documents, then
marks them sent. At-least-once: a crash between publish and mark re-publishes (consumers are
idempotent); a bus that is down only delays publication.

Batched: the pending events of many aggregates go to the bus in one `publish_many` (all in
flight at once, one wait for the acknowledgements), then each aggregate's confirmed events leave
its outbox in one write, the aggregates' writes concurrently. Per aggregate only the leading
confirmed events are marked: an event is never marked while an earlier one of the same
aggregate is to be published again. All those marks go to the store in one call.

A document just inserted is not read back: its writer hands the relay the outbox it wrote
(`notify(..., inserted=...)`), since nothing else can have published or added to it yet
except a later write, which makes the relay read it again."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

from g60_chassis.bus import EventBus, Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.store import Doc, DocumentStore

log = logging.getLogger(__name__)


def outbox_entry(topic: str, envelope: Envelope) -> dict[str, Any]:
    """How an event waits in its aggregate's outbox."""
    return {"topic": topic, **envelope.to_dict()}


class PublishFailed(Exception):
    """Some events were not confirmed by the bus; they stay in their outboxes."""

    def __init__(self, failed: int, first: BaseException) -> None:
        super().__init__(f"{failed} event(s) not confirmed; first error: {first!r}")
        self.failed, self.first = failed, first


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
    ) -> None:
        self._store, self._bus, self._collections = store, bus, collections
        self._interval, self._batch, self._max_backoff = interval_s, batch, max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        # written aggregates, in write order; for one just inserted, its outbox as written
        self._dirty: dict[tuple[str, str], list[dict[str, Any]] | None] = {}
        self._full_scan_s = full_scan_s
        self._next_scan = 0.0  # a full scan first: whatever a previous run left behind
        self.published = 0

    def notify(
        self,
        collection: str | None = None,
        id: str | None = None,
        inserted: list[dict[str, Any]] | None = None,
    ) -> None:
        """Called after a write that added events, so they go out without waiting a tick.
        With the aggregate named, only that document is read (no scan of the collection);
        with `inserted` (a new document and its whole outbox), not even that: these entries
        are published as they are. A later write to it before the relay ran makes it read."""
        if collection is not None and id is not None:
            key = (collection, id)
            self._dirty[key] = inserted if key not in self._dirty else None
        self._wake.set()

    async def _publish(self, collection: str, docs: list[Doc]) -> int:
        """Publish the outboxes of `docs` in one batch; mark each one's confirmed prefix sent.
        Raises PublishFailed (after marking what was confirmed) if anything was not."""
        whole: dict[str, int] = {}  # documents whose whole outbox went out: id → version
        docs = [d for d in docs if d.get("outbox")]
        messages = [
            Outgoing(entry["topic"], Envelope.from_dict(entry))
            for doc in docs
            for entry in doc["outbox"]
        ]
        if not messages:
            return 0
        results = await self._bus.publish_many(messages)
        marks: dict[str, list[Doc]] = {}
        i, sent, failed = 0, 0, 0
        first: BaseException | None = None
        for doc in docs:
            outcome = results[i : i + len(doc["outbox"])]
            i += len(doc["outbox"])
            confirmed = next((n for n, r in enumerate(outcome) if r is not None), len(outcome))
            failures = [r for r in outcome if r is not None]
            failed += len(failures)
            first = first or (failures[0] if failures else None)
            if confirmed:
                marks[str(doc["_id"])] = doc["outbox"][:confirmed]
                sent += confirmed
                if confirmed == len(outcome):
                    whole[str(doc["_id"])] = int(doc["version"])
        await self._store.mark_sent_many(collection, marks, whole)
        self.published += sent
        if first is not None:
            raise PublishFailed(failed, first)
        return sent

    async def drain_written(self) -> int:
        """Publish the events of the aggregates written since the last call."""
        sent = 0
        async with self._drain_lock:
            while self._dirty:
                keys = list(itertools.islice(self._dirty, self._batch))
                known = {key: self._dirty.pop(key) for key in keys}
                unknown = [key for key in keys if known[key] is None]
                read = await asyncio.gather(*(self._store.get(c, id) for c, id in unknown))
                docs = dict(zip(unknown, read, strict=True))
                by_collection: dict[str, list[Doc]] = {}
                for key in keys:
                    entries = known[key]
                    doc = (
                        docs.get(key)
                        if entries is None
                        else {"_id": key[1], "version": 1, "outbox": entries}  # as inserted
                    )
                    if doc and doc.get("outbox"):
                        by_collection.setdefault(key[0], []).append(doc)
                for collection, found in by_collection.items():
                    sent += await self._publish(collection, found)
        return sent

    async def drain(self) -> int:
        """Publish everything pending now; returns how many events went out."""
        sent = 0
        async with self._drain_lock:
            for collection in self._collections:
                while True:
                    docs = await self._store.pending(collection, self._batch)
                    sent += await self._publish(collection, docs)
                    if len(docs) < self._batch:
                        break
        return sent

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            self._wake.clear()  # before draining: a write during the drain wakes the next turn
            try:
                loop = asyncio.get_running_loop()
                if loop.time() >= self._next_scan:
                    self._dirty.clear()  # the scan covers them
                    await self.drain()
                    self._next_scan = loop.time() + self._full_scan_s
                else:
                    await self.drain_written()
                backoff = self._interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: publish failed, retrying in %.1fs: %r", backoff, exc)
                self._next_scan = 0.0  # after a failure, scan: nothing is left behind
                backoff = min(backoff * 2, self._max_backoff)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the wake event is set, and stop() then waits for ever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()

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
