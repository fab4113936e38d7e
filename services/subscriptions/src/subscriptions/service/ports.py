"""Ports of the subscriptions service and the typed values that cross them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from subscriptions.domain.delivery import RetryRules, SendResult
from subscriptions.domain.endpoint import EventFacts


@dataclass(frozen=True)
class WebhookRequest:
    """One signed POST: the adapter signs `body` with every secret (Standard Webhooks)."""

    url: str
    message_id: str
    timestamp: datetime
    body: str
    secrets: list[str]


class Sender(Protocol):
    async def send(self, request: WebhookRequest) -> SendResult:
        """Never raises for the receiver's failures: they are a SendResult with an error."""


class UrlGuard(Protocol):
    async def check(self, url: str) -> None:
        """Raises UrlRefused when the URL, or an address its host resolves to, is refused."""


class KeyLineage(Protocol):
    async def lineage(self, key_id: str) -> str:
        """The first key of `key_id`'s rotation chain: a partner's endpoints are tied to it,
        so the key a rotation issues manages them too."""


class Clock(Protocol):
    def __call__(self) -> datetime: ...


@dataclass(frozen=True)
class IncomingEvent:
    """A platform event as the subscriptions service sees it: the facts tenancy and filters
    need, and the CloudEvent in structured mode (the webhook body)."""

    id: str
    type: str
    time: datetime
    facts: EventFacts
    body: str


@dataclass(frozen=True)
class EndpointDraft:
    url: str
    event_types: list[str]
    description: str = ""
    ordered: bool = False
    max_in_flight: int | None = None
    rate_per_s: float | None = None


@dataclass(frozen=True)
class EndpointChanges:
    """A PATCH: only the fields set (None: unchanged)."""

    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    ordered: bool | None = None
    max_in_flight: int | None = None
    rate_per_s: float | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class Rules:
    """Delivery rules from the settings."""

    retry: RetryRules = field(default_factory=RetryRules)
    disable_after: timedelta = timedelta(days=5)
    rotation_overlap: timedelta = timedelta(hours=24)
    max_in_flight: int = 8
    rate_per_s: float = 50.0
