"""`GET /v1/stats`: the corridor's figures from the matching service's read model (needs,
offers) and its matches. An operator sees the corridor; an enterprise its own needs and their
matches; a funder its own matches, the needs they went to, and its offers' capacity and
why-not reasons. Computed on request: the read model is small beside the matches (one need has
at most top-k open proposals), and the figures must agree with what the API shows right now."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from g60_chassis.aggregates import Aggregates
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from g60_contracts.events import OfferSnapshot, ProjectSnapshot
from g60_contracts.stats import CapacityUse, Durations, Figures, GroupFigures, StatsOut, WhyNot
from matching.domain import stats
from matching.domain.match import Match
from matching.service.ports import Clock, Engine, View
from matching.service.readmodel import ReadModel

# (need, offer) pairs explained for the why-not reasons at most; past it the reasons are those
# of the first needs (in id order) and `why_not` says so through its counts
MAX_WHY_NOT_PAIRS = 20_000
TOP_REASONS = 10


class Stats:
    def __init__(
        self, matches: Aggregates[Match], read: ReadModel, engine: Engine, clock: Clock
    ) -> None:
        self.matches, self.read, self.engine, self.clock = matches, read, engine, clock

    async def figures(self, principal: Principal, since: datetime | None = None) -> StatsOut:
        principal.require(Role.operator, Role.enterprise, Role.funder)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a bare date or time is read as UTC
        tenant = principal.tenant_id
        where = {
            Role.enterprise: {"enterprise_id": tenant},
            Role.funder: {"funder_id": tenant},
        }.get(principal.role, {})
        matches = await self.matches.every(where, 2_000)
        projects = [
            ProjectSnapshot.model_validate(v.data) for v in await self._all(self.read.projects)
        ]
        cities = {v.id: str(v.data.get("city", "")) for v in await self._all(self.read.enterprises)}
        offers = [OfferSnapshot.model_validate(v.data) for v in await self._all(self.read.offers)]
        if principal.role == Role.enterprise:
            projects = [p for p in projects if p.enterprise_id == tenant]
        elif principal.role == Role.funder:
            offers = [o for o in offers if o.funder_id == tenant]
            matched = {m.project_id for m in matches}
            projects = [p for p in projects if p.id in matched]
        if since is not None:
            projects = [p for p in projects if p.created_at >= since]
            matches = [m for m in matches if m.created_at >= since]
        needs = [_need(p, cities.get(p.enterprise_id, "unknown")) for p in projects]
        deals = [_deal(m) for m in matches]
        spans = stats.spans(needs, deals)
        live_offers = [o for o in offers if o.status == "active"]
        open_ids = [n.id for n in needs if n.open]
        if principal.role == Role.funder:  # its offers' misses among all open needs
            open_ids = [p.id for p in await self._open_projects()]
        unmatched, refusals = self._why_not(open_ids, [o.id for o in live_offers])
        return StatsOut(
            scope="corridor" if principal.role == Role.operator else f"{principal.role}:{tenant}",
            since=since,
            generated_at=self.clock(),
            totals=Figures(**asdict(stats.funnel(needs, deals))),
            by_city=_rows(stats.by_need(needs, deals, lambda n: n.city)),
            by_sector=_rows(stats.by_need(needs, deals, lambda n: n.sector)),
            by_month=_rows(stats.by_need(needs, deals, lambda n: n.created_at.strftime("%Y-%m"))),
            by_instrument=_rows(stats.by_deal(needs, deals, lambda d: d.instrument)),
            by_funder=_rows(stats.by_deal(needs, deals, lambda d: d.funder_id)),
            to_first_proposal=_durations(spans.to_first_proposal),
            to_close=_durations(spans.to_close),
            open_needs=len(open_ids),
            no_eligible_offer=unmatched,
            no_eligible_share=round(unmatched / len(open_ids), 4) if open_ids else 0.0,
            why_not=[WhyNot(rule=r, needs=n, pairs=k) for r, n, k in stats.why_not(refusals)][
                :TOP_REASONS
            ],
            capacity=[_capacity(o) for o in sorted(offers, key=lambda o: o.id)],
        )

    @staticmethod
    async def _all(views: Aggregates[View]) -> list[View]:
        return await views.every(None, 2_000)

    async def _open_projects(self) -> list[ProjectSnapshot]:
        views = await self.read.projects.every({"removed": False}, 2_000)
        return [ProjectSnapshot.model_validate(v.data) for v in views]

    def _why_not(
        self, project_ids: list[str], offer_ids: list[str]
    ) -> tuple[int, dict[str, list[list[str]]]]:
        """How many of the needs no offer is eligible for, and each one's refusals."""
        offers = [o for o in offer_ids if self.engine.has_offer(o)]
        budget, unmatched = MAX_WHY_NOT_PAIRS, 0
        refusals: dict[str, list[list[str]]] = {}
        for project_id in sorted(project_ids):
            if not self.engine.has_project(project_id):
                continue
            explained = [self.engine.explain(project_id, o, fresh=False) for o in offers]
            if any(x.eligible for x in explained):
                continue
            unmatched += 1
            if budget >= len(offers):
                budget -= len(offers)
                refusals[project_id] = [[str(r["rule"]) for r in x.reasons] for x in explained]
        return unmatched, refusals


def _need(p: ProjectSnapshot, city: str) -> stats.Need:
    return stats.Need(
        id=p.id,
        city=city,
        sector=str(p.sector),
        amount_cny=int(p.amount_cny),
        created_at=p.created_at,
        open=p.status == "open",
    )


def _deal(m: Match) -> stats.Deal:
    return stats.Deal(
        project_id=m.project_id,
        funder_id=m.funder_id,
        instrument=m.instrument,
        status=m.status,
        previous_status=m.previous_status,
        created_at=m.created_at,
        updated_at=m.updated_at,
        closed_amount_cny=m.closed_amount_cny,
    )


def _rows(groups: dict[str, stats.Funnel]) -> list[GroupFigures]:
    return [GroupFigures(key=k, **asdict(f)) for k, f in groups.items()]


def _durations(hours: list[float]) -> Durations:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return Durations(
        count=len(hours),
        median_hours=r(stats.percentile(hours, 0.5)),
        p90_hours=r(stats.percentile(hours, 0.9)),
    )


def _capacity(o: OfferSnapshot) -> CapacityUse:
    capacity, remaining = int(o.capacity_cny), int(o.remaining_cny)
    used = max(capacity - remaining, 0)
    return CapacityUse(
        offer_id=o.id,
        name=o.name,
        funder_id=o.funder_id,
        instrument=str(o.instrument),
        capacity_cny=capacity,
        remaining_cny=remaining,
        used_cny=used,
        used_share=round(used / capacity, 4) if capacity else 0.0,
    )
