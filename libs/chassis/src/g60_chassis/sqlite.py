"""DocumentStore on one SQLite file per service, for the embedded all-in-one mode. Documents are
JSON text; one asyncio lock serialises writes so each is one transaction."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiosqlite

from g60_chassis.store import (
    BATCH,
    Doc,
    DuplicateKey,
    Update,
    VersionConflict,
    check_set_fields,
    insert_each,
    not_set,
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _table(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad collection name {name!r}")
    return f'"{name}"'


class SqliteDocumentStore:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._tables: set[str] = set()

    async def _conn(self, collection: str) -> aiosqlite.Connection:
        if self._db is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self._path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
        if collection not in self._tables:
            t = _table(collection)
            await self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
                " doc TEXT NOT NULL, outbox TEXT NOT NULL, pending INTEGER NOT NULL)"
            )
            await self._db.execute(
                f'CREATE INDEX IF NOT EXISTS "{collection}_pending" ON {t} (pending)'
            )
            await self._db.commit()
            self._tables.add(collection)
        return self._db

    @staticmethod
    def _row(row: Any, outbox: bool = True) -> Doc:
        doc: Doc = json.loads(row[2])
        doc["_id"], doc["version"] = row[0], row[1]
        if outbox:
            doc["outbox"] = json.loads(row[3])
        return doc

    @staticmethod
    def _state(doc: Doc) -> str:
        state = {k: v for k, v in doc.items() if k not in ("_id", "version", "outbox")}
        return json.dumps(state, ensure_ascii=False, default=str)

    async def get(self, collection: str, id: str) -> Doc | None:
        db = await self._conn(collection)
        async with db.execute(
            f"SELECT id, version, doc, outbox FROM {_table(collection)} WHERE id = ?", (id,)
        ) as cur:
            row = await cur.fetchone()
        return self._row(row) if row else None

    async def states(self, collection: str, ids: list[str]) -> list[Doc | None]:
        db, marks = await self._conn(collection), ", ".join("?" * len(ids))
        query = f"SELECT id, version, doc FROM {_table(collection)} WHERE id IN ({marks})"
        async with db.execute(query, ids) as cur:
            rows = await cur.fetchall()
        found = {r[0]: self._row(r, outbox=False) for r in rows}
        return [found.get(id) for id in ids]

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        db = await self._conn(collection)
        async with self._lock:
            try:
                await db.execute(
                    f"INSERT INTO {_table(collection)} VALUES (?, 1, ?, ?, ?)",
                    (doc["_id"], self._state(doc), json.dumps(events or []), int(bool(events))),
                )
                await db.commit()
            except aiosqlite.IntegrityError as exc:
                await db.rollback()
                raise DuplicateKey(doc["_id"], self._culprit(collection, exc)) from exc

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        if await self.update_many(collection, [(doc, expected_version, events or [])]):
            raise VersionConflict(doc["_id"])
        return expected_version + 1

    async def update_many(self, collection: str, updates: list[Update]) -> set[str]:
        """One transaction for the batch (rolled back whole on a DuplicateKey)."""
        if not updates:
            return set()
        db = await self._conn(collection)
        t = _table(collection)
        conflicts = set()
        async with self._lock:
            for doc, expected_version, events in updates:
                async with db.execute(
                    f"SELECT version, outbox, json_extract(doc, '$.{BATCH}') FROM {t} WHERE id = ?",
                    (doc["_id"],),
                ) as cur:
                    row = await cur.fetchone()
                if row is None or row[0] != expected_version:
                    conflicts.add(doc["_id"])
                    continue
                outbox = json.loads(row[1]) + (events or [])
                state = {k: v for k, v in doc.items() if k != BATCH}
                if row[2] is not None:  # the batch that created it stays (`batches.py`)
                    state[BATCH] = row[2]
                try:
                    await db.execute(
                        f"UPDATE {t} SET version = ?, doc = ?, outbox = ?, pending = ?"
                        " WHERE id = ?",
                        (
                            expected_version + 1,
                            self._state(state),
                            json.dumps(outbox),
                            int(bool(outbox)),
                            doc["_id"],
                        ),
                    )
                except aiosqlite.IntegrityError as exc:
                    await db.rollback()
                    raise DuplicateKey(doc["_id"], self._culprit(collection, exc)) from exc
            await db.commit()
        return conflicts

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
        """One transaction for the batch (rolled back whole on a DuplicateKey)."""
        check_set_fields(unless, expected)
        if not changes:
            return set()
        db = await self._conn(collection)
        t = _table(collection)
        absent, lost = set(), set()
        async with self._lock:
            for id, fields in changes.items():
                async with db.execute(
                    f"SELECT doc, version, outbox FROM {t} WHERE id = ?", (id,)
                ) as cur:
                    row = await cur.fetchone()
                if row is None:
                    absent.add(id)
                    continue
                if expected is not None and row[1] != expected[id]:
                    lost.add(id)
                    continue
                doc = json.loads(row[0])
                if unless is not None and unless in doc and doc[unless] == fields[unless]:
                    continue
                outbox = json.loads(row[2]) + ((events or {}).get(id) or [])
                try:
                    await db.execute(
                        f"UPDATE {t} SET version = version + 1, doc = ?, outbox = ?, pending = ?"
                        " WHERE id = ?",
                        (self._state({**doc, **fields}), json.dumps(outbox), int(bool(outbox)), id),
                    )
                except aiosqlite.IntegrityError as exc:
                    await db.rollback()
                    raise DuplicateKey(id, self._culprit(collection, exc)) from exc
            await db.commit()
        return not_set(absent, lost, expected, report_absent)

    async def delete_many(self, collection: str, ids: list[str]) -> None:
        if not ids:
            return
        db = await self._conn(collection)
        async with self._lock:
            await db.executemany(
                f"DELETE FROM {_table(collection)} WHERE id = ?", [(id,) for id in ids]
            )
            await db.commit()

    async def find(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Doc]:
        db = await self._conn(collection)
        clauses, params = [], []
        for key, value in (where or {}).items():
            if not _NAME.match(key):
                raise ValueError(f"bad field name {key!r}")
            if value is None:
                clauses.append(f"json_extract(doc, '$.{key}') IS NULL")
            else:
                clauses.append(f"json_extract(doc, '$.{key}') = ?")
                params.append(int(value) if isinstance(value, bool) else value)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        sql = f"SELECT id, version, doc, outbox FROM {_table(collection)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id LIMIT ?"
        async with db.execute(sql, (*params, limit)) as cur:
            return [self._row(r) for r in await cur.fetchall()]

    async def ids(self, collection: str, limit: int = 100_000) -> list[str]:
        db = await self._conn(collection)
        sql = f"SELECT id FROM {_table(collection)} ORDER BY id LIMIT ?"
        async with db.execute(sql, (limit,)) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def pending(self, collection: str, limit: int = 100) -> list[Doc]:
        db = await self._conn(collection)
        async with db.execute(
            f"SELECT id, version, doc, outbox FROM {_table(collection)} WHERE pending = 1"
            " ORDER BY id LIMIT ?",
            (limit,),
        ) as cur:
            return [self._row(r) for r in await cur.fetchall()]

    async def prepare_outbox(self, collection: str) -> None:
        return None  # the `pending` column and its index come with the table

    async def mark_sent(self, collection: str, id: str, sent_entries: list[Doc]) -> None:
        db = await self._conn(collection)
        t = _table(collection)
        async with self._lock:
            async with db.execute(f"SELECT outbox FROM {t} WHERE id = ?", (id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return
            sent = {e["id"] for e in sent_entries}
            outbox = [e for e in json.loads(row[0]) if e["id"] not in sent]
            await db.execute(
                f"UPDATE {t} SET outbox = ?, pending = ? WHERE id = ?",
                (json.dumps(outbox), int(bool(outbox)), id),
            )
            await db.commit()

    async def insert_many(self, collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        return await insert_each(self, collection, docs)

    async def mark_sent_many(
        self,
        collection: str,
        sent: Mapping[str, list[Doc]],
        whole: Mapping[str, int] | None = None,
    ) -> None:
        for id, entries in sent.items():
            await self.mark_sent(collection, id, entries)

    @staticmethod
    def _culprit(collection: str, exc: Exception) -> str:
        """The field a UNIQUE failure is about: "_id", or the one of a `<c>_<f>_unique` index."""
        found = re.search(rf"index '{re.escape(collection)}_(\w+)_unique'", str(exc))
        return found.group(1) if found else "_id"

    async def ensure_index(self, collection: str, field: str, unique: bool = False) -> None:
        if not _NAME.match(field):
            raise ValueError(f"bad field name {field!r}")
        db = await self._conn(collection)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        name = f"{collection}_{field}_unique" if unique else f"{collection}_{field}"
        async with self._lock:
            await db.execute(
                f'CREATE {kind} IF NOT EXISTS "{name}" ON {_table(collection)}'
                f" (json_extract(doc, '$.{field}'))"
            )
            await db.commit()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
