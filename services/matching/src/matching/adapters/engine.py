"""Between the read model's contract snapshots (JSON dicts) and the engine's domain objects."""

from __future__ import annotations

from datetime import date
from typing import Any

from matching.domain.engine import MatchEngine, Proposal
from matching.domain.model import Enterprise, Offer, Project

PROJECT_FIELDS = (
    "amount_cny",
    "min_amount_cny",
    "instruments",
    "stage",
    "sector",
    "purpose",
    "term_months",
    "max_cost_bp",
    "deadline",
    "max_dilution",
    "weights",
)
ENTERPRISE_FIELDS = (
    "name",
    "uscc",
    "city",
    "district",
    "sectors",
    "founded_on",
    "headcount",
    "annual_revenue_cny",
    "rd_intensity",
    "debt_ratio",
    "qualifications",
    "collateral",
)
OFFER_FIELDS = (
    "funder_id",
    "funder_kind",
    "name",
    "instrument",
    "ticket_min_cny",
    "ticket_max_cny",
    "max_deals",
    "deals_taken",
    "cities",
    "sectors",
    "stages",
    "requirements",
    "pricing",
    "decision_days",
    "response_deadline_days",
    "valid_from",
    "valid_until",
    "preferences",
)


def new_engine(as_of: date, top_k: int) -> MatchEngine:
    return MatchEngine(as_of, top_k=top_k)


class EngineTranslator:
    def project(self, project: dict[str, Any], enterprise: dict[str, Any]) -> Project:
        e = Enterprise(
            id=enterprise["id"],
            **{k: enterprise.get(k) for k in ENTERPRISE_FIELDS if enterprise.get(k) is not None},
        )
        return Project(
            id=project["id"],
            enterprise=e,
            **{k: project[k] for k in PROJECT_FIELDS if project.get(k) is not None},
        )

    def offer(self, offer: dict[str, Any]) -> Offer:
        fields = {k: offer[k] for k in OFFER_FIELDS if offer.get(k) is not None}
        capacity = offer.get("remaining_cny", offer.get("capacity_cny", 0))
        return Offer(id=offer["id"], capacity_cny=capacity, **fields)

    def proposals(self, proposals: list[Proposal]) -> list[dict[str, Any]]:
        return [
            {
                "offer_id": p.offer_id,
                "rank": p.rank,
                "score": round(p.score, 4),
                "allocated": p.allocated,
                "enterprise_view": p.enterprise_view or {},
                "funder_view": p.funder_view or {},
            }
            for p in proposals
        ]

    def explanation(
        self, engine: MatchEngine, project_id: str, offer_id: str | None
    ) -> dict[str, Any]:
        advice = (
            [
                {"change": a.change, "detail": a.detail, "gain": a.gain}
                for a in engine.advice(project_id)
            ]
            if project_id in engine.project_models
            else []
        )
        out: dict[str, Any] = {"project_id": project_id, "offer_id": offer_id, "advice": advice}
        if offer_id is None or project_id not in engine.project_models:
            return out
        x = engine.explain(project_id, offer_id)
        return {
            **out,
            "eligible": x.eligible,
            "reasons": x.reasons,
            "score": x.score,
            "enterprise_view": x.enterprise_view,
            "funder_view": x.funder_view,
        }
