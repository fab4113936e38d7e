"""The consuming half of the Kafka bus: what happens to each batch of records FastStream polls.

Each record is read once (headers decoded, CloudEvent parsed) as it is handled, in order: in
chunks by a batch handler where every record of the chunk parsed, else one by one with retries
and dead letters. FastStream commits the batch after this returns, or seeks it back if it
raised; a record that cannot be handled now is sought back here, with the rest of its batch.
Measured with a no-op handler (`make bench-flow`, 5,000 records of ~400 bytes): see
`docs/decisions.md` (bus consume path) for the figures behind each choice here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka.message import FAKE_CONSUMER, ConsumerProtocol, KafkaAckableMessage
from prometheus_client import Histogram

from g60_chassis.bus import (
    BatchHandler,
    DeadLetter,
    DeliveryPolicy,
    Handler,
    Position,
    deliver,
    deliver_batch,
)
from g60_chassis.envelope import Envelope

log = logging.getLogger(__name__)

Records = tuple[ConsumerRecord[Any, Any], ...]
# Where a consumed event's time goes, on `/metrics` (`make bench-flow` prints them per step): from
# its record's timestamp (when the producer made it) to the start of the batch that handles it
# (the broker's fetch wait, the poll, the batches handled before it), then to the end of its
# chunk's handling; and each polled batch's handling time.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
WAITED = Histogram(
    "g60_consume_wait_seconds",
    "A record's time from its timestamp to the start of its batch's handling",
    ["topic"],
    buckets=_BUCKETS,
)
HANDLED = Histogram(
    "g60_consume_handled_seconds",
    "A record's time from the start of its batch's handling to the end of its chunk's",
    ["topic"],
    buckets=_BUCKETS,
)
BATCHES = Histogram(
    "g60_consume_batch_seconds", "A polled batch's handling time", ["topic"], buckets=_BUCKETS
)


def headers_of(raw: ConsumerRecord[Any, Any]) -> tuple[dict[str, str], ValueError | None]:
    """Header values as text (a header without a value: ""), and whether they all were text:
    a CloudEvent's headers are UTF-8. Bytes that are not are replaced, so that the dead letter
    carries what could be read."""
    try:
        return {k: v.decode() for k, v in raw.headers or ()}, None
    except (UnicodeDecodeError, AttributeError):
        out: dict[str, str] = {}
        error = None
        for k, v in raw.headers:
            try:
                out[k] = "" if v is None else v.decode()
            except UnicodeDecodeError:
                out[k] = v.decode("utf-8", "replace")
                error = ValueError(f"header {k!r} is not UTF-8 text")
        return out, error


def batch_parser(
    consumer: Callable[[], ConsumerProtocol | None],
) -> Callable[[Records], Awaitable[KafkaAckableMessage]]:
    """FastStream's own batch parser decodes every header of every record, strictly: one
    header that was not UTF-8 raised out of the parser, and FastStream then neither handled,
    committed nor sought back the batch, so the next batch's commit passed over it: every
    record in it lost, the good ones too (reproduced: integration `test_kafka_consumer.py`).
    It also decoded the headers a second time for nothing (the bus reads them itself). This
    one only wraps the records; the handler reads them."""

    async def parse(records: Records) -> KafkaAckableMessage:
        first, last = records[0], records[-1]
        return KafkaAckableMessage(
            raw_message=records,
            body=records,
            message_id=f"{first.offset}-{last.offset}-{first.timestamp}",
            correlation_id=f"{first.topic}-{first.partition}-{first.offset}",
            consumer=consumer() or FAKE_CONSUMER,
        )

    return parse


def rewind(consumer: ConsumerProtocol, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
    """Seek each partition back to its first record among `records`."""
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    for tp, offset in first.items():
        consumer.seek(tp, offset)


def partitions(records: Records) -> list[Records]:
    """The records of each partition, in order, partitions in order of first appearance. Each
    part is handled, cut short by the budget and sought back on its own (`rewind` seeks only
    the partitions of the records it is given); if a part raises past its own handling, the
    others are cancelled and the whole poll is sought back (handlers are idempotent)."""
    by: dict[tuple[str, int], list[ConsumerRecord[Any, Any]]] = {}
    for r in records:
        by.setdefault((r.topic, r.partition), []).append(r)
    return [tuple(part) for part in by.values()]


def _observe(histogram: Histogram, n: int, seconds: float) -> None:
    for _ in range(n):
        histogram.observe(seconds)


class Read:
    """One record as read: its headers, and its event or why it is not one; or `skipped`:
    an event of a type the subscription does not act on (its JSON is not parsed)."""

    __slots__ = ("envelope", "error", "headers", "raw", "skipped")

    def __init__(self, raw: ConsumerRecord[Any, Any], types: frozenset[str] | None = None) -> None:
        self.raw = raw
        self.headers, error = headers_of(raw)
        self.envelope: Envelope | None = None
        self.error: Exception | None = error
        self.skipped = (
            error is None and types is not None and self.headers.get("ce_type") not in types
        )
        if error is None and not self.skipped:
            try:
                self.envelope = Envelope.from_kafka(self.headers, raw.value)
            except (ValueError, KeyError, TypeError) as exc:  # malformed: no retry can fix it
                self.error = exc


class BatchConsumer:
    """Handles the records of one subscription's polled batches."""

    def __init__(
        self,
        topic: str,
        handler: Handler,
        batch: BatchHandler | None,
        policy: DeliveryPolicy,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        *,
        budget_s: float,
        handler_batch: int,
        types: frozenset[str] | None = None,
    ) -> None:
        self.topic, self.handler, self.batch, self.types = topic, handler, batch, types
        self.policy, self.dead_letter = policy, dead_letter
        self.budget_s, self.handler_batch = budget_s, handler_batch

    async def __call__(self, records: Records, consumer: ConsumerProtocol) -> None:
        """Handle `records` in order, or a prefix of them: the partitions of the rest are
        sought back to their first unhandled record, so the commit that follows covers only
        what was handled and the rest comes again with the next poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget_s
        started = time.time()
        waited, handled = WAITED.labels(self.topic), HANDLED.labels(self.topic)
        for r in records:
            waited.observe(max(0.0, started - r.timestamp / 1000))
        # A batch handler's partitions go concurrently: Kafka orders records within a
        # partition only, so their runs are independent, and one partition's store round trips
        # overlap another's instead of queueing behind them (see `partitions`).
        parts = partitions(records) if self.batch is not None else [records]
        try:
            if len(parts) == 1:
                await self._handle_all(records, consumer, loop, deadline, handled, started)
            else:
                async with asyncio.TaskGroup() as group:  # one raising cancels the others
                    for part in parts:
                        group.create_task(
                            self._handle_all(part, consumer, loop, deadline, handled, started)
                        )
        finally:
            BATCHES.labels(self.topic).observe(time.time() - started)

    async def _handle_all(
        self,
        records: Records,
        consumer: ConsumerProtocol,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        handled: Histogram,
        started: float,
    ) -> None:
        # Read as handled (a chunk at a time): reading a whole poll first keeps every parsed
        # event alive at once, and the garbage collector's passes over them double the time
        # (5,000 records: 83 ms read all first, 42 ms read as handled).
        step = self.handler_batch if self.batch is not None else 1
        for start in range(0, len(records), step):
            if start and loop.time() > deadline:
                # A slow handler must not keep the consumer from polling for
                # max.poll.interval.ms (it would be put out of the group, and rebalance).
                rewind(consumer, records[start:])
                return
            chunk = [Read(r, self.types) for r in records[start : start + step]]
            wanted = [r for r in chunk if not r.skipped]
            if len(wanted) > 1 and all(r.envelope for r in wanted):
                events = [r.envelope for r in wanted if r.envelope is not None]
                if await deliver_batch(self.batch, events, self.topic):
                    _observe(handled, len(chunk), time.time() - started)
                    continue
            for n, read in enumerate(chunk, start):
                try:
                    await self.handle(read)
                except Exception as exc:
                    # The store is unreachable still (`deliver` waited and logged), or a dead
                    # letter could not be published: keep what was handled, retry from here.
                    log.warning(
                        "%s: handled %d of %d polled record(s); from %s[%s]@%s on they come "
                        "again: %r",
                        self.topic,
                        n,
                        len(records),
                        read.raw.topic,
                        read.raw.partition,
                        read.raw.offset,
                        exc,
                    )
                    rewind(consumer, records[n:])
                    return
            _observe(handled, len(chunk), time.time() - started)

    async def handle(self, read: Read) -> None:
        """The first attempt here, bare: most events need nothing more, and `deliver` wants a
        dead letter's record and position made ready, which cost as much as a no-op handler."""
        if read.skipped:  # a type this subscription does not act on: handled as is
            return
        first_error: Exception | None = None
        if read.envelope is not None:
            try:
                await self.handler(read.envelope)
                return
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                first_error = exc
        raw = read.raw
        key = raw.key.decode("utf-8", "replace") if isinstance(raw.key, bytes) else ""
        await deliver(
            self.handler,
            read.envelope,
            (raw.value or b"", read.headers, key),
            Position(raw.topic, raw.partition, raw.offset),
            self.policy,
            self.dead_letter,
            read.error,
            first_error,
        )
