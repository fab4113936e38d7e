"""What the outbox relay's scan reads (`outbox.py`): per collection, the ids of the stored
batches and of the documents whose own outbox waits. It finds what no writer of this process
handed over: a crashed writer's batch, another process's, a previous run's updates.

On FerretDB 1.24 both are reads of a whole collection: it pushes no sort and no range down to
PostgreSQL, so even a sorted page of 20 batches read every row (0.3-1.5 s a read under load;
the matcher's relay, paging through its batches under its lock, once published nothing for
6.6 and 14.1 s in one run). The running relay therefore reads the ids beside its work and only
then, under its lock, publishes the orphan batches and reads the waiting documents by id, a
page at a time like any update (`OutboxRelay._drain_dirty`)."""

from __future__ import annotations

from dataclasses import dataclass

from g60_chassis.batches import batch_collection
from g60_chassis.store import DocumentStore

PENDING_READ = 10_000  # documents with a waiting outbox taken per scan (the rest: the next)


@dataclass(frozen=True)
class Scanned:
    """Per collection: the stored batches' ids (in order), the waiting documents' ids."""

    batches: dict[str, list[str]]
    pending: dict[str, list[str]]

    def waiting(self) -> dict[tuple[str, str], None]:
        """The waiting documents as the relay keeps its updated aggregates."""
        return {(c, id): None for c, ids in self.pending.items() for id in ids}


async def scan(store: DocumentStore, collections: list[str]) -> Scanned:
    stored = {c: await store.ids(batch_collection(c)) for c in collections}
    waiting = {
        c: [str(d["_id"]) for d in await store.pending(c, PENDING_READ)] for c in collections
    }
    return Scanned(stored, waiting)
