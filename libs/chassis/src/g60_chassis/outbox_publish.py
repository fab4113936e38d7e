"""One publish of the relay (`outbox.py`): many events to the bus in one `publish_many` (all in
flight at once, one wait for the acknowledgements), then what was confirmed: the batches whose
events all were, and per aggregate the leading confirmed events of its outbox, marked sent in
one store call (an event is never marked while an earlier one of the same aggregate is to be
published again). What the relay does with a batch confirmed (delete it, now or later) and
which documents may publish yet (their creating batch gone) stays the relay's."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram

from g60_chassis.batches import Batch, made_at
from g60_chassis.bus import EventBus, Outgoing
from g60_chassis.envelope import Envelope
from g60_chassis.store import Doc, DocumentStore

BATCH_AGE = Histogram(
    "g60_outbox_batch_age_seconds",
    "An inserted batch's age when its events are handed to the bus (its id's time: the insert"
    " call's start, so the store's writes, the relay's wait and a scan's recovery included)",
    ["collection"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)


def outbox_entry(topic: str, envelope: Envelope) -> dict[str, Any]:
    """How an event waits in its aggregate's outbox."""
    return {"topic": topic, **envelope.to_dict()}


class PublishFailed(Exception):
    """Some events were not confirmed by the bus; they stay in their outboxes."""

    def __init__(self, failed: int, first: BaseException) -> None:
        super().__init__(f"{failed} event(s) not confirmed; first error: {first!r}")
        self.failed, self.first = failed, first


async def publish_batches(
    bus: EventBus, found: list[Batch]
) -> tuple[dict[str, list[str]], int, PublishFailed | None]:
    """Publish these batches' events in one go. Returns the batches all confirmed (ids by
    collection), how many events they held, and what failed (None: nothing)."""
    messages = [
        Outgoing(entry["topic"], Envelope.from_dict(entry))
        for b in found
        for _, entries in b.items
        for entry in entries
    ]
    now = time.time()
    for b in found:
        if (made := made_at(b.id)) is not None:
            BATCH_AGE.labels(b.collection).observe(max(0.0, now - made))
    results = await bus.publish_many(messages) if messages else []
    done: dict[str, list[str]] = {}
    i, sent, failed = 0, 0, 0
    first: BaseException | None = None
    for b in found:
        outcome = results[i : i + b.size]
        i += b.size
        failures = [r for r in outcome if r is not None]
        if failures:
            failed += len(failures)
            first = first or failures[0]
        else:
            done.setdefault(b.collection, []).append(b.id)
            sent += b.size
    return done, sent, None if first is None else PublishFailed(failed, first)


async def publish_outboxes(
    store: DocumentStore, bus: EventBus, collection: str, docs: list[Doc]
) -> tuple[int, PublishFailed | None]:
    """Publish the outboxes of `docs` in one batch; mark each one's confirmed prefix sent.
    Returns how many were sent and what failed (None: nothing); the marks are stored first."""
    whole: dict[str, int] = {}  # documents whose whole outbox went out: id → version
    messages = [
        Outgoing(entry["topic"], Envelope.from_dict(entry))
        for doc in docs
        for entry in doc["outbox"]
    ]
    if not messages:
        return 0, None
    results = await bus.publish_many(messages)
    marks: dict[str, list[Doc]] = {}
    i, sent, failed = 0, 0, 0
    first: BaseException | None = None
    for doc in docs:
        outcome = results[i : i + len(doc["outbox"])]
        i += len(doc["outbox"])
        confirmed = next((n for n, r in enumerate(outcome) if r is not None), len(outcome))
        failures = [r for r in outcome if r is not None]
        failed += len(failures)
        first = first or (failures[0] if failures else None)
        if confirmed:
            marks[str(doc["_id"])] = doc["outbox"][:confirmed]
            sent += confirmed
            if confirmed == len(outcome):
                whole[str(doc["_id"])] = int(doc["version"])
    await store.mark_sent_many(collection, marks, whole)
    return sent, None if first is None else PublishFailed(failed, first)
