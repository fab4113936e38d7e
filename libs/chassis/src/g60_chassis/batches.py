"""The events of newly inserted aggregates, kept apart from the aggregates' documents.

An insert call (`Aggregates.add` / `add_many`) with events writes one *batch* document in the
collection's outbox collection (`_outbox_<collection>`, indexed by `_id` only) and the new
documents with no outbox, each tagged with the batch id (`outbox_batch`). The relay publishes
a batch's events and deletes the batch document: one write for the whole batch, where an
outbox embedded in each document took one rewrite of each document (and of all its indexes).

There are no multi-document transactions (FerretDB 1.24 has none), so the writes are ordered
so that a crash anywhere loses nothing and publishes nothing for a document that never exists:
1. the batch document: a redo record holding the documents to insert and their events;
2. the documents, tagged (an id that exists already is left as it was: no events for it);
3. the relay publishes the events of the batch's documents that exist *with its tag*, then
   deletes the batch document.
A crash after 1 leaves a batch whose documents may be missing: the relay's scan finds it and
inserts them if absent (`recover`), then does 3; after 2, it does 3; between publishing and the
delete, it publishes again (at-least-once, the same event ids). The writer tolerates a
recovery that inserted its documents first: an id that existed carrying its own batch's tag
is counted as inserted. A document another write created (a redelivery) carries another tag:
its events are not sent twice.

Per aggregate order: a tagged document's later events (an update's, in its embedded outbox)
go out only once its creating batch is known to be gone (the relay checks after reading the
document: `OutboxRelay._unblocked`).

A failed insert call leaves its batch for the scan, which then creates its documents: a 5xx
means "outcome unknown" and ids are the caller's. A clash under another unique index is
settled at once instead: the batch is cut down to the documents that were created (or
deleted if none was), so the refused ones are never created behind the caller's back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field

from g60_chassis.store import BATCH, Doc, DocumentStore, DuplicateKey, VersionConflict

PREFIX = "_outbox_"


def batch_collection(collection: str) -> str:
    """Where the batches of inserts into `collection` wait."""
    return f"{PREFIX}{collection}"


def new_batch_id() -> str:
    """Time-ordered (the scan publishes older batches first), unique across processes."""
    return f"{time.time_ns():016x}{os.urandom(6).hex()}"


@dataclass
class Batch:
    """The events of one insert call, as the relay publishes them: per created document (in
    write order) its entries. `items` of the documents that existed already are left out."""

    id: str
    collection: str
    items: list[tuple[str, list[Doc]]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(entries) for _, entries in self.items)


async def ours(store: DocumentStore, collection: str, batch_id: str, ids: set[str]) -> set[str]:
    """Those of `ids` stored with `batch_id`'s tag (inserted through that batch)."""
    found = await asyncio.gather(*(store.get(collection, id) for id in sorted(ids)))
    return {str(d["_id"]) for d in found if d is not None and d.get(BATCH) == batch_id}


async def write(
    store: DocumentStore, collection: str, rows: list[tuple[Doc, list[Doc]]]
) -> tuple[Batch, set[str]]:
    """Steps 1 and 2: returns the batch to publish (its created documents' events) and the ids
    that existed already. A clash under another unique index raises DuplicateKey, the batch
    first cut down to what was created."""
    batch_id = new_batch_id()
    tagged = [{**doc, BATCH: batch_id} for doc, _ in rows]
    items = [{"doc": doc, "events": events} for doc, (_, events) in zip(tagged, rows, strict=True)]
    await store.insert(batch_collection(collection), {"_id": batch_id, "items": items})
    try:
        existed = await store.insert_many(collection, [(doc, []) for doc in tagged])
    except DuplicateKey:
        await _settle_refused(store, collection, batch_id, items)
        raise
    if existed:  # a recovery of this very batch may have inserted some first
        existed -= await ours(store, collection, batch_id, existed)
    return _batch(batch_id, collection, items, existed), existed


async def _settle_refused(
    store: DocumentStore, collection: str, batch_id: str, items: list[Doc]
) -> None:
    created = await ours(store, collection, batch_id, {str(i["doc"]["_id"]) for i in items})
    where = batch_collection(collection)
    if not created:
        await store.delete_many(where, [batch_id])
        return
    kept = [i for i in items if i["doc"]["_id"] in created]
    with contextlib.suppress(VersionConflict):  # a recovery published and deleted it already
        await store.update(where, {"_id": batch_id, "items": kept}, 1)


def _batch(batch_id: str, collection: str, items: list[Doc], existed: set[str]) -> Batch:
    return Batch(
        batch_id,
        collection,
        [
            (str(i["doc"]["_id"]), list(i["events"]))
            for i in items
            if i["events"] and i["doc"]["_id"] not in existed
        ],
    )


async def recover(store: DocumentStore, collection: str, stored: Doc) -> Batch:
    """A batch found by the scan: its writer may have died before inserting its documents, so
    they are inserted if absent; its events are those of the documents that exist with its
    tag (a clash, by id or under a unique index, means another write's document)."""
    batch_id, items = str(stored["_id"]), list(stored["items"])
    rows: list[tuple[Doc, list[Doc]]] = [(i["doc"], []) for i in items]
    try:
        existed = await store.insert_many(collection, rows)
    except DuplicateKey:  # one by one, every clash counted (none of them is ours to insert)
        existed = set()
        for doc, _ in rows:
            try:
                await store.insert(collection, doc)
            except DuplicateKey:
                existed.add(str(doc["_id"]))
    if existed:
        existed -= await ours(store, collection, batch_id, existed)
    return _batch(batch_id, collection, items, existed)


async def waiting(
    store: DocumentStore, collection: str, limit: int, after: str | None = None
) -> list[Doc]:
    """Batch documents not yet published, oldest first."""
    return await store.find(batch_collection(collection), None, after_id=after, limit=limit)


async def unsent(store: DocumentStore, collection: str) -> dict[str, list[Doc]]:
    """Every event of `collection` not yet published, per aggregate in order (its batch's, then
    its own outbox's); for tests and tools, not for the relay (it reads everything)."""
    out: dict[str, list[Doc]] = {}
    docs = {str(d["_id"]): d for d in await store.find(collection, None, limit=10**9)}
    for stored in await waiting(store, collection, 10**9):
        for item in stored["items"]:
            doc = docs.get(str(item["doc"]["_id"]))
            if doc is not None and doc.get(BATCH) == stored["_id"] and item["events"]:
                out.setdefault(str(doc["_id"]), []).extend(item["events"])
    for id, doc in docs.items():
        if doc.get("outbox"):
            out.setdefault(id, []).extend(doc["outbox"])
    return out
