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
deleted if none was), so the refused ones are never created behind the caller's back.

Why 1 is a full redo record, written before 2 and not beside it (weighed in issue 8, write13:
the two writes in a row are half of a matcher's consumed batch). Written together, a crash
could leave documents tagged with a batch document that never exists, and nothing tells that
tag from one whose batch was published and deleted: their events would be lost for good (a
redelivery finds the documents and sends nothing). Nor can the batch hold only the events and
drop, at recovery, those of the documents it does not find: an insert whose outcome its
writer does not know (a timeout, a dropped connection, a dead process) may still land after
the scan looked, and another instance's scan may look while the writer is between 1 and 2;
inserting the missing documents itself settles that race by id. So the batch keeps the
documents, and its size is cut instead: its items are one compressed text (`_packed`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Literal

import lz4.frame
from pydantic_core import from_json, to_json

from g60_chassis.store import BATCH, Doc, DocumentStore, DuplicateKey, VersionConflict

PREFIX = "_outbox_"
LZ4 = "items_lz4"  # a batch document's items, compressed (`_packed`)
ZIPPED = "items_z"  # as an older release compressed them (zlib), still read


def batch_collection(collection: str) -> str:
    """Where the batches of inserts into `collection` wait."""
    return f"{PREFIX}{collection}"


def new_batch_id() -> str:
    """Time-ordered (the scan publishes older batches first), unique across processes."""
    return f"{time.time_ns():016x}{os.urandom(6).hex()}"


def made_at(batch_id: str) -> float | None:
    """When `new_batch_id` made this id, in epoch seconds; None for an id made otherwise."""
    try:
        return int(batch_id[:16], 16) / 1e9 if len(batch_id) > 16 else None
    except ValueError:
        return None


def _packed(items: list[Doc]) -> Doc:
    """A batch document's items, as stored: their JSON text compressed (LZ4 frames) and in
    base64 (a text every store keeps as it is). The store never looks inside them. As values,
    FerretDB on PostgreSQL converted every nested value with its type schema on each write (a
    batch of ten matches and their events was ~100 KB of JSONB); as plain JSON text, a third
    of that, still the largest write of a consumed batch (a batch of 50 matches: 210 KB, its
    insert 8.7 ms of FerretDB and PostgreSQL against 14.8 ms for the 50 matches themselves,
    its delete by the relay 9.5 ms). Each event repeats most of its document, so the text
    compresses ~9-15x (`docs/decisions.md`, issue 8 write13). LZ4 rather than zlib's fastest
    level: on a wide offer event's batch (628 matches, 2.7 MB of JSON) 1.9 ms against 10.0
    ms, for a text 22 % longer (313 KB against 256 KB); zlib was ~12 % of a wide
    publication's CPU (issue 9, fourteenth pass). pydantic-core's encoder: twice as fast as
    `json.dumps` here, the same text."""
    return {LZ4: base64.b64encode(lz4.frame.compress(to_json(items))).decode("ascii")}


def items_of(stored: Doc) -> list[Doc]:
    """The items of a stored batch document: compressed (`_packed`), or as an older release
    stored them: zlib-compressed, plain JSON text or the list itself."""
    if LZ4 in stored:
        return list(from_json(lz4.frame.decompress(base64.b64decode(stored[LZ4]))))
    if ZIPPED in stored:
        return list(from_json(zlib.decompress(base64.b64decode(stored[ZIPPED]))))
    items = stored["items"]
    return list(from_json(items) if isinstance(items, str) else items)


@dataclass
class Batch:
    """The events of one insert call, as the relay publishes them: per created document (in
    write order) its entries; the documents that existed already are left out. Its writer
    hands it to the relay twice: when it starts writing (`state` "writing": the relay's scan
    leaves it to its writer), and when done ("written": publish it) or failed ("abandoned":
    the scan takes it over, creating its documents if the batch document was stored)."""

    id: str
    collection: str
    items: list[tuple[str, list[Doc]]] = field(default_factory=list)
    state: Literal["writing", "written", "abandoned"] = "writing"

    @property
    def size(self) -> int:
        return sum(len(entries) for _, entries in self.items)


async def ours(store: DocumentStore, collection: str, batch_id: str, ids: set[str]) -> set[str]:
    """Those of `ids` stored with `batch_id`'s tag (inserted through that batch)."""
    found = await asyncio.gather(*(store.get(collection, id) for id in sorted(ids)))
    return {str(d["_id"]) for d in found if d is not None and d.get(BATCH) == batch_id}


async def write(store: DocumentStore, batch: Batch, rows: list[tuple[Doc, list[Doc]]]) -> set[str]:
    """Steps 1 and 2: fills `batch` with its created documents' events (state "written") and
    returns the ids that existed already. A clash under another unique index raises
    DuplicateKey, the batch first cut down to what was created (and then "written" too)."""
    collection = batch.collection
    tagged = [{**doc, BATCH: batch.id} for doc, _ in rows]
    items: list[Doc] = [
        {"doc": doc, "events": events} for doc, (_, events) in zip(tagged, rows, strict=True)
    ]
    await store.insert(batch_collection(collection), {"_id": batch.id, **_packed(items)})
    try:
        existed = await store.insert_many(collection, [(doc, []) for doc in tagged])
    except DuplicateKey:
        created = await _settle_refused(store, batch, items)
        _fill(batch, items, {str(i["doc"]["_id"]) for i in items} - created)
        raise
    if existed:  # a recovery of this very batch may have inserted some first
        existed -= await ours(store, collection, batch.id, existed)
    _fill(batch, items, existed)
    return existed


async def _settle_refused(store: DocumentStore, batch: Batch, items: list[Doc]) -> set[str]:
    """After a unique clash: the batch document keeps only the documents created."""
    created = await ours(store, batch.collection, batch.id, {str(i["doc"]["_id"]) for i in items})
    where = batch_collection(batch.collection)
    if not created:
        await store.delete_many(where, [batch.id])
        return created
    kept = [i for i in items if i["doc"]["_id"] in created]
    with contextlib.suppress(VersionConflict):  # a recovery published and deleted it already
        await store.update(where, {"_id": batch.id, **_packed(kept)}, 1)
    return created


def _fill(batch: Batch, items: list[Doc], existed: set[str]) -> None:
    batch.items = [
        (str(i["doc"]["_id"]), list(i["events"]))
        for i in items
        if i["events"] and i["doc"]["_id"] not in existed
    ]
    batch.state = "written"


async def recover(store: DocumentStore, collection: str, stored: Doc) -> Batch:
    """A batch found by the scan: its writer may have died before inserting its documents, so
    the missing ones are inserted; its events are those of the documents that exist with its
    tag (a clash, by id or under a unique index, means another write's document). Read first:
    FerretDB retries a batch insert that hit a duplicate one document at a time."""
    batch = Batch(str(stored["_id"]), collection)
    items = items_of(stored)
    ids = [str(i["doc"]["_id"]) for i in items]
    found = await asyncio.gather(*(store.get(collection, id) for id in ids))
    tagged = {id for id, f in zip(ids, found, strict=True) if f and f.get(BATCH) == batch.id}
    missing = [i["doc"] for i, f in zip(items, found, strict=True) if f is None]
    if missing:
        try:
            existed = await store.insert_many(collection, [(doc, []) for doc in missing])
        except DuplicateKey:  # one by one, every clash counted (none of them is ours to insert)
            existed = set()
            for doc in missing:
                try:
                    await store.insert(collection, doc)
                except DuplicateKey:
                    existed.add(str(doc["_id"]))
        tagged |= {str(d["_id"]) for d in missing} - existed
        if existed:
            tagged |= await ours(store, collection, batch.id, existed)
    _fill(batch, items, set(ids) - tagged)
    return batch


async def waiting(
    store: DocumentStore, collection: str, limit: int, after: str | None = None
) -> list[Doc]:
    """Batch documents not yet published, oldest first (their items read: `items_of`)."""
    found = await store.find(batch_collection(collection), None, after_id=after, limit=limit)
    return [
        {**{k: v for k, v in stored.items() if k not in (LZ4, ZIPPED)}, "items": items_of(stored)}
        for stored in found
    ]


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
