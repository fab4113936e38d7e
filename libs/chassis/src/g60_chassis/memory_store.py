"""The memory store: the `DocumentStore` port on dicts, the fake for unit tests and the store
the matching service's benchmarks run on."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from g60_chassis import memory_packed as mp
from g60_chassis.store import (
    BATCH,
    Doc,
    DuplicateKey,
    Update,
    VersionConflict,
    check_set_fields,
    not_set,
    update_each,
)


class MemoryDocumentStore:
    """A dict-backed store with the same semantics; the fake for unit tests. Like the real
    stores, `ensure_index` makes `find` on that field cost its hits, not the collection (the
    matching service's benchmarks run on this store: a scan of every match per project made
    an offer event take seconds at 100,000 needs)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Doc]] = defaultdict(dict)
        self._unique: dict[str, set[str]] = defaultdict(set)
        # collection → field → value → ids holding it (a dict of ids to None, not a set: one
        # of only strings is not tracked by the garbage collector, a set always is)
        self._index: dict[str, dict[str, dict[Any, dict[str, None]]]] = defaultdict(dict)

    def _check_unique(self, collection: str, doc: Doc) -> None:
        for field in self._unique[collection]:
            value = doc.get(field)
            if value is None:
                continue
            holders = self._index[collection][field].get(mp.key(value), {})
            if holders.keys() - {doc["_id"]}:
                raise DuplicateKey(doc["_id"], field)

    def _store(
        self, collection: str, doc: Doc, outbox: mp.Outbox, version: int | None = None
    ) -> None:
        """Keep `doc` (a plain document, not kept itself) with this outbox (and `version`, if
        given, as its version)."""
        id = doc["_id"]
        old = self._data[collection].get(id)
        for field, index in self._index[collection].items():
            if old is not None and (was := mp.field(old, field, mp.MISSING)) is not mp.MISSING:
                index[mp.key(was)].pop(id, None)
            value = (
                version
                if field == "version" and version is not None
                else doc.get(field, mp.MISSING)
            )
            if value is not mp.MISSING:
                index.setdefault(mp.key(value), {})[id] = None
        self._data[collection][id] = mp.pack(doc, outbox, version)

    def _candidates(self, collection: str, where: Mapping[str, Any]) -> list[str]:
        indexes = self._index[collection]
        hits: list[dict[str, None]] = [  # a missing field equals None: no index holds it
            indexes[k].get(mp.key(v), {})
            for k, v in where.items()
            if k in indexes and v is not None
        ]
        if not hits:
            return sorted(self._data[collection])
        fewest = min(hits, key=len)
        return sorted(fewest)

    async def get(self, collection: str, id: str) -> Doc | None:
        doc = self._data[collection].get(id)
        return mp.read(doc) if doc is not None else None

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        if doc["_id"] in self._data[collection]:
            raise DuplicateKey(doc["_id"])
        self._check_unique(collection, doc)
        self._store(collection, doc, mp.entries(events), version=1)

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        """`insert` of each in turn, in one call (no coroutine per document): an id stored
        already (or twice in `docs`) is left as it was and returned; a clash under another
        unique index raises, the documents before it inserted (as `insert_each`)."""
        existed = set()
        data = self._data[collection]
        for doc, events in docs:
            if doc["_id"] in data:
                existed.add(doc["_id"])
                continue
            if self._unique[collection]:
                self._check_unique(collection, doc)
            self._store(collection, doc, mp.entries(events), version=1)
        return existed

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
        self._store(collection, new, current["outbox"] + mp.entries(events))
        return expected_version + 1

    async def update_many(self, collection: str, updates: list[Update]) -> set[str]:
        return await update_each(self, collection, updates)

    async def set_fields(
        self,
        collection: str,
        changes: Mapping[str, Doc],
        unless: str | None = None,
        report_absent: bool = True,
        *,
        expected: Mapping[str, int] | None = None,
        events: Mapping[str, list[Doc]] | None = None,
    ) -> set[str]:
        check_set_fields(unless, expected)
        absent, lost = set(), set()
        for id, fields in changes.items():
            current = self._data[collection].get(id)
            if current is None:
                absent.add(id)
                continue
            if expected is not None and current["version"] != expected[id]:
                lost.add(id)
                continue
            if unless is not None and mp.field(current, unless, mp.MISSING) == fields[unless]:
                continue
            self._check_unique(collection, {**fields, "_id": id})
            outbox = current["outbox"] + mp.entries(events.get(id) if events else None)
            self._set(collection, id, current, fields, outbox)
        return not_set(absent, lost, expected, report_absent)

    def _set(self, collection: str, id: str, current: Doc, fields: Doc, outbox: mp.Outbox) -> None:
        """`fields` set on the stored entry `current`, its version bumped. Plain values that
        were plain go in a copy of the entry as they are (the rest of it shared: no unpickle
        and repack of the whole document), the indexes of those fields moved; anything nested
        takes the whole document's way (`_store`)."""
        nested = current[mp.NESTED]
        plain = (
            isinstance(v, mp.ATOMIC) and f"\x00{k}\x00" not in nested for k, v in fields.items()
        )
        if not all(plain):
            doc = mp.read(current)
            del doc["outbox"]
            self._store(collection, {**doc, **fields, "version": current["version"] + 1}, outbox)
            return
        indexes = self._index[collection]
        for k, v in fields.items():
            if (index := indexes.get(k)) is not None:
                if k in current:
                    index[mp.key(current[k])].pop(id, None)
                index.setdefault(mp.key(v), {})[id] = None
        new = {**current, **fields, "version": current["version"] + 1}
        if (index := indexes.get("version")) is not None:
            index[mp.key(current["version"])].pop(id, None)
            index.setdefault(new["version"], {})[id] = None
        new["outbox"] = outbox
        self._data[collection][id] = new

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        for id in ids:
            old = self._data[collection].pop(id, None)
            if old is None:
                continue
            for field, index in self._index[collection].items():
                if (was := mp.field(old, field, mp.MISSING)) is not mp.MISSING:
                    index[mp.key(was)].pop(id, None)

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
            if all(mp.field(doc, k) == v for k, v in (where or {}).items()):
                out.append(mp.read(doc))
                if len(out) >= limit:
                    break
        return out

    async def ids(self, collection: str, limit: int = 100_000) -> list[str]:
        return sorted(self._data[collection])[:limit]

    async def pending(self, collection: str, limit: int = 100) -> list[Doc]:
        docs = [d for _, d in sorted(self._data[collection].items()) if d.get("outbox")]
        return [mp.read(d) for d in docs[:limit]]

    async def prepare_outbox(self, collection: str) -> None:
        return None

    async def mark_sent(self, collection: str, id: str, sent: list[Doc]) -> None:
        doc = self._data[collection].get(id)
        if doc is not None:
            ids = {e["id"] for e in sent}
            # a new entry, not the old one changed: one that held a non-empty outbox (a tuple
            # is tracked until a collection sees it) stays tracked, a new one of atomics is not
            kept = {k: v for k, v in doc.items() if k != "outbox"}
            kept["outbox"] = tuple(e for e in doc["outbox"] if pickle.loads(e)["id"] not in ids)
            self._data[collection][id] = kept

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
            index: dict[Any, dict[str, None]] = {}
            for id, doc in self._data[collection].items():
                if (value := mp.field(doc, field, mp.MISSING)) is not mp.MISSING:
                    index.setdefault(mp.key(value), {})[id] = None
            self._index[collection][field] = index
        if unique:
            self._unique[collection].add(field)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def states(self, collection: str, ids: list[str]) -> list[Doc | None]:
        data = self._data[collection]
        return [mp.read(d, outbox=False) if (d := data.get(id)) is not None else None for id in ids]
