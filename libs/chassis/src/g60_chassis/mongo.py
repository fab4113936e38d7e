"""DocumentStore on MongoDB (or any MongoDB-wire server such as FerretDB) via PyMongo's
AsyncMongoClient. Only single-document operations: no replica set is needed.

On MongoDB a filtered update (`{"_id": id, "version": n}`) is an atomic compare-and-set. FerretDB
1.24 (on PostgreSQL as on SQLite) is not atomic there: concurrent filtered updates of one
document all "match" and overwrite each other (measured on PostgreSQL: 20 concurrent CAS
increments kept 2 to 4; 50 conditional `$inc` on `remaining >= 1` matched 36 to 50 of 5). So
writes to one document are also serialised in this process: with one process per writer
(funding owns capacity) that makes CAS correct on FerretDB too, and costs nothing on MongoDB.
FerretDB also ignores `$pull` with a condition, so sent events are removed with `$pullAll` of
the exact entries.

Each document also holds `outbox_pending` (true while its outbox may hold events), indexed, so
the relay's scan is an indexed find, not a read of every document (FerretDB evaluates a filter
on an array element itself: ~0.3 s over 5,000 documents, on every scan). A mark that sent the
whole outbox as read at version v clears both in one write, on the condition that the version
is still v (events are only ever added by a write that bumps the version).

The changes it writes, the check naming a lost write of a bulk write, and the reading of the
errors MongoDB and FerretDB answer with are in `mongo_writes`; the relay's scan and marks in
`mongo_outbox`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, DeleteOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.results import BulkWriteResult

from g60_chassis.counters import STORE_LOCK_WAITS, StoreCommands
from g60_chassis.mongo_outbox import MongoOutbox
from g60_chassis.mongo_writes import PENDING, change, culprit, unique_broken, written
from g60_chassis.mongo_writes import unavailable as unavailable  # the runtime's outage check
from g60_chassis.store import Doc, DuplicateKey, Update, VersionConflict, check_set_fields


class MongoDocumentStore(MongoOutbox):
    def __init__(
        self, url: str, database: str, *, timeout_ms: int = 5000, max_pool: int = 16
    ) -> None:
        # A small pool: FerretDB 1.24 on PostgreSQL deadlocks for good when concurrent updates
        # hold every connection of its own PostgreSQL pool (100 concurrent update_one against
        # its default pool of 50 did); 16 per client is also faster than 100 (1,000 concurrent
        # updates: 1.2 s against 2.0 s).
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            tz_aware=True,
            maxPoolSize=max_pool,
            event_listeners=[StoreCommands()],  # commands counted on `/metrics`
        )
        self._db = self._client[database]
        self._stripes = [asyncio.Lock() for _ in range(256)]  # bounded, unlike a lock per id
        self._unique: dict[str, list[str]] = {}  # collection → its unique fields
        self._flagged: set[str] = set()  # collections whose `outbox_pending` is indexed and set

    def _lock(self, collection: str, id: str) -> asyncio.Lock:
        return self._stripes[hash((collection, id)) % len(self._stripes)]

    @contextlib.asynccontextmanager
    async def _locked(self, collection: str, ids: Iterable[str]) -> AsyncIterator[None]:
        """The locks of all these documents, taken in one order (no deadlock with another
        taker of several; a single-lock writer holds no other)."""
        locks = {id(self._lock(collection, k)): self._lock(collection, k) for k in ids}
        async with contextlib.AsyncExitStack() as stack:
            t = time.perf_counter()
            for _, lock in sorted(locks.items()):
                await stack.enter_async_context(lock)
            STORE_LOCK_WAITS.labels(collection).inc(time.perf_counter() - t)
            yield

    async def get(self, collection: str, id: str) -> Doc | None:
        return await self._db[collection].find_one({"_id": id})

    async def states(self, collection: str, ids: list[str]) -> list[Doc | None]:
        # one read per id, together: FerretDB 1.24 pushes `_id: {$in}` down to nothing (a scan)
        find, without = self._db[collection].find_one, {"outbox": 0}
        return list(await asyncio.gather(*(find({"_id": id}, without) for id in ids)))

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        row = {**doc, "version": 1, "outbox": events or [], PENDING: bool(events)}
        try:
            await self._db[collection].insert_one(row)
        except DuplicateKeyError as exc:
            raise DuplicateKey(doc["_id"], await self._culprit(collection, doc, exc)) from exc

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        if not docs:
            return set()
        rows = [{**doc, "version": 1, "outbox": e, PENDING: bool(e)} for doc, e in docs]
        try:
            await self._db[collection].insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            existed = set()
            for error in exc.details.get("writeErrors", []):
                if error.get("code") != 11000:
                    raise
                doc = rows[error["index"]]
                if self._unique.get(collection):  # which index? ask as `insert` does
                    failure = DuplicateKeyError(error.get("errmsg", ""), 11000, error)
                    field = await self._culprit(collection, doc, failure)
                    if field != "_id":
                        raise DuplicateKey(doc["_id"], field) from exc
                existed.add(doc["_id"])
            return existed
        return set()

    def _unique_broken(self, collection: str, doc: Doc, exc: OperationFailure) -> None:
        """A unique index broken by an update, as FerretDB reports it: raised as DuplicateKey."""
        if duplicate := unique_broken(exc, doc["_id"], self._unique.get(collection, [])):
            raise duplicate from exc

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        write = change(doc, expected_version, events)
        async with self._lock(collection, doc["_id"]):
            try:
                result = await self._db[collection].update_one(
                    {"_id": doc["_id"], "version": expected_version}, write
                )
            except DuplicateKeyError as exc:
                field = await self._culprit(collection, doc, exc, id_known=True)
                raise DuplicateKey(doc["_id"], field) from exc
            except OperationFailure as exc:
                self._unique_broken(collection, doc, exc)
                raise
        if result.matched_count != 1:
            raise VersionConflict(doc["_id"])
        return expected_version + 1

    async def _bulk_update(
        self, collection: str, writes: list[UpdateOne], docs: list[Doc]
    ) -> BulkWriteResult:
        """`writes` in one unordered bulk write (the caller holds their locks); a unique index
        refusing a value of `docs` (aligned with `writes`: each the fields its write sets, with
        its `_id`) raised as DuplicateKey naming the field, however the server reports it."""
        try:
            return await self._db[collection].bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            error = (exc.details.get("writeErrors") or [{}])[0]
            doc = docs[error.get("index", 0)]
            if error.get("code") == 11000:
                failure = DuplicateKeyError(error.get("errmsg", ""), 11000, error)
                field = await self._culprit(collection, doc, failure, id_known=True)
                raise DuplicateKey(doc["_id"], field) from exc
            failed = OperationFailure(error.get("errmsg", ""), error.get("code"))
            self._unique_broken(collection, doc, failed)
            raise
        except OperationFailure as exc:
            self._unique_broken(collection, docs[0], exc)
            raise

    async def update_many(self, collection: str, updates: list[Update]) -> set[str]:
        """One bulk write of compare-and-sets, under the locks of all its documents (taken in
        one order, as `mark_sent_many` takes them). The bulk result counts matches but does
        not say which: if some missed, the versions are read back (under the locks, no write
        of this process moved them since) and those not at the new version are the conflicts."""
        if not updates:
            return set()
        ids = [doc["_id"] for doc, _, _ in updates]
        coll = self._db[collection]
        writes = [
            UpdateOne({"_id": doc["_id"], "version": v}, change(doc, v, events))
            for doc, v, events in updates
        ]
        async with self._locked(collection, ids):
            done = await self._bulk_update(collection, writes, [doc for doc, _, _ in updates])
            if done.matched_count == len(writes):
                return set()
            # one get per document (FerretDB 1.24 scans for `_id: {$in: ...}`, see delete_many)
            found = await asyncio.gather(*(coll.find_one({"_id": k}) for k in ids))
        return {
            doc["_id"]
            for (doc, v, events), now in zip(updates, found, strict=True)
            if not written(now, doc, v, events)
        }

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
        """One bulk write of field updates (`$set`, `$inc` of the version, `$push` of the
        events: no read, and no rewrite of the caller's copy of the whole document), under the
        documents' locks. The bulk result counts matches without naming them: if some missed
        (absent, moved, or left by `unless`) and the caller asks, each is read back (one get
        per document: FerretDB 1.24 scans for `$in`)."""
        check_set_fields(unless, expected)
        if not changes:
            return set()
        coll = self._db[collection]
        writes = [self._field_write(k, f, unless, expected, events) for k, f in changes.items()]
        async with self._locked(collection, changes):
            docs = [{**f, "_id": k} for k, f in changes.items()]
            done = await self._bulk_update(collection, writes, docs)
            if done.matched_count == len(writes) or not (report_absent or expected):
                return set()
            shown = None if expected else {"_id": 1}
            found = await asyncio.gather(*(coll.find_one({"_id": k}, shown) for k in changes))
        if expected is None:
            return {k for k, doc in zip(changes, found, strict=True) if doc is None}
        return {
            doc["_id"]
            for doc, now in zip(docs, found, strict=True)
            if not written(now, doc, expected[doc["_id"]], (events or {}).get(doc["_id"]) or [])
        }

    @staticmethod
    def _field_write(
        id: str,
        fields: Doc,
        unless: str | None,
        expected: Mapping[str, int] | None,
        events: Mapping[str, list[Doc]] | None,
    ) -> UpdateOne:
        match: Doc = {"_id": id}
        if unless is not None:
            match[unless] = {"$ne": fields[unless]}
        if expected is not None:
            match["version"] = expected[id]
        update: Doc = {"$set": dict(fields), "$inc": {"version": 1}}
        if entries := (events or {}).get(id):
            update["$push"] = {"outbox": {"$each": entries}}
            update["$set"][PENDING] = True
        return UpdateOne(match, update)

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        # one DeleteOne per id in one bulk write, not `_id: {$in: ids}`: FerretDB 1.24 does
        # not push `$in` down to PostgreSQL (a scan per call: 341 deletes/s in batches of 32
        # against 1,780/s, measured over a 1,000-document collection)
        if not ids:
            return
        async with self._locked(collection, ids):
            await self._db[collection].bulk_write(
                [DeleteOne({"_id": k}) for k in ids], ordered=False
            )

    async def find(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Doc]:
        query: dict[str, Any] = dict(where or {})
        if after_id is not None:
            query["_id"] = {"$gt": after_id}
        cursor = self._db[collection].find(query).sort("_id", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def ids(self, collection: str, limit: int = 100_000) -> list[str]:
        # no sort asked: FerretDB 1.24 pushes a limit down only without one (with a sort or a
        # `$gt` it reads the whole table for every page); the projection spares the client
        cursor = self._db[collection].find({}, {"_id": 1}).limit(limit)
        return sorted([str(d["_id"]) async for d in cursor])

    async def ensure_index(self, collection: str, field: str, unique: bool = False) -> None:
        # MongoDB uses it; FerretDB 1.24 on PostgreSQL pushes equality filters on top-level
        # fields down to SQL as `@>`, which its btree cannot answer: the local cluster adds a
        # GIN twin that can (deploy/local/postgres/ferretdb-gin.sql); filters on array
        # elements are not pushed down (~0.3 s over 5,000 documents).
        # A unique one has its own name, so an older plain index on the field does not shadow
        # it (FerretDB 1.24 has no partial indexes: a unique field is one every document holds).
        if unique:
            # a plain index on the same key (an older release's) is replaced: MongoDB and
            # FerretDB refuse two indexes of one key pattern
            async for index in await self._db[collection].list_indexes():
                if dict(index["key"]) == {field: 1} and not index.get("unique"):
                    await self._db[collection].drop_index(index["name"])
            await self._db[collection].create_index(field, name=f"{field}_unique", unique=True)
            if field not in self._unique.setdefault(collection, []):
                self._unique[collection].append(field)
        else:
            await self._db[collection].create_index(field)

    async def _culprit(
        self, collection: str, doc: Doc, exc: DuplicateKeyError, id_known: bool = False
    ) -> str:
        unique = self._unique.get(collection, [])
        return await culprit(self._db[collection], doc, exc, unique, id_known)

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()
