"""The document store port. Each aggregate is one document: its state, a `version` for
optimistic concurrency, and an `outbox` of events not yet published. Saving state and its events
is one single-document write, which is atomic on every backend (FerretDB has no multi-document
transactions), so an event is never lost nor published for a state that was not stored.
`Aggregates` inserts keep their events in one batch document instead (`batches.py`: written
first, as a redo record), and tag each document with it (`outbox_batch`, kept by updates)."""

from __future__ import annotations

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

    async def states(self, collection: str, ids: list[str]) -> list[Doc | None]:
        """The documents of these ids as `get` reads them, without their outbox (a writer
        that sets fields from what it read needs no pending event: none is unpacked nor sent
        over), None where there is none; in one call."""

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
        """A field update of many documents in one call: each `id → fields` sets those
        top-level fields and bumps the version (a compare-and-set writer that read before
        loses and reads again), the rest of the document as stored (its outbox too). A
        document whose field `unless` already holds the value given for it is left as it is.
        Returns the ids not stored (nothing is written for them); with `report_absent`
        False, an empty set (a store may have to look them up to name them). One
        document's write is atomic; the batch is not.
        `expected`: id → the version its writer read (a compare-and-set, as `update_many`):
        one at another version, or gone, is not written and is always named in the result.
        `events`: id → entries appended to its outbox in the same write (as `update`)."""

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

    async def ids(self, collection: str, limit: int = 100_000) -> list[str]:
        """The ids of up to `limit` documents, in order (which ones, when more are stored, is
        the store's choice); no document is read whole."""

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


def check_set_fields(unless: str | None, expected: Mapping[str, int] | None) -> None:
    """`set_fields` leaves a document alone by a field's value or by its version, not both."""
    if unless is not None and expected is not None:
        raise ValueError("set_fields: `unless` or `expected`, not both")


def not_set(
    absent: set[str], lost: set[str], expected: Mapping[str, int] | None, report_absent: bool
) -> set[str]:
    """What `set_fields` returns from the ids found absent and those at another version."""
    if expected is not None:
        return absent | lost
    return absent if report_absent else set()


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
