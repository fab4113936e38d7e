"""`/v1/bus` (operators): topics and dead letters of the in-process bus of the embedded
platform, for `g60 topics` and `g60 dlq-list|dlq-replay|dlq-purge`. The in-process bus keeps
its dead letters in the platform's store when that outlives the process (SQLite: a restart
lists them again), in memory otherwise; on Kafka the CLI reads the broker itself and these
routes only say `kafka`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from g60_chassis.auth import OperatorPrincipal
from g60_chassis.bus import DeadLetter, EventBus, MemoryBus
from g60_chassis.envelope import Envelope
from g60_contracts.bus import BusOut, BusTopic, CountOut, DeadLetterOut

DLQ = ".dlq"
TopicQuery = Annotated[str, Query(min_length=1, max_length=200, description="e.g. g60.matches")]


def _dlq(topic: str) -> str:
    return topic if topic.endswith(DLQ) else topic + DLQ


def bus_router(buses: Sequence[EventBus]) -> APIRouter:
    api = APIRouter(prefix="/v1/bus", tags=["operations"])
    memory = [b for b in buses if isinstance(b, MemoryBus)]

    def letters(topic: str) -> list[tuple[MemoryBus, DeadLetter]]:
        name = _dlq(topic)
        return [(b, d) for b in memory for d in b.dead_letters if d.topic == name]

    @api.get("", summary="The in-process bus's topics and dead letters")
    async def bus(who: OperatorPrincipal) -> BusOut:
        if not memory:
            return BusOut(kind="kafka")
        counts: dict[str, BusTopic] = {}
        for b in memory:
            for topic, n in b.published.items():
                counts.setdefault(topic, BusTopic(name=topic, published=0)).published += n
            for d in b.dead_letters:
                t = counts.setdefault(d.topic, BusTopic(name=d.topic, published=0))
                t.dead_letters += 1
        return BusOut(kind="memory", topics=sorted(counts.values(), key=lambda t: t.name))

    @api.get("/dead-letters", summary="Dead letters of a topic")
    async def dead_letters(topic: TopicQuery, who: OperatorPrincipal) -> list[DeadLetterOut]:
        return [
            DeadLetterOut(
                position=i,
                key=d.key,
                type=d.headers.get("ce_type", "?"),
                original_topic=d.headers.get("dlq_original_topic", topic.removesuffix(DLQ)),
                error=d.headers.get("dlq_error", ""),
                attempts=d.headers.get("dlq_attempts", ""),
            )
            for i, (_, d) in enumerate(letters(topic))
        ]

    @api.post("/dead-letters/replay", summary="Publish a topic's dead letters again")
    async def replay(topic: TopicQuery, who: OperatorPrincipal) -> CountOut:
        done = 0
        for b, d in letters(topic):
            headers = {k: v for k, v in d.headers.items() if not k.startswith("dlq_")}
            original = d.headers.get("dlq_original_topic", d.topic.removesuffix(DLQ))
            # published before it is forgotten: a crash in between replays it twice (consumers
            # are idempotent), never loses it; a failure again dead-letters it anew
            await b.publish(original, Envelope.from_kafka(headers, d.value))
            await b.forget([d])
            done += 1
        return CountOut(count=done)

    @api.delete("/dead-letters", summary="Delete a topic's dead letters")
    async def purge(topic: TopicQuery, who: OperatorPrincipal) -> CountOut:
        found = letters(topic)
        for b in memory:
            await b.forget([d for owner, d in found if owner is b])
        return CountOut(count=len(found))

    return api
