"""What the API reads: a project's or an offer's matches (a page at a time, by index), one
match, and the explanation of a pair."""

from __future__ import annotations

import asyncio

from g60_chassis.aggregates import Aggregates
from g60_chassis.errors import AppError, Conflict, NotFound, Unprocessable
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from g60_contracts.events import OfferSnapshot, ProjectSnapshot
from g60_contracts.matching import ExplainOut
from matching.domain.match import Match
from matching.service.ports import Engine, Translator
from matching.service.proposals import Proposals
from matching.service.readmodel import ReadModel

Page = tuple[list[Match], str | None]


class EngineLoading(AppError):
    """The engine is still loading (or compiling its kernels on a cold cache): a client waits
    `Retry-After` seconds and asks again."""

    status, title, kind = 503, "Service unavailable", "engine-loading"
    headers = {"Retry-After": "2"}  # noqa: RUF012 (read-only, like AppError's)


class Queries:
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        engine: Engine,
        translate: Translator,
        proposals: Proposals,
        loaded: asyncio.Event,
    ) -> None:
        self.matches, self.read, self.engine = matches, read, engine
        self.translate, self.proposals, self.loaded = translate, proposals, loaded

    async def _project(self, principal: Principal, project_id: str) -> ProjectSnapshot:
        project = await self.read.project(project_id)
        if project is None or (
            principal.role == Role.enterprise and project.enterprise_id != principal.tenant_id
        ):
            raise NotFound.of("project", project_id)
        return project

    async def _offer(self, principal: Principal, offer_id: str) -> OfferSnapshot:
        offer = await self.read.offer(offer_id)
        if offer is None or (
            principal.role == Role.funder and offer.funder_id != principal.tenant_id
        ):
            raise NotFound.of("offer", offer_id)
        return offer

    def _as_of(self, matches: list[Match]) -> list[Match]:
        """A flag that no allocation since changed holds as of the newest one applied."""
        settled = self.proposals.settled_as_of
        if settled is not None:
            for m in matches:
                m.allocated_as_of = max(m.allocated_as_of or 0, settled)
        return matches

    async def _page(
        self, where: dict[str, str], include_closed: bool, cursor: str | None, limit: int
    ) -> Page:
        """Pages in match id order (a stable cursor over the index on `where`'s field);
        within a page, best first."""
        found, next_cursor = await self.matches.list(where, cursor, limit)
        shown = [m for m in found if include_closed or m.status != "retracted"]
        ranked = sorted(shown, key=lambda m: (m.status != "proposed", -m.score, m.id))
        return self._as_of(ranked), next_cursor

    async def project_matches(
        self,
        principal: Principal,
        project_id: str,
        include_closed: bool,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        principal.require(Role.operator, Role.enterprise)
        await self._project(principal, project_id)
        return await self._page({"project_id": project_id}, include_closed, cursor, limit)

    async def offer_matches(
        self,
        principal: Principal,
        offer_id: str,
        include_closed: bool,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        principal.require(Role.operator, Role.funder)
        await self._offer(principal, offer_id)
        return await self._page({"offer_id": offer_id}, include_closed, cursor, limit)

    async def match(self, match: Match) -> Match:
        return self._as_of([match])[0]

    async def explain(
        self, principal: Principal, project_id: str, offer_id: str | None
    ) -> ExplainOut:
        """A funder sees a project only through its own matches (any of its offers, any
        status), and never the enterprise's side of the why-not reasons (its city, revenue,
        qualifications...) nor the advice to the enterprise."""
        principal.require(Role.operator, Role.enterprise, Role.funder)
        if not self.loaded.is_set():
            raise EngineLoading("the matching engine is loading after a restart; try again soon")
        if principal.role == Role.funder:
            if offer_id is None:
                raise Unprocessable(
                    "a funder explains a pair with one of its offers", "offer_id", "query"
                )
            await self._offer(principal, offer_id)
            seen, _ = await self.matches.list(
                {"project_id": project_id, "funder_id": principal.tenant_id}, None, 1
            )
            if not seen or await self.read.project(project_id) is None:
                raise NotFound.of("project", project_id)
        else:
            await self._project(principal, project_id)
        if offer_id is not None:
            if await self.read.offer(offer_id) is None:
                raise NotFound.of("offer", offer_id)
            if not self.engine.has_offer(offer_id):  # withdrawn (or not loaded yet)
                raise Conflict("the offer is withdrawn: it is no longer matched", offer_id=offer_id)
        known = self.engine.has_project(project_id)
        advice = self.engine.advice(project_id) if known else []
        x = self.engine.explain(project_id, offer_id, fresh=False) if known and offer_id else None
        out = self.translate.explanation(project_id, offer_id, advice, x)
        if principal.role == Role.funder:
            hidden = ("need", "unknown")
            reasons = [{k: v for k, v in r.items() if k not in hidden} for r in out.reasons]
            out = out.model_copy(update={"reasons": reasons, "advice": []})
        return out
