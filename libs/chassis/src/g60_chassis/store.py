"""The document store port. Each aggregate is one document: its state, a `version` for
optimistic concurrency, and an `outbox` of events not yet published. Saving state and its events
is one single-document write, which is atomic on every backend (FerretDB has no multi-document
transactions), so an event is never lost nor published for a state that was not stored.
`Aggregates` inserts keep their events in one batch document instead (`batches.py`: written
first, as a redo record), and tag each document with it (`outbox_batch`, kept by updates)."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from g60_chassis.errors import Conflict

Doc = dict[str, Any]
Update = tuple[Doc, int, list[Doc]]  # a document, the version it was read at, events to append
BATCH = "outbox_batch"  # the insert batch that created a document (`batches.py`); kept by updates


class StoreError(Exception):
    pass


class DuplicateKey(StoreError):
    """A document with this id (`field` "_id") or, under a unique index, with this value of
    `field` already exists."""

    def __init__(self, id: str, field: str = "_id") -> None:
        super().__init__(f"duplicate {field} ({id})")
        self.id, self.field = id, field


class VersionConflict(StoreError, Conflict):
    """The document changed since it was read (or is gone): HTTP 409 if it reaches a client."""


class DocumentStore(Protocol):
    async def get(self, collection: str, id: str) -> Doc | None: ...

    async def insert(self, collection: str, doc: Doc, events: list[Doc] = ...) -> None:
        """Insert a new document (version 1) with `events` as its outbox. DuplicateKey if the
        id exists."""

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        """Insert new documents (each with its outbox) in one call; returns the ids that
        existed already (left as they were). A clash under another unique index raises
        DuplicateKey."""

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] = ...
    ) -> int:
        """Replace the state of `doc["_id"]` if its version is still `expected_version`, append
        `events` to its outbox, and return the new version. VersionConflict otherwise. The
        document's `outbox_batch` tag stays as stored (whatever `doc` holds there)."""

    async def update_many(self, collection: str, updates: list[Update]) -> set[str]:
        """`update` for many documents in one call, each `(doc, expected_version, events)`;
        returns the ids whose version had moved (left as they were: the caller's
        VersionConflict), the others written. One document's write stays atomic; the batch
        is not (a DuplicateKey may leave some written)."""

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        """Remove these documents (ids not stored are ignored), in one call. For documents
        that only mark work to do (a schedule), not for aggregates: their outbox goes too."""

    async def find(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Doc]:
        """Documents whose top-level fields equal `where`, in id order, after `after_id`."""

    async def pending(self, collection: str, limit: int = 100) -> list[Doc]:
        """Documents whose outbox is not empty (the outbox relay's work)."""

    async def prepare_outbox(self, collection: str) -> None:
        """Whatever `pending` needs on this collection (an index), made before writes start;
        `pending` makes it on first use otherwise."""

    async def mark_sent(self, collection: str, id: str, sent: list[Doc]) -> None:
        """Remove these outbox entries (as read from the document) from its outbox, in one
        write; leaves `version` alone."""

    async def mark_sent_many(
        self,
        collection: str,
        sent: Mapping[str, list[Doc]],
        whole: Mapping[str, int] | None = None,
    ) -> None:
        """`mark_sent` for many documents (id → entries) in one call. `whole`: the documents
        whose whole outbox, as read at this version, was sent (the store may then empty it
        outright if the version is unchanged, and clear its pending mark in the same write)."""

    async def ensure_index(self, collection: str, field: str, unique: bool = False) -> None:
        """An index for `find` on this top-level field (idempotent). `unique`: two documents
        never hold one value there (a field every document holds: MongoDB counts a missing
        value as one); a write that would is a DuplicateKey."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


async def insert_each(
    store: DocumentStore, collection: str, docs: list[tuple[Doc, list[Doc]]]
) -> set[str]:
    """`insert_many` as one insert per document (stores with no cheaper way)."""
    existed = set()
    for doc, events in docs:
        try:
            await store.insert(collection, doc, events)
        except DuplicateKey as exc:
            if exc.field != "_id":
                raise
            existed.add(doc["_id"])
    return existed


async def update_each(store: DocumentStore, collection: str, updates: list[Update]) -> set[str]:
    """`update_many` as one update per document (stores with no cheaper way)."""
    conflicts = set()
    for doc, expected, events in updates:
        try:
            await store.update(collection, doc, expected, events)
        except VersionConflict:
            conflicts.add(doc["_id"])
    return conflicts


ATOMIC = (str, int, float, bool, type(None))
BLOB = "\x00state"  # the key of a stored document's pickled state (no field is named so)
NESTED = "\x00nested"  # the names of its top-level values only in the blob, "\x00"-separated
# (a string, not a set: a set would be one more object for the garbage collector per document)


def _pack(doc: Doc, outbox: list[bytes]) -> Doc:
    """A document as the memory store holds it: its state pickled into one bytes object (a
    copy, and invisible to the garbage collector), its top-level plain values beside for the
    indexes and filters, and its outbox as one pickled entry each. Held as nested dicts, the
    stored matches were most of what a full garbage collection of the matching service's
    benchmark walked (371k objects; 141k with blobs, and 0.38x its CPU time)."""
    state = {k: v for k, v in doc.items() if k != "outbox"}
    stored: Doc = {k: v for k, v in state.items() if isinstance(v, ATOMIC)}
    stored[BLOB] = pickle.dumps(state, pickle.HIGHEST_PROTOCOL)
    stored[NESTED] = "\x00" + "".join(f"{k}\x00" for k in state if k not in stored)
    stored["outbox"] = outbox
    return stored


def _entries(events: list[Doc] | None) -> list[bytes]:
    return [pickle.dumps(e, pickle.HIGHEST_PROTOCOL) for e in events or []]


def _read(stored: Doc) -> Doc:
    """A stored document as a reader gets it: a fresh copy, its outbox included."""
    doc: Doc = pickle.loads(stored[BLOB])
    doc["outbox"] = [pickle.loads(e) for e in stored["outbox"]]
    return doc


_MISSING = object()


def _field(stored: Doc, name: str, default: Any = None) -> Any:
    if name in stored:
        return stored[name]
    if f"\x00{name}\x00" in stored[NESTED]:  # a list or a dict: only in the blob
        return pickle.loads(stored[BLOB])[name]
    return default  # not a field of this document: nothing to unpickle


def _key(value: Any) -> Any:
    """A hashable stand-in for an indexed value (lists and dicts compare as their repr)."""
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return value


class MemoryDocumentStore:
    """A dict-backed store with the same semantics; the fake for unit tests. Like the real
    stores, `ensure_index` makes `find` on that field cost its hits, not the collection (the
    matching service's benchmarks run on this store: a scan of every match per project made
    an offer event take seconds at 100,000 needs)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Doc]] = defaultdict(dict)
        self._unique: dict[str, set[str]] = defaultdict(set)
        # collection → field → value → ids holding it
        self._index: dict[str, dict[str, dict[Any, set[str]]]] = defaultdict(dict)

    def _check_unique(self, collection: str, doc: Doc) -> None:
        for field in self._unique[collection]:
            value = doc.get(field)
            if value is None:
                continue
            holders = self._index[collection][field].get(_key(value), set())
            if holders - {doc["_id"]}:
                raise DuplicateKey(doc["_id"], field)

    def _store(self, collection: str, doc: Doc, outbox: list[bytes]) -> None:
        """Keep `doc` (a plain document, not kept itself) with this outbox."""
        id = doc["_id"]
        old = self._data[collection].get(id)
        for field, index in self._index[collection].items():
            if old is not None and (was := _field(old, field, _MISSING)) is not _MISSING:
                index[_key(was)].discard(id)
            if field in doc:
                index.setdefault(_key(doc[field]), set()).add(id)
        self._data[collection][id] = _pack(doc, outbox)

    def _candidates(self, collection: str, where: Mapping[str, Any]) -> list[str]:
        indexes = self._index[collection]
        hits: list[set[str]] = [  # a missing field equals None: no index holds it
            indexes[k].get(_key(v), set())
            for k, v in where.items()
            if k in indexes and v is not None
        ]
        if not hits:
            return sorted(self._data[collection])
        fewest: set[str] = min(hits, key=len)
        return sorted(fewest)

    async def get(self, collection: str, id: str) -> Doc | None:
        doc = self._data[collection].get(id)
        return _read(doc) if doc is not None else None

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        if doc["_id"] in self._data[collection]:
            raise DuplicateKey(doc["_id"])
        self._check_unique(collection, doc)
        self._store(collection, {**doc, "version": 1}, _entries(events))

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        return await insert_each(self, collection, docs)

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        current = self._data[collection].get(doc["_id"])
        if current is None or current["version"] != expected_version:
            raise VersionConflict(doc["_id"])
        self._check_unique(collection, doc)
        state = {k: v for k, v in doc.items() if k not in ("version", "outbox", BATCH)}
        new = {**state, "version": expected_version + 1}
        if BATCH in current:  # the batch that created it: kept across updates
            new[BATCH] = current[BATCH]
        self._store(collection, new, current["outbox"] + _entries(events))
        return expected_version + 1

    async def update_many(self, collection: str, updates: list[Update]) -> set[str]:
        return await update_each(self, collection, updates)

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        for id in ids:
            old = self._data[collection].pop(id, None)
            if old is None:
                continue
            for field, index in self._index[collection].items():
                if (was := _field(old, field, _MISSING)) is not _MISSING:
                    index[_key(was)].discard(id)

    async def find(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Doc]:
        out = []
        for id in self._candidates(collection, where or {}):
            if after_id is not None and id <= after_id:
                continue
            doc = self._data[collection][id]
            if all(_field(doc, k) == v for k, v in (where or {}).items()):
                out.append(_read(doc))
                if len(out) >= limit:
                    break
        return out

    async def pending(self, collection: str, limit: int = 100) -> list[Doc]:
        docs = [d for _, d in sorted(self._data[collection].items()) if d.get("outbox")]
        return [_read(d) for d in docs[:limit]]

    async def prepare_outbox(self, collection: str) -> None:
        return None

    async def mark_sent(self, collection: str, id: str, sent: list[Doc]) -> None:
        doc = self._data[collection].get(id)
        if doc is not None:
            ids = {e["id"] for e in sent}
            doc["outbox"] = [e for e in doc["outbox"] if pickle.loads(e)["id"] not in ids]

    async def mark_sent_many(
        self,
        collection: str,
        sent: Mapping[str, list[Doc]],
        whole: Mapping[str, int] | None = None,
    ) -> None:
        for id, entries in sent.items():
            await self.mark_sent(collection, id, entries)

    async def ensure_index(self, collection: str, field: str, unique: bool = False) -> None:
        if field not in self._index[collection]:
            index: dict[Any, set[str]] = {}
            for id, doc in self._data[collection].items():
                if (value := _field(doc, field, _MISSING)) is not _MISSING:
                    index.setdefault(_key(value), set()).add(id)
            self._index[collection][field] = index
        if unique:
            self._unique[collection].add(field)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
