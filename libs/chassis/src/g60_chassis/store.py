"""The document store port. Each aggregate is one document: its state, a `version` for
optimistic concurrency, and an `outbox` of events not yet published. Saving state and its events
is one single-document write, which is atomic on every backend (FerretDB has no multi-document
transactions), so an event is never lost nor published for a state that was not stored."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from g60_chassis.errors import Conflict

Doc = dict[str, Any]


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
        `events` to its outbox, and return the new version. VersionConflict otherwise."""

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


def _copy(value: Any) -> Any:
    """A deep copy of plain data through pickle: ~7x faster than `copy.deepcopy` on match
    documents (their breakdowns and outbox events), which dominated the memory store's cost."""
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def _read(doc: Doc) -> Doc:
    """A stored document as a reader gets it: its state copied, its outbox a new list of the
    stored entries (never changed in place: `mark_sent` builds a new list). Copying every
    entry made reads of matches cost their outbox, often larger than the match itself."""
    outbox = doc.get("outbox")
    if outbox is None:
        return _copy(doc)
    return {**_copy({k: v for k, v in doc.items() if k != "outbox"}), "outbox": list(outbox)}


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

    def _store(self, collection: str, doc: Doc) -> None:
        id = doc["_id"]
        old = self._data[collection].get(id)
        for field, index in self._index[collection].items():
            if old is not None and field in old:
                index[_key(old[field])].discard(id)
            if field in doc:
                index.setdefault(_key(doc[field]), set()).add(id)
        self._data[collection][id] = doc

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
        stored = {**_copy(doc), "version": 1, "outbox": _copy(events or [])}
        self._store(collection, stored)

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        return await insert_each(self, collection, docs)

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        current = self._data[collection].get(doc["_id"])
        if current is None or current["version"] != expected_version:
            raise VersionConflict(doc["_id"])
        self._check_unique(collection, doc)
        state = {k: v for k, v in _copy(doc).items() if k not in ("version", "outbox")}
        new = {**state, "version": expected_version + 1}
        new["outbox"] = current["outbox"] + _copy(events or [])
        self._store(collection, new)
        return expected_version + 1

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        for id in ids:
            old = self._data[collection].pop(id, None)
            if old is None:
                continue
            for field, index in self._index[collection].items():
                if field in old:
                    index[_key(old[field])].discard(id)

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
            if all(doc.get(k) == v for k, v in (where or {}).items()):
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
            doc["outbox"] = [e for e in doc["outbox"] if e["id"] not in ids]

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
                if field in doc:
                    index.setdefault(_key(doc[field]), set()).add(id)
            self._index[collection][field] = index
        if unique:
            self._unique[collection].add(field)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
