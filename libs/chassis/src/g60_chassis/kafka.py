"""EventBus on Apache Kafka through FastStream (aiokafka underneath): an idempotent producer
with acks=all, consumer groups that commit an offset only after the handler stored its effect
(or the record was dead-lettered), and CloudEvents binary mode on the wire."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from g60_chassis.bus import DeadLetter, DeliveryPolicy, Handler, Position, deliver
from g60_chassis.envelope import Envelope

log = logging.getLogger(__name__)


def _headers(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in raw.headers or ():
        out[key] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return out


async def _raw(message: Any) -> Any:
    return message.body


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        policy: DeliveryPolicy | None = None,
        partitions: int = 3,
        instance_id: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.instance_id = instance_id
        self.policy = policy or DeliveryPolicy()
        self.partitions = partitions
        self.broker = KafkaBroker(
            bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            graceful_timeout=15.0,
            logger=log,
        )
        self._topics: set[str] = set()

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        self._topics.update({topic, topic + self.policy.dlq_suffix})

        @self.broker.subscriber(
            topic,
            group_id=group,
            ack_policy=AckPolicy.ACK,  # commit after the handler returned, never before
            auto_offset_reset="earliest",
            # A member killed mid-rebalance holds the group up to the rebalance timeout
            # (max.poll.interval.ms, 5 min by default): keep both short. With an instance id
            # (static membership) a restarted process takes its partitions back at once.
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            max_poll_interval_ms=60_000,
            group_instance_id=f"{self.instance_id}-{topic}" if self.instance_id else None,
            title=f"{group}:{topic}",
            decoder=_raw,  # we parse the CloudEvent ourselves, malformed records included
        )
        async def _consume(body: bytes, message: KafkaMessage) -> None:
            raw: Any = message.raw_message
            headers = _headers(raw)
            key = raw.key.decode() if isinstance(raw.key, bytes) else str(raw.key or "")
            envelope, parse_error = None, None
            try:
                envelope = Envelope.from_kafka(headers, raw.value)
            except (ValueError, KeyError) as exc:  # malformed: no retry can fix it
                parse_error = exc
            await deliver(
                handler,
                envelope,
                (raw.value, headers, key),
                Position(raw.topic, raw.partition, raw.offset),
                self.policy,
                self._dead_letter,
                parse_error,
            )

    async def _dead_letter(self, letter: DeadLetter) -> None:
        await self.broker.publish(
            letter.value, letter.topic, key=letter.key.encode(), headers=letter.headers
        )

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.broker.publish(
            envelope.kafka_value(),
            topic,
            key=envelope.subject.encode(),
            headers=envelope.kafka_headers(),
        )

    async def ensure_topics(self, topics: set[str]) -> None:
        """Create topics with the platform's partition count (idempotent)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            new = [
                NewTopic(t, num_partitions=self.partitions, replication_factor=1)
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
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def ping(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=2.0))
        except Exception:
            return False
