"""How a delivery is stored: insert-mostly, in three kinds of documents.

* `Message`: the delivery's message (its id is the webhook-id; the body exactly as signed),
  written once by the fan-out and never changed.
* `Scheduled`: a small document per *pending* delivery (when the next attempt is due, its
  lease, how many attempts this round): claimed and rescheduled by compare-and-set, deleted
  when the delivery leaves `pending`. The rescan reads these, not the whole log.
* `Logged`: one per attempt, appended (never changed): the attempt and the delivery's state
  after it. The newest one of a delivery with no `Scheduled` tells its state.

Why: on FerretDB 1.24 (PostgreSQL) an update rewrites the whole JSONB row and its index
entries; updating the one delivery document per attempt ran at ~370/s, while inserts batch
(~5,900/s in batches of 32) and deletes by id batch too (~1,800/s). A first attempt that
succeeds now costs one batched insert and one batched delete.

Documents of the first layout (one `deliveries` document updated on every attempt) stay
readable: a `Message` carries their state fields; a pending one is moved into a `Scheduled`
by the dispatcher's rescan (its `status` then reads "moved")."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from subscriptions.domain.delivery import Attempt, Delivery, DeliveryStatus

LEGACY = ("pending", "delivered", "failed")  # `Message.status` of a first-layout document
MOVED = "moved"  # a first-layout document whose pending state was moved into a `Scheduled`


class Message(BaseModel):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    subject: str
    seq: int
    body: str
    created_at: datetime
    day: str | None = None  # the UTC day of `created_at`: the retention reads by day (`day_of`)
    version: int = 0
    # the first layout's state (None / empty in documents written since)
    status: str | None = None
    attempts: list[Attempt] = []
    round_start: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    updated_at: datetime | None = None


class Scheduled(BaseModel):
    id: str  # the delivery's
    endpoint_id: str
    subject: str
    seq: int
    next_attempt_at: datetime
    lease_until: datetime | None = None
    tries: int = 0
    updated_at: datetime
    version: int = 0


class Logged(BaseModel):
    id: str  # "<delivery id>:<20-digit sequence>": one delivery's entries in time order
    delivery_id: str
    endpoint_id: str
    at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    status: DeliveryStatus  # the delivery's after this attempt
    next_attempt_at: datetime | None = None
    version: int = 0


def day_of(at: datetime) -> str:
    """A message's day bucket ("2026-11-29", UTC): FerretDB 1.24 filters by equality with an
    index but scans for a range, so the retention asks for whole days."""
    return at.astimezone(UTC).date().isoformat()


def log_id(delivery_id: str, seq: int) -> str:
    return f"{delivery_id}:{seq:020d}"


def split(d: Delivery) -> tuple[Message, Scheduled]:
    """A new delivery (pending) as its message and its schedule entry."""
    assert d.next_attempt_at is not None
    message = Message(
        id=d.id,
        endpoint_id=d.endpoint_id,
        event_id=d.event_id,
        event_type=d.event_type,
        subject=d.subject,
        seq=d.seq,
        body=d.body,
        created_at=d.created_at,
        day=day_of(d.created_at),
    )
    return message, scheduled_of(d)


def scheduled_of(d: Delivery) -> Scheduled:
    """The schedule entry of a pending delivery (its version is the delivery's)."""
    assert d.next_attempt_at is not None
    return Scheduled(
        id=d.id,
        endpoint_id=d.endpoint_id,
        subject=d.subject,
        seq=d.seq,
        next_attempt_at=d.next_attempt_at,
        lease_until=d.lease_until,
        tries=d.tries,
        updated_at=d.updated_at,
        version=d.version,
    )


def logged_of(d: Delivery, seq: int) -> Logged:
    """The log entry of the attempt `d` just recorded (its last), with the state after it."""
    last = d.attempts[-1]
    return Logged(
        id=log_id(d.id, seq),
        delivery_id=d.id,
        endpoint_id=d.endpoint_id,
        at=last.at,
        status_code=last.status_code,
        error=last.error,
        latency_ms=last.latency_ms,
        status=d.status,
        next_attempt_at=d.next_attempt_at,
    )


def moved(m: Message) -> Scheduled:
    """The schedule entry of a pending first-layout delivery."""
    return Scheduled(
        id=m.id,
        endpoint_id=m.endpoint_id,
        subject=m.subject,
        seq=m.seq,
        next_attempt_at=m.next_attempt_at or m.created_at,
        lease_until=m.lease_until,
        tries=max(0, len(m.attempts) - m.round_start),
        updated_at=m.updated_at or m.created_at,
    )


def view(m: Message, s: Scheduled | None, logged: list[Logged]) -> Delivery:
    """The delivery as the log API shows it. Pending while a schedule entry exists; else as
    its newest log entry says; a first-layout document as it says; else pending (the fan-out
    was cut between its two writes: the next redelivery of the event schedules it)."""
    attempts = list(m.attempts) + [
        Attempt(at=e.at, status_code=e.status_code, error=e.error, latency_ms=e.latency_ms)
        for e in logged
    ]
    status: DeliveryStatus = "pending"
    next_at, lease, tries = None, None, 0
    updated = logged[-1].at if logged else m.updated_at or m.created_at
    if s is not None:
        next_at, lease, tries = s.next_attempt_at, s.lease_until, s.tries
        updated = max(updated, s.updated_at)
    elif logged:
        status, next_at = logged[-1].status, logged[-1].next_attempt_at
    elif m.status in LEGACY:
        status, next_at, lease = m.status, m.next_attempt_at, m.lease_until  # type: ignore[assignment]
        tries = max(0, len(m.attempts) - m.round_start)
    return Delivery(
        id=m.id,
        endpoint_id=m.endpoint_id,
        event_id=m.event_id,
        event_type=m.event_type,
        subject=m.subject,
        seq=m.seq,
        body=m.body,
        status=status,
        attempts=attempts,
        round_start=len(attempts) - tries,
        tries=tries,
        next_attempt_at=next_at,
        lease_until=lease,
        created_at=m.created_at,
        updated_at=updated,
        version=s.version if s is not None else 0,
    )
