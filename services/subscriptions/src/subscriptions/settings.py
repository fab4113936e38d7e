"""Settings of the subscriptions service (environment, prefix `G60_WEBHOOK_`), beside the
platform's. http to loopback is for tests and `make run` only: production refuses it."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from g60_chassis.settings import PlatformSettings
from subscriptions.domain.delivery import SVIX_SCHEDULE_S, RetryRules
from subscriptions.service.ports import Rules


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="G60_WEBHOOK_", env_file=".env", extra="ignore")

    allow_loopback: bool = False  # http://127.0.0.1/… and http://localhost/… accepted
    retry_schedule_s: tuple[float, ...] = SVIX_SCHEDULE_S
    max_retry_after_s: float = Field(86400.0, gt=0)
    disable_after_s: float = Field(5 * 86400.0, gt=0)  # failing this long disables
    rotation_overlap_s: float = Field(86400.0, ge=0)
    lease_s: float = Field(60.0, gt=0)
    rescan_s: float = Field(30.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    timeout_s: float = Field(15.0, gt=0)
    max_response_bytes: int = Field(64 * 1024, ge=1)
    max_connections: int = Field(200, ge=1)
    max_in_flight: int = Field(8, ge=1)  # per endpoint, unless it says otherwise
    rate_per_s: float = Field(50.0, gt=0)
    # the delivery log keeps a delivery this long after its message was made
    retention_days: float = Field(30.0, gt=0)
    retention_every_s: float = Field(3600.0, gt=0)

    def checked(self, platform: PlatformSettings) -> WebhookSettings:
        if platform.environment == "production" and self.allow_loopback:
            raise ValueError("G60_WEBHOOK_ALLOW_LOOPBACK is not allowed in production")
        if self.retention_days * 86400 <= self.disable_after_s:
            raise ValueError(
                "G60_WEBHOOK_RETENTION_DAYS must be longer than G60_WEBHOOK_DISABLE_AFTER_S: "
                "a delivery still being retried would be deleted"
            )
        return self

    def rules(self) -> Rules:
        return Rules(
            retry=RetryRules(
                schedule_s=self.retry_schedule_s,
                max_retry_after_s=self.max_retry_after_s,
                lease_s=self.lease_s,
            ),
            disable_after=timedelta(seconds=self.disable_after_s),
            rotation_overlap=timedelta(seconds=self.rotation_overlap_s),
            max_in_flight=self.max_in_flight,
            rate_per_s=self.rate_per_s,
        )
