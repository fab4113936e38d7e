"""Use cases on endpoints: register, read, list, change, disable, rotate the secret, send a
test event. An endpoint belongs to the key that registered it (its tenant for enterprise and
funder keys, the key itself for partners); another owner's endpoint is a 404. Operators see
and manage every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.errors import NotFound, PreconditionFailed, Unprocessable
from g60_chassis.idempotency import create_once, new_id, request_hash
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from subscriptions.domain.delivery import Delivery
from subscriptions.domain.endpoint import (
    Endpoint,
    OwnerRole,
    RuleViolation,
    Secret,
    check_filters,
    new_secret,
)
from subscriptions.domain.ssrf import UrlRefused
from subscriptions.service.deliveries import Deliveries
from subscriptions.service.ports import (
    Clock,
    EndpointChanges,
    EndpointDraft,
    KeyLineage,
    Rules,
    UrlGuard,
)

OWNERS = (Role.operator, Role.enterprise, Role.funder, Role.partner)


def _rule(exc: RuleViolation) -> Unprocessable:
    return Unprocessable(str(exc), exc.field)


def owns(principal: Principal, endpoint: Endpoint, lineage: str) -> bool:
    """`lineage`: the first key of the principal's rotation chain (a partner has no tenant:
    its endpoints are tied to that key, so `make keys-rotate`'s successor still manages them;
    an endpoint registered under the key id itself before lineages existed still counts)."""
    if principal.role == Role.operator:
        return True
    if principal.role.value != endpoint.owner_role:
        return False
    if principal.role == Role.partner:
        return endpoint.owner_key_id in (lineage, principal.key_id)
    return endpoint.owner_tenant == principal.tenant_id


class EndpointsService:
    def __init__(
        self,
        endpoints: Aggregates[Endpoint],
        deliveries: Deliveries,
        guard: UrlGuard,
        kinds: frozenset[str],
        rules: Rules,
        clock: Clock,
        keys: KeyLineage,
        changed: Callable[[Endpoint], None] = lambda endpoint: None,
    ) -> None:
        self.endpoints, self.deliveries, self.guard, self.keys = endpoints, deliveries, guard, keys
        self.kinds, self.rules, self.clock, self.changed = kinds, rules, clock, changed

    async def _lineage(self, principal: Principal) -> str:
        if principal.role != Role.partner:
            return principal.key_id
        return await self.keys.lineage(principal.key_id)

    async def _check_url(self, url: str) -> None:
        try:
            await self.guard.check(url)
        except UrlRefused as exc:
            raise Unprocessable(str(exc), "url") from exc

    def _filters(self, patterns: list[str]) -> list[str]:
        try:
            return check_filters(patterns, self.kinds)
        except RuleViolation as exc:
            raise _rule(exc) from exc

    async def register(
        self, principal: Principal, draft: EndpointDraft, idempotency_key: str | None = None
    ) -> tuple[Endpoint, bool]:
        """(endpoint, created); the created endpoint carries its signing secret."""
        principal.require(*OWNERS)
        await self._check_url(draft.url)
        event_types = self._filters(draft.event_types)
        digest = request_hash(asdict(draft))
        id = new_id("whe", principal, idempotency_key)
        role: OwnerRole = principal.role.value
        lineage = await self._lineage(principal)

        async def create() -> Endpoint:
            now = self.clock()
            endpoint = Endpoint(
                id=id,
                owner_role=role,
                owner_tenant=principal.tenant_id,
                owner_key_id=lineage,
                url=draft.url,
                description=draft.description,
                event_types=event_types,
                ordered=draft.ordered,
                max_in_flight=draft.max_in_flight or self.rules.max_in_flight,
                rate_per_s=draft.rate_per_s or self.rules.rate_per_s,
                secrets=[Secret(value=new_secret(), created_at=now)],
                request_hash=digest,
                created_at=now,
                updated_at=now,
            )
            added = await self.endpoints.add(endpoint)
            self.changed(added)
            return added

        return await create_once(self.endpoints, id, digest, bool(idempotency_key), create)

    async def get(self, principal: Principal, id: str) -> Endpoint:
        principal.require(*OWNERS)
        endpoint = await self.endpoints.get(id)
        if endpoint is None or not owns(principal, endpoint, await self._lineage(principal)):
            raise NotFound.of("webhook endpoint", id)
        return endpoint

    async def list(
        self, principal: Principal, cursor: str | None, limit: int
    ) -> tuple[list[Endpoint], str | None]:
        principal.require(*OWNERS)
        if principal.role == Role.operator:
            return await self.endpoints.list(None, cursor, limit)
        where: dict[str, str | None] = {"owner_role": principal.role.value}
        if principal.role == Role.partner:
            where["owner_key_id"] = await self._lineage(principal)
        else:
            where["owner_tenant"] = principal.tenant_id
        return await self.endpoints.list(where, cursor, limit)

    async def update(
        self, principal: Principal, id: str, changes: EndpointChanges, if_match: int | None
    ) -> Endpoint:
        await self.get(principal, id)
        if changes.url is not None:
            await self._check_url(changes.url)
        event_types = None if changes.event_types is None else self._filters(changes.event_types)

        async def attempt() -> Endpoint:
            endpoint = await self.get(principal, id)
            if if_match is not None and if_match != endpoint.version:
                raise PreconditionFailed(
                    f"the endpoint is at version {endpoint.version}, not {if_match}",
                    current_version=endpoint.version,
                )
            now = self.clock()
            for name in ("url", "description", "ordered", "max_in_flight", "rate_per_s"):
                value = getattr(changes, name)
                if value is not None:
                    setattr(endpoint, name, value)
            if event_types is not None:
                endpoint.event_types = event_types
            if changes.enabled is True and endpoint.status == "disabled":
                endpoint.enable(now)
            elif changes.enabled is False:
                endpoint.disable(f"disabled by key {principal.key_id}", now)
            endpoint.updated_at = now
            saved = await self.endpoints.save(endpoint)
            self.changed(saved)
            return saved

        result: Endpoint = await retry_on_conflict(attempt)
        return result

    async def disable(self, principal: Principal, id: str) -> Endpoint:
        return await self.update(principal, id, EndpointChanges(enabled=False), None)

    async def rotate(
        self, principal: Principal, id: str, overlap_s: float | None = None
    ) -> tuple[Endpoint, str]:
        """A new current secret; the previous ones keep signing for the overlap."""
        await self.get(principal, id)
        overlap = self.rules.rotation_overlap if overlap_s is None else timedelta(seconds=overlap_s)
        fresh: list[str] = []

        async def attempt() -> Endpoint:
            endpoint = await self.get(principal, id)
            fresh[:] = [endpoint.rotate(self.clock(), overlap)]
            saved = await self.endpoints.save(endpoint)
            self.changed(saved)
            return saved

        endpoint: Endpoint = await retry_on_conflict(attempt)
        return endpoint, fresh[0]

    async def send_test(self, principal: Principal, id: str) -> Delivery:
        endpoint = await self.get(principal, id)
        if endpoint.status == "disabled":
            raise Unprocessable(
                f"the endpoint is disabled ({endpoint.disabled_reason}); enable it first", "status"
            )
        return await self.deliveries.test(endpoint)
