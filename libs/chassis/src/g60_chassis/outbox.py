"""The outbox relay: publishes the events that aggregates stored in their own documents, then
marks them sent. At-least-once: a crash between publish and mark re-publishes (consumers are
idempotent); a bus that is down only delays publication."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from g60_chassis.bus import EventBus
from g60_chassis.envelope import Envelope
from g60_chassis.store import DocumentStore

log = logging.getLogger(__name__)


def outbox_entry(topic: str, envelope: Envelope) -> dict[str, Any]:
    """How an event waits in its aggregate's outbox."""
    return {"topic": topic, **envelope.to_dict()}


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
        self._dirty: dict[tuple[str, str], None] = {}  # written aggregates, in write order
        self._full_scan_s = full_scan_s
        self._next_scan = 0.0  # a full scan first: whatever a previous run left behind
        self.published = 0

    def notify(self, collection: str | None = None, id: str | None = None) -> None:
        """Called after a write that added events, so they go out without waiting a tick.
        With the aggregate named, only that document is read (no scan of the collection)."""
        if collection is not None and id is not None:
            self._dirty[(collection, id)] = None
        self._wake.set()

    async def _publish(self, collection: str, doc: dict[str, object]) -> int:
        done: list[str] = []
        try:
            for entry in doc["outbox"]:  # type: ignore[attr-defined]
                await self._bus.publish(entry["topic"], Envelope.from_dict(entry))
                done.append(entry["id"])
        finally:
            if done:
                await self._store.mark_sent(collection, str(doc["_id"]), done)
        return len(done)

    async def drain_written(self) -> int:
        """Publish the events of the aggregates written since the last call."""
        sent = 0
        async with self._drain_lock:
            while self._dirty:
                (collection, id), _ = next(iter(self._dirty.items()))
                doc = await self._store.get(collection, id)
                if doc and doc.get("outbox"):
                    sent += await self._publish(collection, doc)
                del self._dirty[(collection, id)]
        self.published += sent
        return sent

    async def drain(self) -> int:
        """Publish everything pending now; returns how many events went out."""
        sent = 0
        async with self._drain_lock:
            for collection in self._collections:
                while True:
                    docs = await self._store.pending(collection, self._batch)
                    for doc in docs:
                        sent += await self._publish(collection, doc)
                    if len(docs) < self._batch:
                        break
        self.published += sent
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

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
