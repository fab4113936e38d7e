"""Platform events as the other services publish them, built from the contracts' examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from g60_chassis.envelope import Envelope
from g60_contracts.events import EventType
from g60_contracts.funding import OfferOut
from g60_contracts.matching import MATCH_EXAMPLE
from g60_contracts.projects import ProjectOut
from subscriptions.domain.delivery import Delivery

TOPIC = {"project": "g60.projects", "offer": "g60.funding", "match": "g60.matches"}


def _example(model: Any) -> dict[str, Any]:
    return dict(model.model_config["json_schema_extra"]["examples"][0])


def project(enterprise_id: str, id: str = "prj_1", kind: str = "submitted") -> Envelope:
    data = {**_example(ProjectOut), "id": id, "enterprise_id": enterprise_id}
    return Envelope(f"g60.project.{kind}.v1", "/g60/projects", id, data)


def offer(funder_id: str, id: str = "off_1", kind: str = "published") -> Envelope:
    data = {**_example(OfferOut), "id": id, "funder_id": funder_id}
    return Envelope(f"g60.offer.{kind}.v1", "/g60/funding", id, data)


def match(
    enterprise_id: str, funder_id: str, id: str = "mat_1", kind: str = "proposed"
) -> Envelope:
    data = {**MATCH_EXAMPLE, "id": id, "enterprise_id": enterprise_id, "funder_id": funder_id}
    return Envelope(EventType(f"g60.match.{kind}.v1").value, "/g60/matching", id, data)


def capacity(offer_id: str = "off_1") -> Envelope:
    data = {
        "match_id": "mat_1",
        "offer_id": offer_id,
        "project_id": "prj_1",
        "amount_cny": 1,
        "remaining_cny": 2,
    }
    return Envelope(EventType.capacity_reserved.value, "/g60/funding", offer_id, data)


def topic_of(event: Envelope) -> str:
    family = event.type.split(".")[1]
    return TOPIC.get(family, "g60.funding")


def delivery(n: int, at: datetime, id: str | None = None) -> Delivery:
    """A new pending delivery made at `at`, due then."""
    return Delivery(
        id=id or f"msg_{n:04d}",
        endpoint_id="whe_1",
        event_id=f"evt_{n}",
        event_type="g60.project.submitted.v1",
        subject=f"prj_{n}",
        seq=n,
        body="{}",
        next_attempt_at=at,
        created_at=at,
        updated_at=at,
    )
