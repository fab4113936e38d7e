"""The event bus port and the in-process adapter used by the embedded all-in-one mode and by
unit tests. The delivery policy every adapter shares (retries, dead letters) is in
`delivery.py`; its names are importable from here too."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from g60_chassis.delivery import (
    BatchHandler,
    DeadLetter,
    DeadLetterKeeper,
    DeliveryPolicy,
    Handler,
    PermanentError,
    Position,
    deliver,
    deliver_batch,
    unreachable,
)
from g60_chassis.envelope import Envelope

__all__ = [
    "BatchHandler",
    "DeadLetter",
    "DeadLetterKeeper",
    "DeliveryPolicy",
    "EventBus",
    "Handler",
    "MemoryBus",
    "Outgoing",
    "PermanentError",
    "Position",
    "deliver",
    "deliver_batch",
    "unreachable",
]


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
        self,
        topic: str,
        group: str,
        handler: Handler,
        batch: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        """`types`: the event types the handlers act on (None: all). A hint: the bus may skip
        the others unread (committed as handled); the handlers must ignore them anyway."""

    def declare(self, topic: str) -> None:
        """A topic this process publishes to (created at start where the broker needs it)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> bool: ...


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
        self,
        topic: str,
        group: str,
        handler: Handler,
        batch: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        self._subs[topic].append((group, handler, batch))  # every type: `types` is a hint

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
