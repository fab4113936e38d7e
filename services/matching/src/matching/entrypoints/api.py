"""HTTP API of the matching service (v1): ranked proposals with both sides' score breakdowns,
explanations and what-if advice, and the match lifecycle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from g60_chassis.deps import CurrentPrincipal, Cursor, Limit, set_etag
from g60_contracts.common import Page, Problem
from g60_contracts.matching import CloseIn, DeclineIn, ExplainOut, MatchOut
from matching.domain.match import Match
from matching.service.handlers import MatchingService

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 422)
}
SideParam = Annotated[
    Literal["enterprise", "funder"] | None,
    Query(description="operators only: which side they act for"),
]
AllParam = Annotated[bool, Query(description="also list retracted matches")]


def _out(match: Match) -> MatchOut:
    return MatchOut.model_validate(match.model_dump())


def _page(page: tuple[list[Match], str | None]) -> Page[MatchOut]:
    matches, cursor = page
    return Page[MatchOut](items=[_out(m) for m in matches], next_cursor=cursor)


def router(svc: MatchingService) -> APIRouter:
    api = APIRouter(prefix="/v1", responses=ERRORS)

    @api.get("/projects/{id}/matches", tags=["matches"], summary="Ranked matches of a project")
    async def project_matches(
        id: str,
        who: CurrentPrincipal,
        all: AllParam = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[MatchOut]:
        return _page(await svc.queries.project_matches(who, id, all, cursor, limit))

    @api.get("/offers/{id}/matches", tags=["matches"], summary="Ranked matches of an offer")
    async def offer_matches(
        id: str,
        who: CurrentPrincipal,
        all: AllParam = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[MatchOut]:
        return _page(await svc.queries.offer_matches(who, id, all, cursor, limit))

    @api.get(
        "/projects/{id}/explain",
        tags=["matches"],
        summary="Why (or why not) this pair, and what would make more offers eligible",
        responses={
            503: {
                "model": Problem,
                "content": {"application/problem+json": {}},
                "description": "the engine is loading after a start: ask again after Retry-After",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            }
        },
    )
    async def explain(
        id: str,
        who: CurrentPrincipal,
        offer_id: Annotated[str | None, Query(description="the offer to explain")] = None,
    ) -> ExplainOut:
        return await svc.queries.explain(who, id, offer_id)

    @api.get("/matches/{id}", tags=["matches"], summary="Read a match")
    async def get_match(id: str, who: CurrentPrincipal, response: Response) -> MatchOut:
        match = await svc.lifecycle.get(who, id)
        set_etag(response, match.version)
        return _out(await svc.queries.match(match))

    @api.post("/matches/{id}/accept", tags=["matches"], summary="Accept a proposed match")
    async def accept(id: str, who: CurrentPrincipal, side: SideParam = None) -> MatchOut:
        return _out(await svc.lifecycle.accept(who, id, side))

    @api.post("/matches/{id}/decline", tags=["matches"], summary="Decline a match")
    async def decline(
        id: str, who: CurrentPrincipal, body: DeclineIn | None = None, side: SideParam = None
    ) -> MatchOut:
        return _out(await svc.lifecycle.decline(who, id, side, body.reason if body else ""))

    @api.post("/matches/{id}/close", tags=["matches"], summary="Close a reserved deal (funder)")
    async def close(id: str, body: CloseIn, who: CurrentPrincipal) -> MatchOut:
        return _out(await svc.lifecycle.close(who, id, body.amount_cny))

    return api
