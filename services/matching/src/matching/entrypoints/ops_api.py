"""Operator routes of the matching service: the corridor's statistics, a match's decision
record, and a rematch on demand (`g60 report`, `g60 audit`, `g60 rematch`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from g60_chassis.auth import OperatorPrincipal
from g60_chassis.deps import CurrentPrincipal
from g60_contracts.audit import AuditOut
from g60_contracts.common import Problem
from g60_contracts.ops import RematchIn, RematchOut
from g60_contracts.stats import StatsOut
from matching.service.audit import DecisionLog
from matching.service.handlers import MatchingService
from matching.service.stats import Stats

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 422)
}


def router(svc: MatchingService, stats: Stats, audit: DecisionLog) -> APIRouter:
    api = APIRouter(prefix="/v1", responses=ERRORS)

    @api.get(
        "/stats",
        tags=["operations"],
        summary="What the corridor matched and funded (operator: all; others: their own)",
    )
    async def get_stats(
        who: CurrentPrincipal,
        since: Annotated[
            datetime | None, Query(description="only needs and matches created since")
        ] = None,
    ) -> StatsOut:
        return await stats.figures(who, since)

    @api.get("/matches/{id}/audit", tags=["matches"], summary="A match's decision record")
    async def get_audit(id: str, who: CurrentPrincipal) -> AuditOut:
        match = await svc.lifecycle.get(who, id)
        return await audit.record(who, match)

    @api.post(
        "/rematch",
        tags=["operations"],
        summary="Reconcile projects' proposals now and, optionally, run the allocation",
    )
    async def rematch(body: RematchIn, who: OperatorPrincipal) -> RematchOut:
        await svc.loaded.wait()
        ids = [p for p in body.project_ids or [] if svc.engine.has_project(p)]
        if ids:
            await svc.proposals.reconcile(ids)
        out = RematchOut(projects=len(ids), market_version=svc.engine.version)
        if body.allocate:
            # through the background refresher, never beside it: two runs applying their
            # flags at once could interleave
            svc.allocation.changed()
            await svc.allocation.settled()
            out.allocation_version = svc.allocation.version
            out.assignments = len(svc.engine.allocation_map(fresh=False))
        return out

    return api
