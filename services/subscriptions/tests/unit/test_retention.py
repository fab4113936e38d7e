"""The delivery log's retention: deliveries older than the window go with their attempt log and
schedule entry, whole days at a time; newer ones and the pass's own progress stay; messages of
older releases (no day) are dated or deleted on the first pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from services.subscriptions.tests.unit import factories as ev
from subscriptions.domain.delivery import Delivery, RetryRules, SendResult
from subscriptions.service.journal import LOG, MESSAGES, SCHEDULE, DeliveryJournal
from subscriptions.service.retention import Retention
from subscriptions.settings import WebhookSettings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=30)


def delivery(n: int, at: datetime) -> Delivery:
    return ev.delivery(n, at, id=f"msg_{at:%Y%m%d%H%M%S%f}{n:04d}")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _sent(journal: DeliveryJournal, d: Delivery, status: int) -> None:
    assert await journal.add(d)
    working = await journal.working(d.id)
    assert working is not None
    await journal.record(working, SendResult(status_code=status), d.created_at, RetryRules())


async def _ids(store: DocumentStore, collection: str) -> set[str]:
    return {d["_id"] for d in await store.find(collection, limit=10_000)}


async def past_the_window(store: DocumentStore) -> None:
    """Also run on SQLite and FerretDB (`tests/integration/test_retention_stores.py`)."""
    clock = Clock(NOW - timedelta(days=45))
    journal = DeliveryJournal(store)
    retention = Retention(journal, store, KEEP, clock)
    assert await retention.run() == 0  # first pass: the platform's first day, nothing yet
    old_ok, old_failing = delivery(1, clock.now), delivery(2, clock.now + timedelta(hours=1))
    recent = delivery(3, NOW - timedelta(days=10))
    await _sent(journal, old_ok, 200)
    await _sent(journal, old_failing, 503)  # still pending: a schedule entry and a log entry
    await _sent(journal, recent, 200)
    assert len(await _ids(store, LOG)) == 3 and await _ids(store, SCHEDULE) == {old_failing.id}

    clock.now = NOW
    assert await retention.run() == 2
    assert await _ids(store, MESSAGES) == {recent.id}
    assert [e.delivery_id for e in await journal.log.every()] == [recent.id]
    assert await _ids(store, SCHEDULE) == set()
    assert await retention.run() == 0  # the days done are not read again

    clock.now = NOW + timedelta(days=21)  # the recent one's day is past the window now
    assert await retention.run() == 1
    assert await _ids(store, MESSAGES) == set() and await _ids(store, LOG) == set()


async def test_deliveries_past_the_window_go_with_their_log_and_schedule_entry() -> None:
    await past_the_window(MemoryDocumentStore())


async def test_messages_of_older_releases_are_dated_or_deleted_on_the_first_pass() -> None:
    store, clock = MemoryDocumentStore(), Clock(NOW)
    journal = DeliveryJournal(store)
    old, young = delivery(1, NOW - timedelta(days=40)), delivery(2, NOW - timedelta(days=5))
    for d in (old, young):
        await _sent(journal, d, 200)
        stored = await store.get(MESSAGES, d.id)
        assert stored is not None
        await store.update(
            MESSAGES, {**stored, "day": None}, stored["version"]
        )  # as written before

    retention = Retention(journal, store, KEEP, clock)
    assert await retention.run() == 1
    dated = await journal.messages.get(young.id)
    assert await _ids(store, MESSAGES) == {young.id} and dated is not None
    assert dated.day == "2026-11-24"
    clock.now = NOW + timedelta(days=26)
    # its day comes before the day of the first pass, which starts from the oldest it dated
    assert await retention.run() == 1
    assert await _ids(store, MESSAGES) == set()


def test_a_window_shorter_than_the_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="RETENTION_DAYS"):
        WebhookSettings(retention_days=1, disable_after_s=5 * 86400).checked(PlatformSettings())
