"""Inbound translation: a platform event (CloudEvent in Kafka binary mode) → the facts tenancy
needs, read through the contract payload model, and the CloudEvent in structured mode that is
the webhook body. Types the contracts do not know are skipped."""

from __future__ import annotations

from g60_chassis.envelope import Envelope
from g60_contracts.events import PAYLOADS, EventType
from subscriptions.domain.endpoint import EventFacts, kind_of
from subscriptions.service.deliveries import structured
from subscriptions.service.ports import IncomingEvent

KINDS = frozenset(kind_of(t.value) for t in EventType)


def incoming(event: Envelope) -> IncomingEvent | None:
    try:
        model = PAYLOADS[EventType(event.type)]
    except ValueError:
        return None
    payload = model.model_validate(event.data)  # malformed: ValidationError → dead letter
    facts = EventFacts(
        kind=kind_of(event.type),
        subject=event.subject,
        enterprise_id=getattr(payload, "enterprise_id", None),
        funder_id=getattr(payload, "funder_id", None),
    )
    body = structured(event.id, event.type, event.source, event.subject, event.time, event.data)
    return IncomingEvent(event.id, event.type, event.time, facts, body)
