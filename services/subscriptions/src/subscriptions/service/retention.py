"""Retention of the delivery log: a delivery (its message, its attempt log, its schedule entry
if any) is deleted once its message is older than `keep` (30 days by default, like the
retention window partners know from hosted webhook services). Without it the log grows with
every event forever.

The pass reads whole days (`Message.day`, indexed; equality is what FerretDB 1.24 pushes down
to PostgreSQL) from the first day not yet purged up to the last day entirely past `keep`,
and remembers that day in one small document. Within a day it deletes the attempt log and the
schedule entries first and the messages last: a crash in between leaves messages whose next
pass finishes them, never an attempt log without its message. Deleting is idempotent, so two
replicas running the pass at once do no harm.

Messages stored before they carried a day (older releases) are read once, page by page, on
the first pass: old enough ones are deleted, the others get their day."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.store import DocumentStore, VersionConflict
from g60_chassis.tasks import cancel, every
from subscriptions.domain.records import Message, day_of
from subscriptions.service.journal import DeliveryJournal

log = logging.getLogger(__name__)

STATE = "delivery_retention"
PAGE = 500


class RetentionState(BaseModel):
    id: str = "retention"
    since: str  # the first day not purged yet
    undated_done: bool = False  # messages of older releases given their day
    version: int = 0


class Retention:
    def __init__(
        self,
        journal: DeliveryJournal,
        store: DocumentStore,
        keep: timedelta,
        clock: Callable[[], datetime],
        every_s: float = 3600.0,
    ) -> None:
        self._journal, self._keep, self._clock, self._every = journal, keep, clock, every_s
        self._states = Aggregates(store, STATE, RetentionState)
        self._task: asyncio.Task[None] | None = None
        self.purged = 0

    async def start(self) -> None:
        loop = every(self._every, self.run, "webhook log retention")
        self._task = asyncio.create_task(loop, name="webhook-retention")

    async def stop(self) -> None:
        await cancel(self._task)

    async def run(self) -> int:
        """One pass; the number of deliveries deleted."""
        cutoff = self._clock() - self._keep
        state = await self._states.get("retention")
        if state is None:
            state = await self._states.add(RetentionState(since=day_of(self._clock())))
        purged = 0
        if not state.undated_done:
            deleted, oldest = await self._undated(cutoff)
            purged += deleted
            state.since = min(state.since, oldest or state.since)  # from the oldest dated
            state.undated_done = True
            state = await self._states.save(state)
        day, last = date.fromisoformat(state.since), (cutoff - timedelta(days=1)).date()
        while day <= last:  # whole days only: `last` ended before the cutoff
            purged += await self._day(day.isoformat())
            day += timedelta(days=1)
            state.since = day.isoformat()
            try:
                state = await self._states.save(state)
            except VersionConflict:  # another replica's pass got there first
                state = await self._states.get("retention") or state
                day = max(day, date.fromisoformat(state.since))
        if purged:
            log.info("webhook log retention: %d deliveries older than %s deleted", purged, cutoff)
        self.purged += purged
        return purged

    async def _day(self, day: str) -> int:
        purged = 0
        while batch := (await self._journal.messages.list({"day": day}, None, PAGE))[0]:
            await self._delete(batch)
            purged += len(batch)
        return purged

    async def _undated(self, cutoff: datetime) -> tuple[int, str | None]:
        """Deleted, and the oldest day given to a message."""
        old: builtins.list[Message] = []
        oldest: str | None = None
        cursor: str | None = None
        while True:
            page, cursor = await self._journal.messages.list(None, cursor, PAGE)
            for message in page:
                if message.day is not None:
                    continue
                if message.created_at < cutoff:
                    old.append(message)
                else:
                    await self._date(message)
                    oldest = min(oldest or "9999", day_of(message.created_at))
            if cursor is None:
                break
        for start in range(0, len(old), PAGE):
            await self._delete(old[start : start + PAGE])
        return len(old), oldest

    async def _date(self, message: Message) -> None:
        async def once() -> None:
            stored = await self._journal.messages.get(message.id)
            if stored is not None and stored.day is None:
                stored.day = day_of(stored.created_at)
                await self._journal.messages.save(stored)

        message.day = day_of(message.created_at)
        try:
            await self._journal.messages.save(message)
        except VersionConflict:  # the rescan moved it meanwhile: read it again
            await retry_on_conflict(once)

    async def _delete(self, messages: builtins.list[Message]) -> None:
        ids = [m.id for m in messages]
        logged = await asyncio.gather(*(self._journal.log.every({"delivery_id": id}) for id in ids))
        await self._journal.log.remove_many([e.id for entries in logged for e in entries])
        await self._journal.schedule.remove_many(ids)
        await self._journal.messages.remove_many(ids)
