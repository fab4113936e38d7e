"""AsyncAPI 3.0 document of a service's topics, generated from the contracts with FastStream's
specification builder (a broker that is never connected, used as a schema registry)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from g60_contracts.events import PAYLOADS, EventType

CE_NOTE = (
    "CloudEvents 1.0, Kafka binary mode: headers ce_specversion, ce_id, ce_type (= {type}), "
    "ce_source, ce_subject (= the aggregate id, also the record key), ce_time; the value is "
    "this JSON payload."
)


def asyncapi_document(
    title: str,
    publishes: Mapping[str, Sequence[EventType]],
    consumes: Mapping[str, Sequence[EventType]],
    *,
    bootstrap: str = "127.0.0.1:9092",
    description: str = "",
) -> dict[str, Any]:
    broker = KafkaBroker(bootstrap, description="Apache Kafka; dead letters on <topic>.dlq")
    for topic, types in publishes.items():
        for event_type in types:
            broker.publisher(
                topic,
                title=f"{topic}:{event_type.value}",
                description=CE_NOTE.format(type=event_type.value),
                schema=PAYLOADS[event_type],
            )
    for topic, types in consumes.items():
        names = ", ".join(t.value for t in types)

        async def _doc_only(body: dict[str, Any]) -> None:  # never called: documents a consumer
            return None

        broker.subscriber(topic, title=f"{topic}:consumer", description=f"consumes {names}")(
            _doc_only
        )
    spec = AsyncAPI(broker, title=title, version="1.0.0", description=description)
    return dict(json.loads(spec.to_specification().to_json()))
