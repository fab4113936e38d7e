"""A partner's webhook endpoint: where events go, which ones, signed with which secrets, and
whether it is still enabled (and if not, why).

Tenancy (a decision, docs/webhooks.md): an endpoint belongs to the key that registered it and
receives only events about objects that key may read over HTTP — an operator everything; an
enterprise its own enterprise, projects and their matches; a funder its own funder record,
offers and their matches; a partner the public catalogue (enterprises, projects, funders,
offers), not matches. Capacity decisions carry no funder id and go to operators only (a funder
learns the same from `match.reserved` / `match.rejected`)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

OwnerRole = Literal["operator", "enterprise", "funder", "partner"]
EndpointStatus = Literal["enabled", "disabled"]
CATALOGUE = frozenset({"enterprise", "project", "funder", "offer"})


class RuleViolation(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def kind_of(event_type: str) -> str:
    """`g60.match.proposed.v1` → `match.proposed` (the name filters use)."""
    parts = event_type.split(".")
    if len(parts) >= 4 and parts[0] == "g60":
        return ".".join(parts[1:-1])
    return event_type


def check_filters(patterns: list[str], kinds: frozenset[str]) -> list[str]:
    """Each pattern is `*`, `family.*` or an exact kind among `kinds`; returns them sorted,
    without repeats. Raises RuleViolation naming the bad one."""
    families = {k.split(".")[0] for k in kinds}
    for p in patterns:
        ok = p == "*" or p in kinds or (p.endswith(".*") and p[:-2] in families)
        if not ok:
            raise RuleViolation(f"unknown event type filter {p!r}", "event_types")
    if not patterns:
        raise RuleViolation("at least one event type (or '*') is needed", "event_types")
    return sorted(set(patterns))


def wanted(patterns: list[str], kind: str) -> bool:
    family = kind.split(".")[0]
    return any(p in ("*", kind) or p == f"{family}.*" for p in patterns)


class EventFacts(BaseModel):
    """What tenancy needs to know about one event."""

    kind: str
    subject: str
    enterprise_id: str | None = None
    funder_id: str | None = None


def visible(role: OwnerRole, tenant: str | None, facts: EventFacts) -> bool:
    family = facts.kind.split(".")[0]
    if role == "operator":
        return True
    if role == "partner":
        return family in CATALOGUE
    if family == "capacity" or tenant is None:
        return False
    if role == "enterprise":
        return (family == "enterprise" and facts.subject == tenant) or (
            family != "enterprise" and facts.enterprise_id == tenant
        )
    return (family == "funder" and facts.subject == tenant) or (
        family != "funder" and facts.funder_id == tenant
    )


class Secret(BaseModel):
    value: str
    created_at: datetime
    expires_at: datetime | None = None  # set when a rotation replaced it


class Endpoint(BaseModel):
    id: str
    owner_role: OwnerRole
    owner_tenant: str | None = None
    owner_key_id: str  # the first key of the owner key's rotation chain (see KeyStore.lineage)
    url: str
    description: str = ""
    event_types: list[str]
    ordered: bool = False  # one subject's events one at a time, in order
    max_in_flight: int = 8
    rate_per_s: float = 50.0
    status: EndpointStatus = "enabled"
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    secrets: list[Secret]
    request_hash: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def receives(self, facts: EventFacts) -> bool:
        return wanted(self.event_types, facts.kind) and visible(
            self.owner_role, self.owner_tenant, facts
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret first, then any still in their rotation overlap."""
        return [s.value for s in self.secrets if s.expires_at is None or s.expires_at > now]

    def rotate(self, now: datetime, overlap: timedelta) -> str:
        for s in self.secrets:
            if s.expires_at is None or s.expires_at > now + overlap:
                s.expires_at = now + overlap
        self.secrets = [s for s in self.secrets if s.expires_at is None or s.expires_at > now]
        fresh = Secret(value=new_secret(), created_at=now)
        self.secrets.insert(0, fresh)
        self.updated_at = now
        return fresh.value

    def disable(self, reason: str, now: datetime) -> bool:
        if self.status == "disabled":
            return False
        self.status, self.disabled_reason, self.disabled_at = "disabled", reason, now
        self.updated_at = now
        return True

    def enable(self, now: datetime) -> None:
        self.status, self.disabled_reason, self.disabled_at = "enabled", None, None
        self.failing_since = None
        self.updated_at = now

    def succeeded(self, now: datetime) -> bool:
        """Record a 2xx; True when the endpoint document changed (it was failing)."""
        changed = self.failing_since is not None
        self.failing_since = None
        return changed

    def failed(self, now: datetime, disable_after: timedelta) -> bool:
        """Record a failed attempt; True when the endpoint document changed. Failing without a
        success for `disable_after` disables it, with the reason for its owner to read."""
        if self.status == "disabled":
            return False
        if self.failing_since is None:
            self.failing_since = now
            return True
        if now - self.failing_since >= disable_after:
            since = self.failing_since.isoformat()
            return self.disable(f"every delivery failed since {since}", now)
        return False
