"""Test data for the matching engine: a base project and offer that match, builders that change
one thing at a time, hypothesis strategies for random instances, and a brute-force checker of
the allocation written independently of the engine's algorithm."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import Doc
from matching.domain import uscc
from matching.domain.audit import Decision, DecisionKind
from matching.domain.engine import MatchEngine
from matching.domain.match import Match
from matching.domain.model import Offer, Project

AS_OF = date(2026, 11, 26)
AT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def code(n: int) -> str:
    return uscc.make(f"91310117MA{n:07d}")


def enterprise(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ent-1",
        "name": "松江微流量仪表科技有限公司",
        "uscc": code(1),
        "city": "shanghai",
        "district": "Songjiang",
        "sectors": ["instruments_meters"],
        "founded_on": "2017-05-12",
        "headcount": 85,
        "annual_revenue_cny": 42_000_000,
        "rd_intensity": 0.12,
        "debt_ratio": 0.35,
        "qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2027-12-31"}],
        "collateral": ["ip", "equipment"],
    }
    return {**base, **kw}


def project(id: str = "prj-1", enterprise_kw: dict[str, Any] | None = None, **kw: Any) -> Project:
    base: dict[str, Any] = {
        "id": id,
        "enterprise": enterprise(**(enterprise_kw or {})),
        "amount_cny": 20_000_000,
        "min_amount_cny": 10_000_000,
        "instruments": ["credit_loan", "equity"],
        "stage": "series_a",
        "sector": "instruments_meters",
        "purpose": "second production line",
        "term_months": 36,
        "max_cost_bp": 450,
        "deadline": "2027-03-31",
        "max_dilution": 0.15,
    }
    return Project.model_validate({**base, **kw})


def offer(id: str = "off-1", **kw: Any) -> Offer:
    base: dict[str, Any] = {
        "id": id,
        "funder_id": "fun-1",
        "funder_kind": "bank",
        "name": "科创贷",
        "instrument": "credit_loan",
        "ticket_min_cny": 1_000_000,
        "ticket_max_cny": 30_000_000,
        "capacity_cny": 500_000_000,
        "max_deals": 40,
        "cities": ["shanghai", "jiaxing"],
        "sectors": [],
        "stages": ["series_a", "series_b"],
        "requirements": {
            "qualifications_any": ["high_tech_enterprise", "tech_sme"],
            "min_revenue_cny": 5_000_000,
            "min_years": 2,
            "max_debt_ratio": 0.7,
        },
        "pricing": {"rate_bp": 380},
        "decision_days": 10,
        "valid_until": "2027-12-31",
        "preferences": {"priority_cities": ["shanghai"]},
    }
    return Offer.model_validate({**base, **kw})


def engine(*items: Project | Offer, top_k: int = 10) -> MatchEngine:
    e = MatchEngine(AS_OF, top_k=top_k)
    for x in items:
        if isinstance(x, Offer):
            e.upsert_offer(x)
    for x in items:
        if isinstance(x, Project):
            e.upsert_project(x)
    return e


# ---- random instances -------------------------------------------------------------------------

CITIES = ["shanghai", "jiaxing", "wuhu"]
SECTORS = ["new_materials", "biomedicine", "aerospace"]
STAGES = ["angel", "series_a", "growth"]
INSTRUMENTS = ["equity", "credit_loan", "leasing"]
QUALS = ["high_tech_enterprise", "little_giant", "tech_sme"]
COLLATERAL = ["property", "ip", "equipment"]
AMOUNTS = [1_000_000, 2_000_000, 3_000_000, 5_000_000]


def _maybe(draw: st.DrawFn, p: float, value: Any) -> Any:
    """`value` with probability about p, else None (unknown)."""
    present = round(p * 10)
    # hypothesis leans towards the first choice: put the unrestricted one first
    return value if draw(st.sampled_from([False] * (10 - present) + [True] * present)) else None


def _often_empty(values: list[str]) -> st.SearchStrategy[list[str]]:
    """Mostly no restriction, sometimes one or two values."""
    some = st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)
    return st.sampled_from([False, False, False, False, True]).flatmap(
        lambda restrict: some if restrict else st.just([])
    )


@st.composite
def random_project(draw: st.DrawFn, i: int, equal_amounts: bool = False) -> Project:
    amount = AMOUNTS[1] if equal_amounts else draw(st.sampled_from(AMOUNTS))
    quals = draw(st.lists(st.sampled_from(QUALS), min_size=1, max_size=2, unique=True))
    return Project.model_validate(
        {
            "id": f"p{i:02d}",
            "enterprise": {
                "id": f"e{i:02d}",
                "uscc": code(i),
                "city": draw(st.sampled_from(CITIES)),
                "founded_on": draw(st.sampled_from(["2015-01-01", "2025-06-01", None])),
                "annual_revenue_cny": draw(
                    st.sampled_from([30_000_000, 3_000_000, 90_000_000, None])
                ),
                "debt_ratio": draw(st.sampled_from([0.4, 0.2, 0.8, None])),
                "rd_intensity": draw(st.sampled_from([0.05, None, 0.2])),
                "qualifications": [
                    {"kind": q, "expires_on": draw(st.sampled_from([None, None, "2026-01-01"]))}
                    for q in quals
                ],
                "collateral": draw(
                    st.lists(st.sampled_from(COLLATERAL), min_size=1, max_size=2, unique=True)
                ),
            },
            "amount_cny": amount,
            "min_amount_cny": None if equal_amounts else _maybe(draw, 0.3, amount // 2),
            "instruments": draw(st.permutations(INSTRUMENTS))[: draw(st.sampled_from([3, 2, 1]))],
            "stage": draw(st.sampled_from(STAGES)),
            "sector": draw(st.sampled_from(SECTORS)),
            "max_cost_bp": draw(st.sampled_from([None, None, 400, 600])),
            "max_dilution": draw(st.sampled_from([None, None, 0.1, 0.3])),
            "deadline": draw(st.sampled_from([None, None, None, "2026-12-01", "2027-06-01"])),
            "weights": draw(st.sampled_from([None, {"cost": 0.0, "amount": 1.0}])),
        }
    )


@st.composite
def random_offer(draw: st.DrawFn, i: int, equal_amounts: bool = False) -> Offer:
    tmin = draw(st.sampled_from([1_000_000, 1_000_000, 2_000_000]))
    tmax = draw(st.sampled_from([10_000_000, 5_000_000, 3_000_000, 2_000_000]))
    if equal_amounts:
        tmin, tmax = 1_000_000, 10_000_000
    return Offer.model_validate(
        {
            "id": f"o{i:02d}",
            "funder_id": f"f{i % 3}",
            "instrument": draw(st.sampled_from(INSTRUMENTS)),
            "ticket_min_cny": tmin,
            "ticket_max_cny": tmax,
            "capacity_cny": draw(st.sampled_from([9_000_000, 6_000_000, 4_000_000, 2_000_000, 0])),
            "max_deals": draw(st.sampled_from([None, 1, 2, 3])),
            "deals_taken": draw(st.sampled_from([0, 0, 0, 1])),
            "cities": draw(_often_empty(CITIES)),
            "sectors": draw(_often_empty(SECTORS)),
            "stages": draw(_often_empty(STAGES)),
            "requirements": {
                "qualifications_any": draw(_often_empty(QUALS)),
                "min_revenue_cny": _maybe(draw, 0.1, 5_000_000),
                "min_years": _maybe(draw, 0.1, 2),
                "max_debt_ratio": _maybe(draw, 0.1, 0.5),
                "collateral_required": draw(_often_empty(COLLATERAL)),
            },
            "pricing": {
                "rate_bp": draw(st.sampled_from([None, 350, 500])),
                "max_equity_share": draw(st.sampled_from([None, 0.2])),
            },
            "decision_days": draw(st.sampled_from([None, 10, 60])),
            "valid_until": draw(st.sampled_from([None, None, None, "2027-01-01", "2026-01-01"])),
            "preferences": {
                "priority_cities": draw(st.lists(st.sampled_from(CITIES), max_size=1)),
                "priority_sectors": draw(st.lists(st.sampled_from(SECTORS), max_size=1)),
                "weights": draw(st.sampled_from([None, {"ticket": 1.0, "city": 0.0}])),
            },
        }
    )


@st.composite
def instances(
    draw: st.DrawFn, max_projects: int = 14, max_offers: int = 6, equal_amounts: bool = False
) -> tuple[list[Project], list[Offer]]:
    n_p = draw(st.integers(1, max_projects))
    n_o = draw(st.integers(1, max_offers))
    projects = [draw(random_project(i, equal_amounts)) for i in range(n_p)]
    offers = [draw(random_offer(i, equal_amounts)) for i in range(n_o)]
    return projects, offers


# ---- a brute-force checker of the allocation --------------------------------------------------


def brute_force_blocking(e: MatchEngine) -> list[tuple[str, str]]:
    """Every (p, o) where p prefers o to what it got and o, choosing greedily in its order
    from its allocated projects plus p, would keep p — straight from the definition, pair by
    pair, with the engine's quantised scores only as the two sides' preferences."""
    assigned = e.allocation().as_map()
    offers = {oid: o for oid, o in e.offer_models.items()}
    scores = {
        (p, o): s
        for p in e.project_models
        for o in offers
        if (s := e.pair_scores(p, o)) is not None
    }

    def enterprise_key(p: str, o: str) -> tuple[int, str]:
        return (-scores[(p, o)][0], o)

    def funder_key(p: str, o: str) -> tuple[int, str]:
        return (-scores[(p, o)][1], p)

    def amount(p: str, o: str) -> int:
        return min(e.project_models[p].amount_cny, offers[o].ticket_max_cny)

    out = []
    for p in sorted(e.project_models):
        mine = assigned.get(p)
        for o in sorted(offers):
            if (p, o) not in scores or o == mine:
                continue
            if mine is not None and enterprise_key(p, o) > enterprise_key(p, mine):
                continue
            holders = [q for q, x in assigned.items() if x == o] + [p]
            room = offers[o].capacity_cny
            slots = offers[o].deals_left
            kept = []
            for q in sorted(holders, key=lambda q: funder_key(q, o)):
                if (slots is None or slots > 0) and amount(q, o) <= room:
                    kept.append(q)
                    room -= amount(q, o)
                    slots = None if slots is None else slots - 1
            if p in kept:
                out.append((p, o))
    return out


def decision(kind: DecisionKind, version: int, views: dict[str, object] | None = None) -> Decision:
    """A decision of match `m` (project `p`, offer `o`) at one market version; `views` is its
    enterprise breakdown, the funder's is `{"f": views}`."""
    views = {} if views is None else views
    return Decision(
        id=f"m:{kind}:{version}",
        match_id="m",
        kind=kind,
        at=AT,
        engine_version="x",
        market_version=version,
        as_of=AT.date(),
        project_id="p",
        project_version=1,
        enterprise_id="e",
        offer_id="o",
        offer_version=1,
        score=0.5,
        enterprise_view=views,
        funder_view={"f": views} if views else {},
    )


