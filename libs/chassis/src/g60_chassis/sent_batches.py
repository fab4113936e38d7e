"""Batches the relay has published whose deletes wait: one bulk delete for all the batches
published within `after_s` (or `max_kept` of them), instead of one per publish.

A batch document is deleted once all its events are confirmed; nothing reads it meanwhile but
a relay's scan, so the delete need not follow at once. Under load the relay publishes a batch
or two per turn (a need's group commit writes one batch per group): the delete was one store
command per turn, ~0.7 a need at 50 needs/s, on FerretDB and PostgreSQL as costly as the
insert it undoes. Deferred, it is one command a second.

What waiting changes: a crash before the delete publishes those batches again (at-least-once
with the same event ids, as a crash between publishing and the delete always did: consumers
dedupe), now for up to `after_s` of them. Until deleted a batch counts as pending for the
order of its aggregates' events: an update of a document it created waits, and asks for the
delete at once (`urgent`), so an update's event is never published before its insert's batch
is gone (a crash could otherwise publish the insert's event again after the update's)."""

from __future__ import annotations

import time
from collections.abc import Callable

from g60_chassis.batches import batch_collection
from g60_chassis.store import DocumentStore


class SentBatches:
    def __init__(
        self,
        store: DocumentStore,
        after_s: float = 1.0,
        max_kept: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self.after_s, self._max, self._clock = store, after_s, max_kept, clock
        self._ids: dict[str, str] = {}  # batch id -> its collection, in publish order
        self._since: float | None = None  # when the oldest waiting delete was deferred
        self.urgent = False  # an update waits for one of these batches: delete now
        self.deletes = 0  # delete commands sent (for tests and benchmarks)

    @property
    def ids(self) -> dict[str, str]:
        """The batches waiting for their delete: id -> collection."""
        return self._ids

    def __contains__(self, batch_id: object) -> bool:
        return batch_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, collection: str, ids: list[str]) -> None:
        """These batches' events were all confirmed: delete them with the next flush."""
        if ids and self._since is None:
            self._since = self._clock()
        for id in ids:
            self._ids[id] = collection

    def due_in(self) -> float | None:
        """Seconds until a flush is due (0: now); None when nothing waits."""
        if self._since is None:
            return None
        if self.urgent or len(self._ids) >= self._max:
            return 0.0
        return max(0.0, self._since + self.after_s - self._clock())

    async def flush(self) -> list[str]:
        """Delete every waiting batch (one store call per collection); returns their ids. On a
        failure they all stay, to be deleted by the next flush (a delete is idempotent)."""
        taken = dict(self._ids)
        by_collection: dict[str, list[str]] = {}
        for id, collection in taken.items():
            by_collection.setdefault(collection, []).append(id)
        for collection, ids in by_collection.items():
            self.deletes += 1
            await self._store.delete_many(batch_collection(collection), ids)
        for id in taken:  # those added during the deletes wait for the next flush
            del self._ids[id]
        self._since = self._clock() if self._ids else None
        self.urgent = False
        return list(taken)
