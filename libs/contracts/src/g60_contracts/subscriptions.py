"""Public HTTP bodies of the subscriptions service: webhook endpoints and their deliveries.

Webhooks follow the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
`webhook-signature` headers); the body is the CloudEvent 1.0 in structured mode (JSON)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

_IN = ConfigDict(extra="forbid")

EventFilter = str
Url = str


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://loans.bank.example/g60/webhooks",
                    "event_types": ["match.agreed", "match.closed", "offer.*"],
                    "description": "loan system",
                }
            ]
        },
    )
    url: Url = Field(min_length=1, max_length=2000, description="https (http only for loopback)")
    event_types: list[EventFilter] = Field(
        min_length=1,
        max_length=50,
        description="`match.proposed`, `project.*`, `*` …: the event type without `g60.`/`.v1`",
    )
    description: str = Field("", max_length=500)
    ordered: StrictBool = Field(False, description="one subject's events one at a time, in order")
    max_in_flight: int | None = Field(None, ge=1, le=64, description="concurrent requests")
    rate_per_s: float | None = Field(None, gt=0, le=1000, description="requests a second")


class EndpointPatch(BaseModel):
    model_config = _IN
    url: Url | None = Field(None, min_length=1, max_length=2000)
    event_types: list[EventFilter] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=500)
    ordered: StrictBool | None = None
    max_in_flight: int | None = Field(None, ge=1, le=64)
    rate_per_s: float | None = Field(None, gt=0, le=1000)
    enabled: StrictBool | None = Field(None, description="false disables; true enables again")


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    ordered: bool
    max_in_flight: int
    rate_per_s: float
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None = Field(None, description="why it was disabled")
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    owner_role: str
    owner_tenant: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int


class EndpointCreated(EndpointOut):
    secret: str = Field(description="the signing secret (`whsec_…`); shown once")


class RotateIn(BaseModel):
    model_config = _IN
    overlap_s: float | None = Field(
        None, ge=0, le=7 * 86400, description="the old secret keeps signing this long"
    )


class RotateOut(BaseModel):
    endpoint: EndpointOut
    secret: str = Field(description="the new signing secret; shown once")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float


class DeliveryOut(BaseModel):
    id: str = Field(description="the webhook-id, the same on every attempt and replay")
    endpoint_id: str
    event_id: str
    event_type: str
    subject: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ReplayOut(BaseModel):
    endpoint_id: str
    since: datetime
    rescheduled: int
