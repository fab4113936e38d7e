"""A typed repository of one kind of aggregate over the DocumentStore port: the model is a
pydantic model with `id` and `version`; saving it appends its outgoing events to the same
document (the outbox) in the same write, then wakes the relay. Inserting aggregates with
events writes their events as one batch beside them (`batches.py`): no document rewrite is
needed to mark a new aggregate's events sent."""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter
from pydantic_core import from_json

from g60_chassis import batches
from g60_chassis.batches import Batch
from g60_chassis.cursors import decode_cursor as decode_cursor
from g60_chassis.cursors import encode_cursor as encode_cursor
from g60_chassis.envelope import Envelope
from g60_chassis.errors import Conflict
from g60_chassis.group_commit import GroupCommit
from g60_chassis.outbox import outbox_entry
from g60_chassis.store import BATCH, Doc, DocumentStore, DuplicateKey, VersionConflict


class AlreadyExists(Conflict):
    """An insert (or a change) clashed with a stored document: same id (`field` "_id") or the
    same value under a unique index. HTTP 409 naming the field if it reaches a client."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail, field=field)
        self.field = field


class Notify(Protocol):
    """Wakes the outbox relay after a write that added events to the aggregate `id` (its own
    outbox), or that stored a `batch` of inserted aggregates' events (the relay publishes it
    as handed, without reading anything back)."""

    def __call__(
        self, collection: str, id: str | None = None, batch: Batch | None = None
    ) -> None: ...


def _no_relay(collection: str, id: str | None = None, batch: Batch | None = None) -> None:
    return None


M = TypeVar("M", bound=BaseModel)
Outgoing = list[tuple[str, Envelope]]  # (topic, event)
EventsOf = Callable[[M], Outgoing]


@dataclass(frozen=True)
class FromDoc(Generic[M]):
    """Events built from the document the write stores as well as the aggregate: fields whose
    JSON form the document holds already (times as text, ...) are taken from it, so each
    aggregate is dumped once for both (a match's event read ~20 attributes and converted its
    times again, ~9 µs of the ~23 µs a written match cost beside the store)."""

    build: Callable[[M, Doc], Outgoing]


Events = EventsOf[M] | FromDoc[M]


class Aggregates(Generic[M]):
    def __init__(
        self,
        store: DocumentStore,
        collection: str,
        model: type[M],
        notify: Notify = _no_relay,
        packed: tuple[str, ...] = (),
        group_adds: bool = False,
    ) -> None:
        """`packed`: fields stored as one JSON text each (see `_dump`); never filtered on.
        `group_adds`: concurrent `add`s with events are written together (`group_commit.py`;
        for a collection whose only unique key is `_id`)."""
        self.store, self.collection, self.model, self._notify = store, collection, model, notify
        self.packed = packed
        self._skip = set(packed)
        self._settable = model.model_fields.keys() | model.model_computed_fields.keys()
        # each packed field's own serialiser: its JSON text straight from the attribute (a
        # `model_dump` of it first copied every nested dict and list, for `to_json` to walk)
        self._packers: dict[str, TypeAdapter[Any]] = {
            k: TypeAdapter(model.model_fields[k].annotation or Any) for k in packed
        }
        self._groups = GroupCommit(self._insert) if group_adds else None

    def _load(self, doc: dict[str, Any]) -> M:
        data = {k: v for k, v in doc.items() if k not in ("_id", "outbox", "outbox_pending", BATCH)}
        for k in self.packed:  # a document an older release wrote holds the value itself
            if isinstance(data.get(k), str):
                data[k] = from_json(data[k])
        return self.model.model_validate({**data, "id": doc["_id"]})

    def _dump(self, obj: M) -> dict[str, Any]:
        """The document to store. A `packed` field (nested objects nobody filters on, such as
        a match's score breakdowns and decisions) goes in as JSON text: FerretDB on PostgreSQL
        keeps a type schema beside every nested value and converts the whole document on each
        write and read, so a match of ~2.4 KB was ~7 KB of JSONB, stored out of line (TOAST);
        as text, FerretDB's CPU per inserted match fell ~3x and PostgreSQL's ~2x
        (`docs/decisions.md`, stored form of matches)."""
        data = obj.model_dump(mode="json", exclude=self._skip)
        data["_id"] = data.pop("id")
        for k, packer in self._packers.items():
            data[k] = packer.dump_json(getattr(obj, k)).decode()
        return data

    def _row(self, obj: M, events: Events[M] | None) -> tuple[Doc, builtins.list[Doc]]:
        """The document to store and its outbox entries (the document dumped first: `FromDoc`
        events are built from it)."""
        doc = self._dump(obj)
        if events is None:
            return doc, []
        out = events.build(obj, doc) if isinstance(events, FromDoc) else events(obj)
        return doc, [outbox_entry(t, e) for t, e in out]

    async def get(self, id: str) -> M | None:
        doc = await self.store.get(self.collection, id)
        return self._load(doc) if doc else None

    async def raw(self, id: str) -> dict[str, Any] | None:  # the stored document, not loaded
        return await self.store.get(self.collection, id)

    async def add(self, obj: M, events: Events[M] | None = None) -> M:
        """Insert at version 1; `events(obj)` builds the outgoing events from the stored state."""
        obj.version = 1  # type: ignore[attr-defined]
        row = self._row(obj, events)
        try:
            if not row[1]:
                await self.store.insert(self.collection, row[0])
                return obj
            if self._groups is not None:
                existed = {obj.id} if await self._groups.add(row) else set()  # type: ignore[attr-defined]
            else:
                existed = await self._insert([row])
        except DuplicateKey as exc:
            raise self._clash(obj, exc) from exc
        if existed:
            raise self._clash(obj, DuplicateKey(obj.id))  # type: ignore[attr-defined]
        return obj

    async def add_many(self, objs: builtins.list[M], events: Events[M] | None = None) -> set[str]:
        """`add` for many aggregates in one store call; returns the ids that existed already
        (those are left as they were, and their events are not sent)."""
        rows = []
        for obj in objs:
            obj.version = 1  # type: ignore[attr-defined]
            rows.append(self._row(obj, events))
        try:
            return await self._insert(rows)
        except DuplicateKey as exc:
            clash = next((o for o in objs if o.id == exc.id), objs[0])  # type: ignore[attr-defined]
            raise self._clash(clash, exc) from exc

    async def _insert(self, rows: builtins.list[tuple[Doc, builtins.list[Doc]]]) -> set[str]:
        """Documents with no event are inserted alone; with events, through a batch."""
        if not any(entries for _, entries in rows):
            return await self.store.insert_many(self.collection, rows)
        batch = Batch(batches.new_batch_id(), self.collection)
        self._notify(self.collection, batch=batch)  # writing: the relay's scan leaves it to us
        try:
            return await batches.write(self.store, batch, rows)
        finally:
            if batch.state != "written":
                batch.state = "abandoned"
            self._notify(self.collection, batch=batch)

    async def save(self, obj: M, events: Events[M] | None = None) -> M:
        """Compare-and-set on the version read; VersionConflict if someone wrote in between."""
        expected: int = obj.version  # type: ignore[attr-defined]
        obj.version = expected + 1  # type: ignore[attr-defined]
        doc, outgoing = self._row(obj, events)
        try:
            await self.store.update(self.collection, doc, expected, outgoing)
        except VersionConflict:
            obj.version = expected  # type: ignore[attr-defined]
            raise
        except DuplicateKey as exc:
            obj.version = expected  # type: ignore[attr-defined]
            raise self._clash(obj, exc) from exc
        if outgoing:
            self._notify(self.collection, obj.id)  # type: ignore[attr-defined]
        return obj

    async def save_many(self, objs: builtins.list[tuple[M, Events[M] | None]]) -> builtins.list[M]:
        """`save` for many aggregates (each with its events) in one store call. Returns those
        whose compare-and-set lost (left at the version read, nothing of theirs written): the
        caller reads them again, as after a VersionConflict of `save`."""
        rows, updates = [], []
        for obj, events in objs:
            expected: int = obj.version  # type: ignore[attr-defined]
            obj.version = expected + 1  # type: ignore[attr-defined]
            doc, entries = self._row(obj, events)
            rows.append((obj, expected, bool(entries)))
            updates.append((doc, expected, entries))
        try:
            lost = await self.store.update_many(self.collection, updates)
        except DuplicateKey as exc:
            for obj, expected, _ in rows:
                obj.version = expected  # type: ignore[attr-defined]
            clash = next((o for o, _, _ in rows if o.id == exc.id), rows[0][0])  # type: ignore[attr-defined]
            raise self._clash(clash, exc) from exc
        failed = []
        for obj, expected, sent in rows:
            if obj.id in lost:  # type: ignore[attr-defined]
                obj.version = expected  # type: ignore[attr-defined]
                failed.append(obj)
            elif sent:
                self._notify(self.collection, obj.id)  # type: ignore[attr-defined]
        return failed

    async def set_fields(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        unless: str | None = None,
        report_absent: bool = True,
        *,
        expected: Mapping[str, int] | None = None,
        events: Mapping[str, Outgoing] | None = None,
    ) -> set[str]:
        """`DocumentStore.set_fields` of id → new JSON values of plain or computed fields (a packed
        one as its JSON text): no read, no rewrite of the rest, the version bumped. `expected`:
        id → version read (compare-and-set); `events`: id → its events, its outbox's, one write."""
        for fields in changes.values():
            text = {k for k in self._skip if isinstance(fields.get(k), str)}
            if bad := [k for k in fields if k in self._skip - text or k not in self._settable]:
                raise ValueError(f"not a plain field of {self.model.__name__}: {bad}")
        rows = {k: dict(f) for k, f in changes.items()}
        entries = {k: [outbox_entry(t, e) for t, e in out] for k, out in (events or {}).items()}
        missed = await self.store.set_fields(
            self.collection,
            rows,
            unless=unless,
            report_absent=report_absent,
            expected=expected,
            events=entries or None,
        )
        for k, out in entries.items():
            if out and k not in missed:
                self._notify(self.collection, k)
        return missed

    async def remove_many(self, ids: builtins.list[str]) -> None:
        """Delete these aggregates in one store call (for records of work to do, such as a
        schedule; an aggregate with events to publish is never removed)."""
        await self.store.delete_many(self.collection, ids)

    def _clash(self, obj: M, exc: DuplicateKey) -> AlreadyExists:
        if exc.field == "_id":
            return AlreadyExists(f"{self.collection} {exc.id!r} exists", "_id")
        value = getattr(obj, exc.field, None)
        return AlreadyExists(
            f"another of the {self.collection} has {exc.field} {value!r}", exc.field
        )

    async def list(
        self, where: Mapping[str, Any] | None = None, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[M], str | None]:
        docs = await self.store.find(
            self.collection, where, after_id=decode_cursor(cursor), limit=limit + 1
        )
        items = [self._load(d) for d in docs[:limit]]
        more = len(docs) > limit
        return items, encode_cursor(docs[limit - 1]["_id"]) if more and items else None

    async def every(
        self, where: Mapping[str, Any] | None = None, page: int = 500, pause: float = 0.0
    ) -> builtins.list[M]:
        """All the aggregates `where` matches, read page by page (for scans, not for APIs).
        Between pages a long scan lets others in: for one turn of the event loop, or for
        `pause` seconds (a request needs many turns; one page of CPU work per turn of theirs
        would hold it up for the whole scan)."""
        out: builtins.list[M] = []
        cursor: str | None = None
        while True:
            items, cursor = await self.list(where, cursor, page)
            out += items
            if cursor is None:
                return out
            await asyncio.sleep(pause)


async def retry_on_conflict(fn: Callable[[], Any], attempts: int = 50) -> Any:
    """Run a read-modify-write `fn` again when its compare-and-set lost a race."""
    for attempt in range(attempts):
        try:
            return await fn()
        except VersionConflict:
            if attempt == attempts - 1:
                raise Conflict("too much contention on this object; try again") from None
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")
