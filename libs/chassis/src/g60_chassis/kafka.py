"""EventBus on Apache Kafka: consumers through FastStream (aiokafka underneath), in groups that
commit an offset only after the handler stored its effect (or the record was dead-lettered);
publishing through aiokafka's idempotent producer with acks=all, many records in flight at once
and a bounded time per publish (`kafka_producer`); CloudEvents binary mode on the wire."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from g60_chassis.bus import BatchHandler, DeadLetter, DeliveryPolicy, Handler, Outgoing
from g60_chassis.counters import count_broker_requests
from g60_chassis.envelope import Envelope
from g60_chassis.kafka_consumer import BatchConsumer, batch_parser
from g60_chassis.kafka_producer import Record, ResilientProducer, servers

log = logging.getLogger(__name__)


async def _records(message: Any) -> Any:
    return message.raw_message


def _record(message: Outgoing) -> Record:
    e = message.envelope
    headers = [(k, v.encode()) for k, v in e.kafka_headers().items()]
    return Record(message.topic, e.subject.encode(), e.kafka_value(), headers)


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        policy: DeliveryPolicy | None = None,
        partitions: int = 3,
        replication_factor: int = 1,
        min_insync_replicas: int = 1,
        instance_id: str | None = None,
        send_timeout_s: float = 20.0,
        producer_stuck_s: float = 30.0,
        max_batch: int | None = None,
        batch_budget_s: float = 10.0,
        handler_batch: int = 100,
        poll_wait_ms: int = 50,
        fetch_min_bytes: int = 16_384,
        fetch_max_wait_ms: int = 200,
        sparse_fetch_min_bytes: int = 262_144,
    ) -> None:
        count_broker_requests()  # on `/metrics`: broker requests by type
        self.fetch_min_bytes, self.fetch_max_wait_ms = fetch_min_bytes, fetch_max_wait_ms
        self.sparse_fetch_min_bytes = max(fetch_min_bytes, sparse_fetch_min_bytes)
        self.max_batch, self.batch_budget_s = max_batch, batch_budget_s
        self.handler_batch, self.poll_wait_ms = handler_batch, poll_wait_ms
        self.bootstrap = bootstrap
        self.instance_id = instance_id
        self.policy = policy or DeliveryPolicy()
        self.partitions = partitions
        self.replication_factor, self.min_insync_replicas = replication_factor, min_insync_replicas
        self.producer = ResilientProducer(
            bootstrap, client_id=client_id, send_timeout_s=send_timeout_s, stuck_s=producer_stuck_s
        )
        self.broker = KafkaBroker(
            servers(bootstrap),
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            graceful_timeout=15.0,
            logger=log,
            log_level=logging.DEBUG,  # its "Received"/"Processed" line per batch: not at INFO
        )
        self._topics: set[str] = set()

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        batch: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        self._topics.update({topic, topic + self.policy.dlq_suffix})
        consume = BatchConsumer(
            topic,
            handler,
            batch,
            self.policy,
            self._dead_letter,
            budget_s=self.batch_budget_s,
            handler_batch=self.handler_batch,
            types=types,
        )
        subscriber = self.broker.subscriber(
            topic,
            group_id=group,
            # Records come in batches (whatever one poll brings: aiokafka bounds it by fetch
            # bytes; `max_batch` caps it if set): each is handled in order, then one commit
            # covers the batch: the offset moves only past records whose effect is stored (or
            # dead-lettered). A commit is a broker round trip, so their number sets a no-op
            # consumer's pace: one per record, ~150 records/s; per 500, 0.37-0.48x the raw
            # consumer of `make bench-flow`; per poll, as it does, 0.94-1.43x (medians,
            # `docs/decisions.md`). A record that cannot be handled now (store down, dead
            # letter not published) is sought back with the rest of its batch; what was
            # handled before it is committed. Anything else raised seeks the whole batch back
            # (NACK_ON_ERROR): at-least-once, handlers are idempotent.
            batch=True,
            max_records=self.max_batch,
            # A poll that found nothing in this long is followed by a sleep as long (FastStream's
            # batch subscriber), during which a record that arrives waits: at 100 ms, a record
            # at 5/s waited up to 150 ms, at 20 ms up to 30 ms. Idle, three subscriptions
            # used 1.5% of a core at 100 ms, 2.0% at 50, 2.7% at 20.
            batch_timeout_ms=self.poll_wait_ms,
            # The broker answers a fetch once it holds `fetch_min_bytes` for it or after
            # `fetch_max_wait_ms`: with aiokafka's 1 byte each consumer fetched once per
            # produce request under load. 16 KB / 200 ms: Kafka 7.1 -> 4.7 ms CPU per need at
            # 20 needs/s; idle, ~10 ms/s more for the broker (a fetch per 200 ms, not 500)
            # A subscription that acts on a few types (`types`) of a busy topic (the projects
            # and funding services on the matches topic: mostly proposals) waits for more:
            # fewer fetches and fewer commits (one per poll), each event at most
            # `fetch_max_wait_ms` later all the same.
            fetch_min_bytes=self.fetch_min_bytes if types is None else self.sparse_fetch_min_bytes,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            # A member killed mid-rebalance holds the group up to the rebalance timeout
            # (max.poll.interval.ms, 5 min by default): keep both short. With an instance id
            # (static membership) a restarted process takes its partitions back at once.
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            max_poll_interval_ms=60_000,
            group_instance_id=f"{self.instance_id}-{topic}" if self.instance_id else None,
            title=f"{group}:{topic}",
            # we read the records ourselves, malformed ones included (`kafka_consumer`)
            parser=batch_parser(lambda: subscriber.consumer),
            decoder=_records,
        )

        @subscriber
        async def _consume(message: KafkaMessage) -> None:
            await consume(message.raw_message, message.consumer)

    async def _dead_letter(self, letter: DeadLetter) -> None:
        headers = [(k, v.encode()) for k, v in letter.headers.items()]
        await self._send([Record(letter.topic, letter.key.encode(), letter.value, headers)])

    async def _send(self, records: list[Record]) -> None:
        for error in await self.producer.send_many(records):
            if error is not None:
                raise error

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self._send([_record(Outgoing(topic, envelope))])

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        return await self.producer.send_many([_record(m) for m in messages])

    async def ensure_topics(self, topics: set[str]) -> None:
        """Create topics with the platform's partition count (idempotent)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=servers(self.bootstrap))
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            new = [
                NewTopic(
                    t,
                    num_partitions=self.partitions,
                    replication_factor=self.replication_factor,
                    topic_configs={"min.insync.replicas": str(self.min_insync_replicas)},
                )
                for t in sorted(topics - existing)
            ]
            if new:
                try:
                    await admin.create_topics(new)
                except Exception as exc:
                    log.info("create_topics: %r", exc)
        finally:
            await admin.close()

    def declare(self, topic: str) -> None:
        self._topics.update({topic, topic + self.policy.dlq_suffix})

    async def start(self) -> None:
        await self.ensure_topics(self._topics)
        await self.producer.start()
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()  # in-flight handlers finish (and may dead-letter) first
        await self.producer.stop()

    async def ping(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=2.0))
        except Exception:
            return False
