"""The Kafka bus's handling of a polled batch, on records built in memory and a consumer that
records where it was sought: each record read once, in order; malformed ones dead-lettered;
what cannot be handled now sought back, with what was handled before it kept."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition

from g60_chassis.bus import DeadLetter, DeliveryPolicy, PermanentError
from g60_chassis.envelope import Envelope
from g60_chassis.kafka_consumer import BatchConsumer, Records, batch_parser

POLICY = DeliveryPolicy(max_attempts=2, backoff_initial_s=0.0, backoff_max_s=0.0)


def record(partition: int, offset: int, n: int, headers=None, value=None) -> ConsumerRecord:
    e = Envelope(type="t.v1", source="/t", subject=f"k{partition}", data={"n": n})
    hs = headers if headers is not None else [(k, v.encode()) for k, v in e.kafka_headers().items()]
    v = e.kafka_value() if value is None else value
    return ConsumerRecord("t", partition, offset, 0, 0, b"k", v, None, 1, len(v or b""), hs)


class Consumer:
    def __init__(self) -> None:
        self.sought: dict[TopicPartition, int] = {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.sought[partition] = offset

    async def commit(self) -> None:
        return None


def consumer_for(handler, batch=None, **kw) -> tuple[BatchConsumer, list[DeadLetter]]:
    letters: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    opts = {"budget_s": 10.0, "handler_batch": 100, **kw}
    return BatchConsumer("t", handler, batch, POLICY, dead_letter, **opts), letters


async def test_records_are_handled_in_order_and_malformed_ones_dead_lettered():
    got: list[int] = []

    async def handler(e: Envelope) -> None:
        got.append(e.data["n"])

    bad_header = [("ce_id", b"\xff\xfe"), ("ce_type", b"t"), ("ce_source", b"/t")]
    records: Records = (
        record(0, 0, 0),
        record(0, 1, 1, headers=bad_header),  # not UTF-8: FastStream's parser raised on it
        record(0, 2, 2, value=b"[1]"),  # not an object
        record(0, 3, 3, headers=[("ce_id", b"x")]),  # not a CloudEvent
        record(0, 4, 4, value=b""),  # no value at all
        record(0, 5, 5),
    )
    with_null = [*records[5].headers, ("traceparent", None)]  # a header without a value: ""
    records += (record(0, 6, 6, headers=with_null),)
    consume, letters = consumer_for(handler)
    seeks = Consumer()
    message = await batch_parser(lambda: seeks)(records)
    await consume(message.raw_message, message.consumer)
    assert got == [0, 5, 6]
    assert [int(d.headers["dlq_original_offset"]) for d in letters] == [1, 2, 3, 4]
    assert letters[0].headers["ce_id"] == "\ufffd\ufffd" and letters[0].value == records[1].value
    assert seeks.sought == {}


async def test_a_record_that_cannot_be_handled_now_comes_again_and_the_ones_before_do_not():
    got: list[tuple[int, int]] = []

    async def handler(e: Envelope) -> None:
        if e.data["n"] == 12:
            raise ConnectionError("store down")  # transient: never dead-lettered
        got.append((e.subject, e.data["n"]))

    records = (record(0, 0, 0), record(0, 1, 1), record(1, 10, 11), record(1, 11, 12))
    records += (record(1, 12, 13), record(2, 7, 20))
    consume, letters = consumer_for(handler)
    seeks = Consumer()
    await consume(records, seeks)
    assert got == [("k0", 0), ("k0", 1), ("k1", 11)]
    assert seeks.sought == {TopicPartition("t", 1): 11, TopicPartition("t", 2): 7}
    assert letters == []


async def test_past_its_time_budget_a_batch_stops_and_its_rest_is_sought_back():
    got: list[int] = []

    async def handler(e: Envelope) -> None:
        got.append(e.data["n"])

    consume, _ = consumer_for(handler, budget_s=0.0)
    seeks = Consumer()
    await consume((record(0, 4, 0), record(0, 5, 1), record(1, 9, 2)), seeks)
    assert got == [0]
    assert seeks.sought == {TopicPartition("t", 0): 5, TopicPartition("t", 1): 9}


async def test_a_batch_handler_takes_chunks_and_a_failing_chunk_goes_one_by_one():
    chunks: list[list[int]] = []
    single: list[int] = []

    async def one(e: Envelope) -> None:
        single.append(e.data["n"])

    async def many(es: Sequence[Envelope]) -> None:
        if any(e.data["n"] == 3 for e in es):
            raise ValueError("one bad event")
        chunks.append([e.data["n"] for e in es])

    consume, _ = consumer_for(one, many, handler_batch=2)
    await consume(tuple(record(0, n, n) for n in range(5)), Consumer())
    assert chunks == [[0, 1]] and single == [2, 3, 4]  # a chunk of one goes one by one


async def test_a_failing_handler_is_retried_then_dead_lettered_with_its_attempts_counted():
    calls: list[int] = []

    async def handler(e: Envelope) -> None:
        calls.append(e.data["n"])
        if e.data["n"] == 1:
            raise RuntimeError("cannot apply")
        if e.data["n"] == 2:
            raise PermanentError("bad data")

    consume, letters = consumer_for(handler)
    await consume(tuple(record(0, n, n) for n in range(4)), Consumer())
    assert calls == [0, 1, 1, 2, 3]  # max_attempts=2; a permanent error: no retry
    assert [(d.headers["dlq_original_offset"], d.headers["dlq_attempts"]) for d in letters] == [
        ("1", "2"),
        ("2", "1"),
    ]


def typed(offset: int, kind: str, value: bytes | None = None) -> ConsumerRecord:
    e = Envelope(type=kind, source="/t", subject="k", data={"n": offset})
    hs = [(k, v.encode()) for k, v in e.kafka_headers().items()]
    v = e.kafka_value() if value is None else value
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", v, None, 1, len(v), hs)


async def test_types_a_subscription_does_not_act_on_are_skipped_unread():
    got: list[tuple[str, int]] = []
    batches: list[list[int]] = []

    async def handler(e: Envelope) -> None:
        got.append((e.type, e.data["n"]))

    async def batch(es: Sequence[Envelope]) -> None:
        batches.append([e.data["n"] for e in es])

    consume, letters = consumer_for(handler, batch, types=frozenset({"wanted.v1"}))
    records: Records = (
        typed(0, "wanted.v1"),
        typed(1, "other.v1", value=b"{not json"),  # never parsed: no dead letter for it
        typed(2, "wanted.v1"),
        typed(3, "other.v1"),
    )
    consumer = Consumer()
    await consume(records, consumer)
    assert batches == [[0, 2]] and got == [] and letters == [] and consumer.sought == {}
    one, _ = consumer_for(handler, types=frozenset({"wanted.v1"}))  # no batch handler
    await one(records, consumer)
    assert got == [("wanted.v1", 0), ("wanted.v1", 2)] and letters == []


async def test_a_batch_handlers_partitions_run_concurrently_each_in_its_order():
    """Partition 1's batch runs while partition 0's waits on its store; each partition's
    records arrive in order; a partition that cannot be handled now is sought back alone."""
    import asyncio

    p0_started, release = asyncio.Event(), asyncio.Event()
    batches: list[list[tuple[str, int]]] = []

    async def batch(events: Sequence[Envelope]) -> None:
        got = [(e.subject, e.data["n"]) for e in events]
        if got[0][0] == "k0":
            p0_started.set()
            await release.wait()  # partition 0's batch waits on its store
        if got[0][0] == "k2":
            raise ConnectionError("store down")  # fails the batch: then one by one
        batches.append(got)
        if got[0][0] == "k1":
            release.set()  # partition 1 ran while partition 0 waited

    async def handler(e: Envelope) -> None:
        raise ConnectionError("store down")  # partition 2: not handled now

    records: Records = tuple(
        record(p, offset, p * 10 + offset) for offset in range(3) for p in (0, 1, 2)
    )  # interleaved as a poll brings them
    consume, letters = consumer_for(handler, batch)
    seeks = Consumer()
    await asyncio.wait_for(consume(records, seeks), 5)
    assert p0_started.is_set()
    assert batches == [[("k1", 10), ("k1", 11), ("k1", 12)], [("k0", 0), ("k0", 1), ("k0", 2)]]
    assert seeks.sought == {TopicPartition("t", 2): 0} and letters == []
