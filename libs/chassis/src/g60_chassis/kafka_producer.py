"""The platform's Kafka producer: aiokafka's idempotent producer (acks=all), used so that many
records are in flight at once (send all, then await the batch of futures), with a bounded time
on every publish and a replacement for a producer that stays stuck.

Why by hand: aiokafka never expires a batch when idempotence is on (its sender retries "until
we succeed", `Sender._can_retry`), so after a broker restart a producer whose sender keeps
getting `NotLeaderForPartitionError` (aio-libs/aiokafka#1018), or whose sender task stopped,
leaves every future pending forever; an `await publish` then never returns and the outbox relay
that awaited it stops for good. That is what happened in the e2e test where Kafka was killed:
the projects service logged `NotLeaderForPartitionError ... retrying` and nothing after. Here
every publish waits at most `send_timeout_s`; when a producer made no progress for `stuck_s`
while the broker answers a fresh metadata request, it is closed and a new one (new producer
id) takes its place. The records it did not confirm stay in the caller's outbox and go out
again: at-least-once, consumers are idempotent. FastStream's `publish` awaits each record, and
its `publish_batch` takes one topic, one partition and one set of headers: neither fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient

log = logging.getLogger(__name__)


def servers(bootstrap: str) -> list[str]:
    """`host:port,host:port` as the list aiokafka's clients take (AIOKafkaClient does not
    split a comma-separated string: it would read one host named `a:1,b`)."""
    return [s.strip() for s in bootstrap.split(",") if s.strip()]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class PublishTimeout(TimeoutError):
    """The broker did not confirm the record in time; it may still be written (publish again)."""


class ResilientProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        send_timeout_s: float = 20.0,
        stuck_s: float = 30.0,
        linger_ms: int = 0,
    ) -> None:
        self.bootstrap, self.client_id = bootstrap, client_id
        self.send_timeout_s, self.stuck_s, self.linger_ms = send_timeout_s, stuck_s, linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()  # one (re)start at a time
        self._stalled_since: float | None = None  # first unconfirmed timeout since progress
        self.recreated = 0

    def _new(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=servers(self.bootstrap),
            client_id=self.client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=self.linger_ms,
            request_timeout_ms=int(self.send_timeout_s * 1000),
        )

    async def start(self) -> None:
        async with self._lock:
            await self._ensure()

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._new()
            try:
                await asyncio.wait_for(producer.start(), self.send_timeout_s)
            except BaseException:
                await _close(producer)
                raise
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await _close(producer)

    async def send_many(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Hand every record to the producer, then wait (at most `send_timeout_s` in all) for
        the broker's acknowledgements. One result per record, in order: None when confirmed."""
        if not records:
            return []
        deadline = time.monotonic() + self.send_timeout_s
        results: list[BaseException | None] = [None] * len(records)
        futures: dict[int, asyncio.Future[object]] = {}
        try:
            # one timeout around the loop (not one per record: wait_for makes a task each)
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + self.send_timeout_s):
                async with self._lock:
                    producer = await self._ensure()
                for i, r in enumerate(records):
                    futures[i] = await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
        except Exception as exc:  # the records not handed over fail with the cause
            err = PublishTimeout(f"no room in the producer within {self.send_timeout_s}s")
            for i in range(len(records)):
                if i not in futures:
                    results[i] = err if isinstance(exc, TimeoutError) else exc
        if futures:
            await asyncio.wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        progressed = False
        for i, fut in futures.items():
            if not fut.done():
                results[i] = PublishTimeout(f"not confirmed within {self.send_timeout_s}s")
            elif fut.cancelled():
                results[i] = PublishTimeout("cancelled")
            elif (failure := fut.exception()) is not None:
                results[i] = failure
            else:
                progressed = True
        if progressed:
            self._stalled_since = None
        elif any(results):
            await self._maybe_replace()
        return results

    async def _maybe_replace(self) -> None:
        """No record confirmed: replace the producer once it has been stuck for `stuck_s` and
        the broker answers again (a fresh client's metadata request)."""
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
            return
        if now - self._stalled_since < self.stuck_s or not await broker_answers(self.bootstrap):
            return
        async with self._lock:
            if self._producer is not None:
                old, self._producer = self._producer, None
                log.warning(
                    "kafka producer %s: no record confirmed for %.0fs while the broker answers: "
                    "replacing it",
                    self.client_id,
                    now - self._stalled_since,
                )
                await _close(old)
                self.recreated += 1
        self._stalled_since = None


async def broker_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    client = AIOKafkaClient(
        bootstrap_servers=servers(bootstrap), request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), timeout_s)


async def _close(producer: AIOKafkaProducer, timeout_s: float = 5.0) -> None:
    """aiokafka's `stop` first waits for every pending batch: on a stuck producer, forever. Give
    it a few seconds, then cancel its sender task so it stops retrying in the background."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except Exception as exc:
        log.info("kafka producer did not stop cleanly (%r): cancelling its sender", exc)
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.client.close(), timeout_s)
