"""The deliveries' store: messages, the schedule of the pending ones, and the attempt log
(`domain/records.py` says why three kinds of documents). Every use case and the dispatcher
go through it; it hands out `Delivery` values, assembled from those documents."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

from g60_chassis.aggregates import Aggregates, AlreadyExists, encode_cursor, retry_on_conflict
from g60_chassis.store import DocumentStore, VersionConflict
from subscriptions.domain.delivery import Delivery, DeliveryStatus, RetryRules, SendResult
from subscriptions.domain.records import (
    LEGACY,
    MOVED,
    Logged,
    Message,
    Scheduled,
    logged_of,
    moved,
    split,
    view,
)
from subscriptions.service.outcomes import OutcomeWriter

MESSAGES, SCHEDULE, LOG = "deliveries", "delivery_schedule", "delivery_attempts"
INDEXES = [
    (MESSAGES, "endpoint_id"),
    (MESSAGES, "status"),  # the first layout's pending documents, moved by the rescan
    (MESSAGES, "day"),  # the retention's reads
    (SCHEDULE, "endpoint_id"),
    (LOG, "delivery_id"),
]


class DeliveryJournal:
    def __init__(self, store: DocumentStore) -> None:
        self.messages = Aggregates(store, MESSAGES, Message)
        self.schedule = Aggregates(store, SCHEDULE, Scheduled)
        self.log = Aggregates(store, LOG, Logged)
        self.writer = OutcomeWriter(self.log, self.schedule)
        self._last_seq = 0

    def _seq(self) -> int:
        self._last_seq = max(self._last_seq + 1, time.time_ns())
        return self._last_seq

    # writes ----------------------------------------------------------------------------------
    async def add(self, delivery: Delivery) -> bool:
        """Store a new pending delivery: its message, then its schedule entry. False when
        the message was stored before (a redelivered event); a schedule entry missing then
        (a crash between the two writes) is made now."""
        message, entry = split(delivery)
        try:
            await self.messages.add(message)
        except AlreadyExists:
            await self._repair(entry)
            return False
        delivery.version = (await self.schedule.add(entry)).version
        return True

    async def add_many(self, deliveries: list[Delivery]) -> list[bool]:
        """`add` for many in two store calls (one per collection): whether each is new."""
        pairs = [split(d) for d in deliveries]
        existed = await self.messages.add_many([m for m, _ in pairs])
        fresh = [(d, s) for d, (m, s) in zip(deliveries, pairs, strict=True) if m.id not in existed]
        await self.schedule.add_many([s for _, s in fresh])
        for delivery, entry in fresh:
            delivery.version = entry.version
        for message, entry in pairs:
            if message.id in existed:
                await self._repair(entry)
        return [m.id not in existed for m, _ in pairs]

    async def _repair(self, entry: Scheduled) -> None:
        stored = await self.messages.get(entry.id)
        if stored is None or stored.status is not None:  # a first-layout one: as it says
            return
        if await self.schedule.get(entry.id) is not None or await self._logged(entry.id):
            return
        entry.lease_until = None
        with contextlib.suppress(AlreadyExists):
            await self.schedule.add(entry)

    async def claim(self, delivery: Delivery, now: datetime, rules: RetryRules) -> Delivery:
        """Lease it for one attempt (compare-and-set: VersionConflict if it changed)."""
        entry = await self.schedule.get(delivery.id)
        if entry is None or entry.version != delivery.version:
            raise VersionConflict(delivery.id)
        delivery.claim(now, rules)
        entry.lease_until, entry.updated_at = delivery.lease_until, now
        delivery.version = (await self.schedule.save(entry)).version
        return delivery

    async def record(
        self, delivery: Delivery, result: SendResult, now: datetime, rules: RetryRules
    ) -> Delivery | None:
        """An attempt's outcome: logged, and the schedule entry deleted or moved on. The
        delivery as stored if still pending (None: it is not, or someone else moved it)."""
        delivery.record(result, now, rules)
        return await self._settle(delivery)

    async def abandon(self, delivery: Delivery, reason: str, now: datetime) -> None:
        delivery.abandon(reason, now)
        await self._settle(delivery)

    async def _settle(self, delivery: Delivery) -> Delivery | None:
        try:
            return await self.writer.write(delivery, logged_of(delivery, self._seq()))
        except VersionConflict:  # the entry changed meanwhile (another replica's claim)
            pass

        async def again() -> Delivery | None:
            entry = await self.schedule.get(delivery.id)
            if entry is None:
                return None
            entry.next_attempt_at = delivery.next_attempt_at or entry.next_attempt_at
            entry.lease_until, entry.tries = None, delivery.tries
            delivery.version = (await self.schedule.save(entry)).version
            return delivery

        if delivery.status != "pending":
            await self.schedule.remove_many([delivery.id])
            return None
        settled: Delivery | None = await retry_on_conflict(again)
        return settled

    async def again(self, id: str, now: datetime) -> bool:
        """Pending again, due now, the schedule restarted (manual retry, replay). False when
        it is pending already."""
        message = await self.messages.get(id)
        if message is None:
            return False
        entry = Scheduled(
            id=id,
            endpoint_id=message.endpoint_id,
            subject=message.subject,
            seq=message.seq,
            next_attempt_at=now,
            updated_at=now,
        )
        try:
            await self.schedule.add(entry)
        except AlreadyExists:
            return False
        if message.status in LEGACY:  # its own state is history now
            await self._move(message)
        return True

    async def _move(self, message: Message) -> None:
        message.status = MOVED
        with contextlib.suppress(VersionConflict):
            await self.messages.save(message)

    # reads -----------------------------------------------------------------------------------
    async def _logged(self, id: str) -> list[Logged]:
        return await self.log.every({"delivery_id": id})

    async def working(self, id: str) -> Delivery | None:
        """The delivery to attempt (no log read): None unless it is pending."""
        entry = await self.schedule.get(id)
        if entry is None:
            return None
        message = await self.messages.get(id)
        return None if message is None else view(message, entry, [])

    async def get(self, id: str) -> Delivery | None:
        message = await self.messages.get(id)
        return None if message is None else await self._view(message)

    async def _view(self, message: Message) -> Delivery:
        entry, logged = await asyncio.gather(
            self.schedule.get(message.id), self._logged(message.id)
        )
        return view(message, entry, logged)

    async def pending(self) -> list[Scheduled]:
        """Every schedule entry; first-layout pending deliveries are moved into the schedule
        first (once: their status then reads "moved")."""
        for message in await self.messages.every({"status": "pending"}):
            with contextlib.suppress(AlreadyExists):
                await self.schedule.add(moved(message))
            await self._move(message)
        # pages of 5,000: FerretDB 1.24 sorts by _id itself, reading the whole collection for
        # every page (pages of 500 over a backlog of 2,000: four reads of 0.9 s each)
        return await self.schedule.every(page=5000)

    async def pending_of(self, endpoint_id: str) -> int:
        return len(await self.schedule.every({"endpoint_id": endpoint_id}))

    async def page(
        self, endpoint_id: str, status: DeliveryStatus | None, cursor: str | None, limit: int
    ) -> tuple[list[Delivery], str | None]:
        """The endpoint's log in id (time) order, optionally only deliveries in `status`."""
        if status is None:
            messages, next_cursor = await self.messages.list(
                {"endpoint_id": endpoint_id}, cursor, limit
            )
            return list(await asyncio.gather(*(self._view(m) for m in messages))), next_cursor
        if status == "pending":
            entries, next_cursor = await self.schedule.list(
                {"endpoint_id": endpoint_id}, cursor, limit
            )
            found = await asyncio.gather(*(self.get(e.id) for e in entries))
            return [d for d in found if d is not None], next_cursor
        out: list[Delivery] = []  # delivered / failed: read the log, keep those in `status`
        while True:
            messages, cursor = await self.messages.list(
                {"endpoint_id": endpoint_id}, cursor, max(limit, 100)
            )
            for d in await asyncio.gather(*(self._view(m) for m in messages)):
                if d.status == status:
                    out.append(d)
                    if len(out) > limit:
                        return out[:limit], encode_cursor(out[limit - 1].id)
            if cursor is None:
                return out, None

    async def every(self, endpoint_id: str, status: DeliveryStatus | None = None) -> list[Delivery]:
        found = await self.messages.every({"endpoint_id": endpoint_id})
        views = await asyncio.gather(*(self._view(m) for m in found))
        return [d for d in views if status is None or d.status == status]
