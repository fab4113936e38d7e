"""Retractions of displaced matches as field updates: the match's changed fields set and its
`retracted` event appended to its outbox in one conditional write (the version read), instead
of loading the whole match (its packed breakdowns and decisions parsed, the model validated),
dumping it again and rewriting every field. A pair that left the top k of a wide change is read
raw (`StoredMatch`): only what the decision looks at (status, acceptances) and, for the event,
its stored fields; so are all the matches of a withdrawn offer or project (`withdraw`: every
open one retracted, accepted or not, in one write). Same stored fields, same event, as
`Match.retract` and a save of it (`test_wide_offer_effects.py` holds both to a record)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from g60_chassis.aggregates import Aggregates, Outgoing
from g60_chassis.store import VersionConflict
from matching.domain.match import Match, retracted
from matching.service.ports import MatchEvents

REASON = "no longer among the proposals"
PAGE = 200  # a withdrawal reads its matches in pages of this size
ATTEMPTS = 50  # rounds of compare-and-set of a rewritten match before it gives up (as a save's)


@dataclass(frozen=True)
class StoredMatch:
    """A match as stored, not loaded: what deciding a retraction needs, and its document
    (for the event of the write)."""

    id: str
    offer_id: str
    status: str
    version: int
    accepted_by_enterprise: bool
    accepted_by_funder: bool
    expires_at: datetime | None
    score: float
    doc: Mapping[str, object]

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> StoredMatch:
        expires = doc.get("expires_at")
        return cls(
            id=doc["_id"],
            offer_id=doc["offer_id"],
            status=doc["status"],
            version=doc["version"],
            accepted_by_enterprise=bool(doc.get("accepted_by_enterprise")),
            accepted_by_funder=bool(doc.get("accepted_by_funder")),
            expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else expires,
            score=doc.get("score", 0.0),
            doc=doc,
        )


@dataclass(frozen=True)
class FieldWrite:
    """One match's field update (a retraction, a refresh: `refreshes.py`): the fields
    (JSON values), the version read, its events."""

    id: str
    fields: dict[str, Any]
    version: int
    events: Outgoing


Rewrite = Callable[[StoredMatch], FieldWrite | None]  # a match's write, from it as read again


def untouched(match: Match | StoredMatch) -> bool:
    """Proposed and accepted by neither side: the engine may take it back."""
    return match.status == "proposed" and not (
        match.accepted_by_enterprise or match.accepted_by_funder
    )


class Retractions:
    def __init__(self, matches: Aggregates[Match], events: MatchEvents) -> None:
        self.matches, self.events = matches, events

    async def read(self, ids: Iterable[str]) -> list[StoredMatch | None]:
        """The stored matches of these ids, raw, in one call (None where there is none),
        without their outboxes: the events they wait to send (a displaced match's
        `retracted`, unsent yet, was ~50 µs to unpack on the memory store, most of a read)."""
        if not (wanted := list(ids)):
            return []
        docs = await self.matches.store.states(self.matches.collection, wanted)
        return [StoredMatch.of(d) if d is not None else None for d in docs]

    async def every(self, where: Mapping[str, str]) -> list[StoredMatch]:
        """All the stored matches `where` matches, raw, read page by page."""
        store, collection = self.matches.store, self.matches.collection
        out: list[StoredMatch] = []
        after: str | None = None
        while docs := await store.find(collection, where, after_id=after, limit=PAGE):
            out += [StoredMatch.of(d) for d in docs]
            if len(docs) < PAGE:
                break
            after = str(docs[-1]["_id"])
        return out

    async def withdraw(self, where: Mapping[str, str], reason: str, now: datetime) -> None:
        """Retract every open match `where` matches (its offer or project withdrawn), accepted
        or not, as field updates in one write; those whose compare-and-set lost (written
        meanwhile) are read again and retracted if still open (`write`), as `retry_on_conflict`
        does for one match (`Lifecycle.transition`: a read, a retract and a whole save per
        match)."""

        def retract(match: StoredMatch) -> FieldWrite | None:
            return self.retract(match, now, reason)

        writes = [w for m in await self.every(where) if (w := retract(m))]
        await self.write(writes, dict.fromkeys((w.id for w in writes), retract))

    def retract(
        self, match: Match | StoredMatch, now: datetime, withdrawn: str | None = None
    ) -> FieldWrite | None:
        """The write that retracts `match`; None unless it is `untouched`, or with a
        `withdrawn` reason (its offer or project gone) unless it is open."""
        if withdrawn is None and not untouched(match):
            return None
        reason = withdrawn or REASON
        if isinstance(match, Match):
            before = match.version
            if not match.retract(reason, now):
                return None
            match.version = before + 1  # as a save would: the event says the new version
            events = self.events.match("retracted", match)
            match.version = before
            change = {k: getattr(match, k) for k in ("status", "previous_status", "reason")}
            change |= {"updated_at": match.updated_at, "expiry_day": match.expiry_day}
            return FieldWrite(match.id, to_jsonable_python(change), before, events)
        fields = retracted(match.status, match.expires_at, reason, now)
        if fields is None:
            return None
        change = to_jsonable_python(fields)
        after = {**match.doc, **change, "version": match.version + 1}
        return FieldWrite(match.id, change, match.version, self.events.stored("retracted", after))

    async def write(
        self, writes: list[FieldWrite], again: Mapping[str, Rewrite] | None = None
    ) -> None:
        """All in one store call; a lost compare-and-set fails the batch (as a lost save of
        the batch's changed matches does: its delivery is retried, reconciled again), unless
        `again` says how to write that match again (id → the write for it as read again: a
        refresh, `refreshes.py`, or a withdrawal's retraction; None: nothing left to write):
        then it is read again and written, up to `ATTEMPTS` rounds."""
        lost = await self.set(writes) if writes else set()
        for _ in range(ATTEMPTS):
            if not (retry := sorted(lost & (again or {}).keys())):
                break
            lost -= set(retry)
            redo = [w for m in await self.read(retry) if m and (w := (again or {})[m.id](m))]
            lost |= await self.set(redo) if redo else set()
        if lost:
            raise VersionConflict(", ".join(sorted(lost)))

    async def set(self, writes: list[FieldWrite]) -> set[str]:
        """One store call; the ids whose compare-and-set lost (or that are gone)."""
        return await self.matches.set_fields(
            {w.id: w.fields for w in writes},
            expected={w.id: w.version for w in writes},
            events={w.id: w.events for w in writes},
        )