def match(id: str = "m", **over: Any) -> Match:
    """A proposed match of project `p` and offer `o`, made at AT and due 14 days later."""
    fields: dict[str, Any] = dict(
        id=id,
        project_id="p",
        offer_id="o",
        enterprise_id="e",
        funder_id="f",
        instrument="credit_loan",
        amount_cny=8_000_000,
        created_at=AT,
        updated_at=AT,
        expires_at=AT + timedelta(days=14),
    )
    return Match(**{**fields, **over})


class Meddling(MemoryDocumentStore):
    """A store on which another writer acts (`meddle`, on the store itself) just before the
    first field update that expects versions: a match written between a read and its write."""

    def __init__(self, meddle: Callable[[MemoryDocumentStore], Awaitable[object]]) -> None:
        super().__init__()
        self.meddle, self.calls = meddle, 0

    async def set_fields(
        self,
        collection: str,
        changes: Mapping[str, Doc],
        unless: str | None = None,
        report_absent: bool = True,
        *,
        expected: Mapping[str, int] | None = None,
        events: Mapping[str, list[Doc]] | None = None,
    ) -> set[str]:
        self.calls += 1
        if self.calls == 1 and expected is not None:
            await self.meddle(self)
        return await super().set_fields(
            collection, changes, unless, report_absent, expected=expected, events=events
        )
