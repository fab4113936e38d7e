"""One event on its way to one endpoint: the message (its id is the `webhook-id`, the same on
every attempt and replay), its attempts, and when the next one is due.

Retry schedule (Svix's): after the first attempt fails, again after 5 s, 5 min, 30 min, 2 h,
5 h, 10 h and 10 h; then the delivery has failed. A `Retry-After` from the receiver pushes the
next attempt later (never earlier), up to a cap."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

DeliveryStatus = Literal["pending", "delivered", "failed"]
SVIX_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class SendResult(BaseModel):
    """What one HTTP attempt came back with (`status_code` None: no response at all)."""

    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


class Attempt(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0


class RetryRules(BaseModel):
    schedule_s: tuple[float, ...] = SVIX_SCHEDULE_S
    max_retry_after_s: float = 86400.0
    lease_s: float = 60.0  # an attempt in progress; after a crash it is retried after this


class Delivery(BaseModel):
    id: str  # the webhook-id
    endpoint_id: str
    event_id: str
    event_type: str
    subject: str
    seq: int  # fan-out order: one subject's deliveries go in this order when asked
    body: str  # the CloudEvent in structured mode, exactly as signed and sent
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = []
    round_start: int = 0  # attempts before a manual retry or replay restarted the schedule
    tries: int = 0  # attempts since the schedule (re)started: where the retry schedule is
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def due(self, now: datetime, holding_lease: bool = False) -> bool:
        """To be attempted now: by anyone, or (`holding_lease`) by the holder of its lease."""
        if self.status != "pending" or self.next_attempt_at is None:
            return False
        if holding_lease:
            return self.next_attempt_at <= now and self.lease_until is not None
        return self.next_attempt_at <= now and (self.lease_until is None or self.lease_until <= now)

    def lease_left(self, now: datetime) -> float:
        return 0.0 if self.lease_until is None else (self.lease_until - now).total_seconds()

    def claim(self, now: datetime, rules: RetryRules) -> None:
        self.lease_until = now + timedelta(seconds=rules.lease_s)
        self.updated_at = now

    def record(self, result: SendResult, now: datetime, rules: RetryRules) -> None:
        """The outcome of one attempt: delivered, or the next attempt scheduled, or failed."""
        self.attempts.append(
            Attempt(
                at=now,
                status_code=result.status_code,
                error=result.error,
                latency_ms=result.latency_ms,
            )
        )
        self.lease_until, self.updated_at = None, now
        self.tries += 1
        if result.ok:
            self.status, self.next_attempt_at = "delivered", None
            return
        delay = next_delay(self.tries, rules.schedule_s)
        if delay is None or result.gone:
            self.status, self.next_attempt_at = "failed", None
            return
        if result.retry_after_s is not None:
            delay = max(delay, min(result.retry_after_s, rules.max_retry_after_s))
        self.next_attempt_at = now + timedelta(seconds=delay)

    def abandon(self, reason: str, now: datetime) -> None:
        """Not sent at all (the endpoint is disabled); a replay can send it later."""
        self.attempts.append(Attempt(at=now, error=reason))
        self.status, self.next_attempt_at, self.lease_until = "failed", None, None
        self.updated_at = now

    def again(self, now: datetime) -> bool:
        """A manual retry or a replay: due now, the schedule restarted, the same id. False when
        it is already pending."""
        if self.status == "pending":
            return False
        self.status, self.next_attempt_at, self.lease_until = "pending", now, None
        self.round_start, self.tries, self.updated_at = len(self.attempts), 0, now
        return True


def next_delay(failed: int, schedule: Sequence[float]) -> float | None:
    """Seconds until the next attempt after `failed` failed attempts; None when none is left."""
    return schedule[failed] if failed < len(schedule) else None
