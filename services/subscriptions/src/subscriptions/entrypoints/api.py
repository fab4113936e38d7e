"""HTTP API of the subscriptions service (v1): webhook endpoints, their deliveries, retry and
replay."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Response, status

from g60_chassis.deps import CurrentPrincipal, Cursor, IdempotencyKey, IfMatch, Limit, set_etag
from g60_contracts.common import Page, Problem
from g60_contracts.subscriptions import (
    AttemptOut,
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    ReplayOut,
    RotateIn,
    RotateOut,
)
from subscriptions.domain.delivery import Delivery, DeliveryStatus
from subscriptions.domain.endpoint import Endpoint
from subscriptions.service.ports import EndpointChanges, EndpointDraft

if TYPE_CHECKING:
    from subscriptions.bootstrap import Subscriptions

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 412, 422)
}
_OUT = set(EndpointOut.model_fields)


def endpoint_out(e: Endpoint) -> EndpointOut:
    return EndpointOut.model_validate(e.model_dump(include=_OUT))


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        endpoint_id=d.endpoint_id,
        event_id=d.event_id,
        event_type=d.event_type,
        subject=d.subject,
        status=d.status,
        attempts=[AttemptOut.model_validate(a.model_dump()) for a in d.attempts],
        next_attempt_at=d.next_attempt_at,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def router(svc: Subscriptions) -> APIRouter:
    api = APIRouter(prefix="/v1/webhook-endpoints", responses=ERRORS, tags=["webhooks"])
    endpoints, deliveries = svc.endpoints, svc.deliveries

    @api.post("", status_code=201, summary="Register a webhook endpoint (returns its secret)")
    async def register(
        body: EndpointIn, who: CurrentPrincipal, response: Response, key: IdempotencyKey
    ) -> EndpointCreated:
        draft = EndpointDraft(**body.model_dump())
        endpoint, created = await endpoints.register(who, draft, key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"/v1/webhook-endpoints/{endpoint.id}"
        set_etag(response, endpoint.version)
        out = endpoint_out(endpoint).model_dump()
        return EndpointCreated(**out, secret=endpoint.secrets[0].value)

    @api.get("", summary="Your webhook endpoints (an operator: all)")
    async def list_endpoints(
        who: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[EndpointOut]:
        items, next_cursor = await endpoints.list(who, cursor, limit)
        return Page[EndpointOut](items=[endpoint_out(e) for e in items], next_cursor=next_cursor)

    @api.get("/{id}", summary="Read an endpoint (why it is disabled, if it is)")
    async def get_endpoint(id: str, who: CurrentPrincipal, response: Response) -> EndpointOut:
        endpoint = await endpoints.get(who, id)
        set_etag(response, endpoint.version)
        return endpoint_out(endpoint)

    @api.patch("/{id}", summary="Change an endpoint; `enabled` disables or enables it")
    async def update_endpoint(
        id: str, body: EndpointPatch, who: CurrentPrincipal, if_match: IfMatch, response: Response
    ) -> EndpointOut:
        changes = EndpointChanges(**body.model_dump(exclude_unset=True, exclude_none=True))
        endpoint = await endpoints.update(who, id, changes, if_match)
        set_etag(response, endpoint.version)
        return endpoint_out(endpoint)

    @api.post("/{id}/disable", summary="Disable an endpoint")
    async def disable_endpoint(id: str, who: CurrentPrincipal) -> EndpointOut:
        return endpoint_out(await endpoints.disable(who, id))

    @api.post("/{id}/rotate", summary="A new signing secret; the old one signs for an overlap")
    async def rotate_secret(
        id: str, who: CurrentPrincipal, body: RotateIn | None = None
    ) -> RotateOut:
        endpoint, secret = await endpoints.rotate(who, id, body.overlap_s if body else None)
        return RotateOut(endpoint=endpoint_out(endpoint), secret=secret)

    @api.post("/{id}/test", status_code=202, summary="Send a test event")
    async def send_test(id: str, who: CurrentPrincipal) -> DeliveryOut:
        return delivery_out(await endpoints.send_test(who, id))

    @api.get("/{id}/deliveries", summary="The delivery log: attempts, status codes, latency")
    async def list_deliveries(
        id: str,
        who: CurrentPrincipal,
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[DeliveryStatus | None, Query()] = None,
    ) -> Page[DeliveryOut]:
        await endpoints.get(who, id)
        items, next_cursor = await deliveries.log(id, status, cursor, limit)
        return Page[DeliveryOut](items=[delivery_out(d) for d in items], next_cursor=next_cursor)

    @api.get("/{id}/deliveries/{delivery_id}", summary="One delivery")
    async def get_delivery(id: str, delivery_id: str, who: CurrentPrincipal) -> DeliveryOut:
        await endpoints.get(who, id)
        return delivery_out(await deliveries.get(id, delivery_id))

    @api.post(
        "/{id}/deliveries/{delivery_id}/retry",
        status_code=202,
        summary="Send a delivery again now (same webhook-id)",
    )
    async def retry_delivery(id: str, delivery_id: str, who: CurrentPrincipal) -> DeliveryOut:
        await endpoints.get(who, id)
        return delivery_out(await deliveries.retry(id, delivery_id))

    @api.post("/{id}/replay", status_code=202, summary="Send again every delivery since a time")
    async def replay(
        id: str,
        who: CurrentPrincipal,
        since: Annotated[datetime, Query(description="RFC 3339; deliveries created since")],
    ) -> ReplayOut:
        await endpoints.get(who, id)
        count = await deliveries.replay(id, since)
        return ReplayOut(endpoint_id=id, since=since, rescheduled=count)

    return api
