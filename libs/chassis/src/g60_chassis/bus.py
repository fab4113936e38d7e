"""The event bus port, the delivery policy every adapter shares (retries, dead letters), and the
in-process adapter used by the embedded all-in-one mode and by unit tests."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from g60_chassis.envelope import Envelope

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
# Handles a consumed batch at once, with the effect of handling its events in order (a handler
# that can share store calls and engine passes among them). If it raises, the bus delivers the
# batch's events one by one to the plain handler (retries, dead letters): the handlers are
# idempotent, so a batch's partial effect is applied again harmlessly.
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]


class PermanentError(Exception):
    """The event can never be processed (bad data): dead-letter it without further attempts."""


@dataclass(frozen=True)
class Outgoing:
    """One event to publish, and where."""

    topic: str
    envelope: Envelope


class EventBus(Protocol):
    async def publish(self, topic: str, envelope: Envelope) -> None: ...
    async def publish_many(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        """Publish every message with all of them in flight at once, in a bounded time. One
        result per message, in order: None once the bus confirmed it, else the error (the
        message may or may not have gone out: publish it again)."""

    def subscribe(
        self, topic: str, group: str, handler: Handler, batch: BatchHandler | None = None
    ) -> None: ...
    def declare(self, topic: str) -> None:
        """A topic this process publishes to (created at start where the broker needs it)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> bool: ...


def unreachable(exc: BaseException) -> bool:
    """A failure of the infrastructure, not of the event: a connection refused or timed out."""
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    dlq_suffix: str = ".dlq"
    # An event whose handler still fails with such an error after the last attempt is not
    # dead-lettered: the error propagates, the record is not committed and comes again (a
    # store that is down must delay events, never divert them). Adapters add their own.
    transient: Callable[[BaseException], bool] = unreachable


def _time_ordered_id() -> str:
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


@dataclass
class DeadLetter:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]
    id: str = field(default_factory=_time_ordered_id)


class DeadLetterKeeper(Protocol):
    """Where an in-process bus's dead letters outlive the process (`g60_chassis.dead_letters`)."""

    async def load(self) -> list[DeadLetter]: ...
    async def put(self, letter: DeadLetter) -> None: ...
    async def drop(self, letters: list[DeadLetter]) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Position:
    """Where a record came from, for the dead-letter headers."""

    topic: str
    partition: int = 0
    offset: int = -1


async def deliver(
    handler: Handler,
    envelope: Envelope | None,
    raw: tuple[bytes, dict[str, str], str],
    position: Position,
    policy: DeliveryPolicy,
    dead_letter: Callable[[DeadLetter], Awaitable[None]],
    parse_error: Exception | None = None,
    first_error: Exception | None = None,
) -> bool:
    """Run `handler` with retries; after the last failed attempt, or at once for a permanent
    error, hand the original record to `dead_letter`, unless the error is `policy.transient`:
    then it is raised and the caller must not commit the record. Returns True when the handler
    succeeded; the caller commits the offset after this returns, whichever way it went.
    `first_error`: the caller made the first attempt itself, and it raised this."""
    attempts = 0
    error: BaseException | None = parse_error
    if envelope is not None and first_error is not None:
        attempts, error = 1, first_error
    elif envelope is not None:
        try:  # the first attempt outside the retry machinery: most events need no retry
            attempts = 1
            await handler(envelope)
            return True
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = exc
    retriable = not isinstance(error, PermanentError | ValidationError)
    if envelope is not None and policy.max_attempts > 1 and retriable:
        try:
            await asyncio.sleep(policy.backoff_initial_s)
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(policy.max_attempts - 1),
                wait=wait_exponential(
                    multiplier=policy.backoff_initial_s, max=policy.backoff_max_s
                ),
                retry=retry_if_not_exception_type((PermanentError, ValidationError)),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    await handler(envelope)
            return True
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = exc
    if envelope is not None and error is not None and policy.transient(error):
        log.warning(
            "%s[%s]@%s: infrastructure unavailable after %d attempt(s), not dead-lettered "
            "(it comes again): %r",
            position.topic,
            position.partition,
            position.offset,
            attempts,
            error,
        )
        await asyncio.sleep(policy.backoff_max_s)
        raise error
    value, headers, key = raw
    log.warning(
        "dead-lettering %s[%s]@%s after %d attempt(s): %r",
        position.topic,
        position.partition,
        position.offset,
        max(attempts, 1),
        error,
    )
    await dead_letter(
        DeadLetter(
            topic=position.topic + policy.dlq_suffix,
            key=key,
            value=value,
            headers={
                **headers,
                "dlq_original_topic": position.topic,
                "dlq_original_partition": str(position.partition),
                "dlq_original_offset": str(position.offset),
                "dlq_error": repr(error)[:1000],
                "dlq_attempts": str(max(attempts, 1)),
            },
        )
    )
    return False


