"""Deliveries: the fan-out of each platform event to the endpoints that receive it, test
events, the delivery log, a manual retry and a replay since a time.

A delivery's id (the `webhook-id`) is derived from the endpoint and the event, so a
redelivered event (Kafka after a crash) finds its delivery already stored and schedules
nothing new: the store's id uniqueness is the idempotency check. The store is the journal
(`service/journal.py`): message, schedule entry, attempt log. The id starts with the
event's time, so the log reads in time order."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from g60_chassis.errors import NotFound
from subscriptions.domain.delivery import Delivery, DeliveryStatus
from subscriptions.domain.endpoint import Endpoint
from subscriptions.service.journal import DeliveryJournal
from subscriptions.service.ports import Clock

TEST_TYPE = "g60.webhook.test.v1"


def delivery_id(endpoint_id: str, event_id: str, at: datetime) -> str:
    digest = hashlib.sha256(f"{endpoint_id}:{event_id}".encode()).hexdigest()[:20]
    return f"msg_{at.strftime('%Y%m%d%H%M%S%f')}{digest}"


def structured(
    id: str, type: str, source: str, subject: str, at: datetime, data: dict[str, object]
) -> str:
    """The CloudEvent in structured mode (JSON), the body every attempt sends unchanged."""
    event = {
        "specversion": "1.0",
        "id": id,
        "type": type,
        "source": source,
        "subject": subject,
        "time": at.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class Deliveries:
    def __init__(
        self,
        deliveries: DeliveryJournal,
        clock: Clock,
        scheduled: Callable[[Delivery, bool], None] = lambda d, held: None,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.store, self.clock, self.scheduled = deliveries, clock, scheduled
        self.lease = lease
        self._last_seq = 0

    def _seq(self) -> int:
        self._last_seq = max(self._last_seq + 1, time.time_ns())
        return self._last_seq

    async def create(
        self, endpoint: Endpoint, event_id: str, type: str, subject: str, at: datetime, body: str
    ) -> Delivery | None:
        """Store and schedule one delivery; None when this event was scheduled before. It is
        stored leased to this process, so its first attempt needs no claim of its own (another
        replica leaves it alone; after a crash the lease expires and anyone sends it)."""
        delivery = self.new(endpoint, event_id, type, subject, at, body)
        if not await self.store.add(delivery):
            return None
        self.scheduled(delivery, True)
        return delivery

    async def create_many(self, deliveries: list[Delivery]) -> int:
        """`create` for many (built by `new`, in fan-out order) in two store calls; the
        number scheduled (those stored before are not)."""
        created = await self.store.add_many(deliveries)
        for delivery, fresh in zip(deliveries, created, strict=True):
            if fresh:
                self.scheduled(delivery, True)
        return sum(created)

    def new(
        self, endpoint: Endpoint, event_id: str, type: str, subject: str, at: datetime, body: str
    ) -> Delivery:
        now = self.clock()
        return Delivery(
            id=delivery_id(endpoint.id, event_id, at),
            endpoint_id=endpoint.id,
            event_id=event_id,
            event_type=type,
            subject=subject,
            seq=self._seq(),
            body=body,
            next_attempt_at=now,
            lease_until=now + self.lease,
            created_at=now,
            updated_at=now,
        )

    async def test(self, endpoint: Endpoint) -> Delivery:
        now, event_id = self.clock(), uuid.uuid4().hex
        data: dict[str, object] = {"endpoint_id": endpoint.id, "message": "a test event"}
        body = structured(event_id, TEST_TYPE, "/g60/subscriptions", endpoint.id, now, data)
        delivery = await self.create(endpoint, event_id, TEST_TYPE, endpoint.id, now, body)
        assert delivery is not None  # a fresh event id
        return delivery

    async def log(
        self, endpoint_id: str, status: DeliveryStatus | None, cursor: str | None, limit: int
    ) -> tuple[list[Delivery], str | None]:
        return await self.store.page(endpoint_id, status, cursor, limit)

    async def get(self, endpoint_id: str, id: str) -> Delivery:
        delivery = await self.store.get(id)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            raise NotFound.of("delivery", id)
        return delivery

    async def retry(self, endpoint_id: str, id: str) -> Delivery:
        """Send again now, same id; the retry schedule restarts. A pending one is left as is."""
        await self.get(endpoint_id, id)
        if await self.store.again(id, self.clock()):
            delivery = await self.get(endpoint_id, id)
            self.scheduled(delivery, False)
            return delivery
        return await self.get(endpoint_id, id)

    async def replay(self, endpoint_id: str, since: datetime) -> int:
        """Every delivery of the endpoint created since `since` sent again, same ids; the count
        of those rescheduled (pending ones already are)."""
        count = 0
        for message in await self.store.messages.every({"endpoint_id": endpoint_id}):
            if message.created_at >= since and await self.store.again(message.id, self.clock()):
                count += 1
                delivery = await self.store.get(message.id)
                if delivery is not None:
                    self.scheduled(delivery, False)
        return count
