"""What the MongoDB store writes and how it reads a refused or uncounted write: the change of a
compare-and-set, the check that names a lost one in a bulk write, and the mapping of the
errors MongoDB and FerretDB 1.24 answer with (a broken unique index, an unreachable server)."""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from g60_chassis.store import BATCH, Doc, DuplicateKey

PENDING = "outbox_pending"  # a top-level flag: the outbox may hold events (indexed)
_KEPT = ("_id", "version", "outbox", PENDING, BATCH)  # the store's fields, not the caller's

_UNIQUE_BROKEN = re.compile(
    r"UNIQUE constraint failed: index '\w*?_(\w+)_unique'"  # SQLite
    r'|unique constraint "\w*?_(\w+)_unique_[0-9a-f]+_idx"'  # PostgreSQL (SQLSTATE 23505)
)


def change(doc: Doc, expected_version: int, events: list[Doc] | None) -> dict[str, Any]:
    """The update of a compare-and-set of `doc` read at `expected_version`: its state, the next
    version, and its events pushed onto the outbox (flagged pending)."""
    state = {k: v for k, v in doc.items() if k not in _KEPT}
    out: dict[str, Any] = {"$set": {**state, "version": expected_version + 1}}
    if events:
        out["$push"] = {"outbox": {"$each": events}}
        out["$set"][PENDING] = True
    return out


def written(stored: Doc | None, doc: Doc, expected_version: int, events: list[Doc]) -> bool:
    """Whether `stored` is what an update of `doc` read at `expected_version` wrote (a bulk
    write counts its matches without naming them): the version after it, our state, and our
    events (their ids are unique) in the outbox. An identical write by someone else reads as
    ours; nothing tells the two apart and both leave the same state."""
    if stored is None or stored.get("version") != expected_version + 1:
        return False
    if any(stored.get(k) != v for k, v in doc.items() if k not in _KEPT):
        return False
    sent = {e.get("id") for e in stored.get("outbox", [])}
    return all(e.get("id") in sent for e in events)


def unavailable(exc: BaseException) -> bool:
    """The server (or, behind FerretDB, PostgreSQL) cannot be reached: connection errors and
    timeouts, and the server's InternalError (code 1): FerretDB answers with it whenever its
    PostgreSQL fails under a query ("failed to connect", a connection closed mid-read while
    PostgreSQL shuts down). Bad data fails in the handler (validation), not with code 1."""
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, timeouts, server selection
        return True
    if isinstance(exc, OperationFailure) and _UNIQUE_BROKEN.search(str(exc)):
        return False  # a unique index refused the write: the data's fault, not an outage
    return isinstance(exc, OperationFailure) and exc.code == 1


def unique_broken(exc: OperationFailure, id: str, unique: list[str]) -> DuplicateKey | None:
    """FerretDB 1.24 reports a unique index broken by an update as an internal error
    (code 1) naming its backend's index: `<collection>_<hash>_<field>_unique` on SQLite,
    `<collection>_<hash>_<field>_unique_<hash>_idx` on PostgreSQL: read as DuplicateKey on
    the unique field (of `unique`) it names; None when the error is something else."""
    found = _UNIQUE_BROKEN.search(str(exc))
    if found is None:
        return None
    named = found.group(1) or found.group(2)
    return DuplicateKey(id, next((f for f in unique if named.endswith(f)), named))


async def culprit(
    coll: AsyncCollection[Doc],
    doc: Doc,
    exc: DuplicateKeyError,
    unique: list[str],
    id_known: bool = False,
) -> str:
    """The field a duplicate-key error is about. MongoDB names the index (`keyPattern`);
    FerretDB 1.24 does not, so then: "_id" if that id is taken, else the unique field (of
    `unique`) whose value another document holds."""
    pattern = (exc.details or {}).get("keyPattern")
    if isinstance(pattern, dict) and pattern:
        return str(next(iter(pattern)))
    if not id_known and await coll.find_one({"_id": doc["_id"]}, {"_id": 1}):
        return "_id"
    for field in unique:
        if await coll.find_one({field: doc.get(field), "_id": {"$ne": doc["_id"]}}, {"_id": 1}):
            return field
    return "_id"
