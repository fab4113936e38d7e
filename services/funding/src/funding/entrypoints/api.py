"""HTTP API of the funding service (v1): funders and their offers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from funding.domain.model import Funder, Offer
from funding.service.handlers import FundingService
from g60_chassis.deps import CurrentPrincipal, Cursor, IdempotencyKey, IfMatch, Limit, set_etag
from g60_contracts.common import Page, Problem
from g60_contracts.enums import Instrument, OfferStatus
from g60_contracts.funding import FunderIn, FunderOut, OfferIn, OfferOut, OfferPatch

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 412, 422)
}


def _funder(f: Funder) -> FunderOut:
    return FunderOut.model_validate(f.model_dump())


def _offer(o: Offer) -> OfferOut:
    return OfferOut.model_validate(o.model_dump(exclude={"reservations"}))


def router(svc: FundingService) -> APIRouter:
    api = APIRouter(prefix="/v1", responses=ERRORS)

    @api.post("/funders", status_code=201, tags=["funders"], summary="Register a funder")
    async def register_funder(
        body: FunderIn, who: CurrentPrincipal, response: Response, key: IdempotencyKey
    ) -> FunderOut:
        funder, created = await svc.register_funder(who, body.model_dump(), key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"/v1/funders/{funder.id}"
        return _funder(funder)

    @api.get("/funders/{id}", tags=["funders"], summary="Read a funder")
    async def get_funder(id: str, who: CurrentPrincipal) -> FunderOut:
        return _funder(await svc.get_funder(who, id))

    @api.post("/offers", status_code=201, tags=["offers"], summary="Publish an offer or product")
    async def publish_offer(
        body: OfferIn, who: CurrentPrincipal, response: Response, key: IdempotencyKey
    ) -> OfferOut:
        offer, created = await svc.publish_offer(who, body.model_dump(), key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = f"/v1/offers/{offer.id}"
        set_etag(response, offer.version)
        return _offer(offer)

    @api.get("/offers/{id}", tags=["offers"], summary="Read an offer, with its remaining capacity")
    async def get_offer(id: str, who: CurrentPrincipal, response: Response) -> OfferOut:
        offer = await svc.get_offer(who, id)
        set_etag(response, offer.version)
        return _offer(offer)

    @api.get("/offers", tags=["offers"], summary="The offer catalogue")
    async def list_offers(
        who: CurrentPrincipal,
        limit: Limit = 50,
        cursor: Cursor = None,
        funder_id: Annotated[str | None, Query()] = None,
        instrument: Annotated[Instrument | None, Query()] = None,
        status: Annotated[OfferStatus | None, Query()] = None,
    ) -> Page[OfferOut]:
        filters = {"funder_id": funder_id, "instrument": instrument, "status": status}
        items, next_cursor = await svc.list_offers(
            who, {k: None if v is None else str(v) for k, v in filters.items()}, cursor, limit
        )
        return Page[OfferOut](items=[_offer(o) for o in items], next_cursor=next_cursor)

    @api.patch("/offers/{id}", tags=["offers"], summary="Change an offer")
    async def update_offer(
        id: str, body: OfferPatch, who: CurrentPrincipal, if_match: IfMatch, response: Response
    ) -> OfferOut:
        changes = body.model_dump(exclude_unset=True)
        offer = await svc.update_offer(who, id, changes, if_match)
        set_etag(response, offer.version)
        return _offer(offer)

    @api.post("/offers/{id}/withdraw", tags=["offers"], summary="Withdraw an offer")
    async def withdraw_offer(id: str, who: CurrentPrincipal, response: Response) -> OfferOut:
        offer = await svc.withdraw_offer(who, id)
        set_etag(response, offer.version)
        return _offer(offer)

    return api
