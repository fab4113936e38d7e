"""The MongoDB store's outbox side (a part of `MongoDocumentStore`): the relay's indexed scan of
documents whose outbox may hold events (`outbox_pending`), and the marks of sent events, in one
bulk write under the documents' locks. See `mongo.py` for why the flag and the conditions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from g60_chassis.mongo_writes import PENDING
from g60_chassis.store import Doc

MIGRATIONS = "_g60_migrations"  # markers of one-time data changes done in this database


class MongoOutbox:
    """Mixed into `MongoDocumentStore`, whose database, locks and flagged collections it uses."""

    _db: AsyncDatabase[Doc]
    _flagged: set[str]  # collections whose `outbox_pending` is indexed and set

    def _locked(
        self, collection: str, ids: Iterable[str]
    ) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def pending(self, collection: str, limit: int = 100) -> list[Doc]:
        if collection not in self._flagged:
            await self._flag_pending(collection)
        out: list[Doc] = []
        where: dict[str, Any] = {PENDING: True}
        while True:
            cursor = self._db[collection].find(where).sort("_id", ASCENDING).limit(limit)
            found = [doc async for doc in cursor]
            # a flag left up over an empty outbox (its entries pulled one by one) comes down
            stale = {str(d["_id"]): int(d["version"]) for d in found if not d.get("outbox")}
            if stale:
                await self.mark_sent_many(collection, {}, stale)
            out += [d for d in found if d.get("outbox")]
            if not stale or len(found) < limit or len(out) >= limit:
                return out[:limit]
            where = {PENDING: True, "_id": {"$gt": found[-1]["_id"]}}

    async def prepare_outbox(self, collection: str) -> None:
        # at start, before the consumers write: FerretDB's CREATE INDEX waits for the
        # table's open writes, better not mid-load
        if collection not in self._flagged:
            await self._flag_pending(collection)

    async def _flag_pending(self, collection: str) -> None:
        """Once per collection and database: index `outbox_pending`, and set it on documents
        an older release wrote without it (one scan, then never again: a marker remembers)."""
        await self._db[collection].create_index(PENDING)
        done = f"{PENDING}:{collection}"
        if await self._db[MIGRATIONS].find_one({"_id": done}) is None:
            unset = {PENDING: {"$exists": False}}
            with_events = {**unset, "outbox.0": {"$exists": True}}
            await self._db[collection].update_many(with_events, {"$set": {PENDING: True}})
            await self._db[collection].update_many(unset, {"$set": {PENDING: False}})
            with contextlib.suppress(DuplicateKeyError):
                await self._db[MIGRATIONS].insert_one({"_id": done})
        self._flagged.add(collection)

    async def mark_sent(self, collection: str, id: str, sent: list[Doc]) -> None:
        await self.mark_sent_many(collection, {id: sent})

    async def mark_sent_many(
        self,
        collection: str,
        sent: Mapping[str, list[Doc]],
        whole: Mapping[str, int] | None = None,
    ) -> None:
        # one bulk write, under the locks of all its documents (taken in one order: no
        # deadlock with another taker of several, and a single-lock writer holds no other).
        # A document whose whole outbox was sent (`whole`: its version then) is cleared with
        # its flag in one conditional write; if a write added events since (a new version),
        # its sent entries are pulled instead and the flag stays up.
        whole = whole or {}
        clears = [
            UpdateOne({"_id": k, "version": v}, {"$set": {"outbox": [], PENDING: False}})
            for k, v in whole.items()
        ]
        pulls = [
            UpdateOne({"_id": k}, {"$pullAll": {"outbox": e}})
            for k, e in sent.items()
            if e and k not in whole
        ]
        if not clears and not pulls:
            return
        keys = {*sent, *whole}
        async with self._locked(collection, keys):
            coll = self._db[collection]
            if clears:
                done = await coll.bulk_write(clears, ordered=False)
                if done.matched_count < len(clears):  # some changed since: pull their entries
                    pulls += [
                        UpdateOne({"_id": k}, {"$pullAll": {"outbox": sent[k]}})
                        for k in whole
                        if sent.get(k)
                    ]
            if pulls:
                await coll.bulk_write(pulls, ordered=False)