async def deliver_batch(batch: BatchHandler | None, events: Sequence[Envelope], where: str) -> bool:
    """Try `batch` on events that all parsed; True if it handled them all. False (nothing to
    undo: the handlers are idempotent) means: deliver them one by one."""
    if batch is None or len(events) < 2:
        return False
    try:
        await batch(events)
        return True
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.info("%s: a batch of %d failed (%r): delivering one by one", where, len(events), exc)
        return False


@dataclass
class MemoryBus:
    """In-process bus. `publish` returns only after every subscribed group has processed the
    event (or dead-lettered it), so an outbox relay that marks events sent after `publish` loses
    nothing if the process dies: unsent events are published again on restart."""

    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    _subs: dict[str, list[tuple[str, Handler, BatchHandler | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _offsets: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    log: list[tuple[str, Envelope]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    keep_log: bool = False
    keeper: DeadLetterKeeper | None = None  # None: dead letters live as long as the process
    _loaded: bool = False

    def subscribe(
        self, topic: str, group: str, handler: Handler, batch: BatchHandler | None = None
    ) -> None:
        self._subs[topic].append((group, handler, batch))

    def declare(self, topic: str) -> None:
        return None

    async def start(self) -> None:
        """Read back the dead letters a previous run kept (once: every service of the
        all-in-one process starts the one bus)."""
        if self.keeper is not None and not self._loaded:
            self._loaded = True
            self.dead_letters[:0] = await self.keeper.load()

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.close()

    async def ping(self) -> bool:
        return True

    async def forget(self, letters: list[DeadLetter]) -> None:
        """Remove dead letters (replayed or purged), from the keeper first: a crash between
        the two leaves them listed, never lost."""
        if self.keeper is not None:
            await self.keeper.drop(letters)
        gone = {d.id for d in letters}
        self.dead_letters[:] = [d for d in self.dead_letters if d.id not in gone]

    @property
    def published(self) -> dict[str, int]:
        """Events published on each topic since the process started (`GET /v1/bus`)."""
        return dict(self._offsets)

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self._publish(topic, [envelope])

    async def _publish(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Deliver to every group, as a batch to a group that has a batch handler."""
        first = self._offsets[topic]
        self._offsets[topic] += len(envelopes)
        if self.keep_log:
            self.log.extend((topic, e) for e in envelopes)
        for group, handler, batch in list(self._subs.get(topic, ())):
            # one group handles one event at a time, like one Kafka partition per consumer
            lock = self._locks.setdefault(f"{topic}/{group}", asyncio.Lock())
            async with lock:
                if await deliver_batch(batch, envelopes, f"{topic}/{group}"):
                    continue
                for n, envelope in enumerate(envelopes):
                    raw = (envelope.kafka_value(), envelope.kafka_headers(), envelope.subject)
                    await deliver(
                        handler,
                        envelope,
                        raw,
                        Position(topic, 0, first + n),
                        self.policy,
                        self._dead_letter,
                    )

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        """Each run of messages to one topic is one delivery (a batch where handlers take
        them); if it fails, the run's messages all count as not published."""
        results: list[BaseException | None] = []
        i = 0
        while i < len(messages):
            j, topic = i + 1, messages[i].topic
            if any(batch for _, _, batch in self._subs.get(topic, ())):
                while j < len(messages) and messages[j].topic == topic:
                    j += 1
            try:
                if j == i + 1:
                    await self.publish(topic, messages[i].envelope)
                else:
                    await self._publish(topic, [m.envelope for m in messages[i:j]])
                results += [None] * (j - i)
            except Exception as exc:
                results += [exc] * (j - i)
            i = j
        return results

    async def _dead_letter(self, letter: DeadLetter) -> None:
        if self.keeper is not None:
            await self.keeper.put(letter)  # a failure here leaves the event to come again
        self.dead_letters.append(letter)
