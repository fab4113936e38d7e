"""Between the contract snapshots (validated pydantic models) and the engine's domain objects,
and the explanation's wire format. The only place that knows both vocabularies' field names."""

from __future__ import annotations

from datetime import date

from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from g60_contracts.matching import AdviceOut, ExplainOut
from matching.domain.engine import MatchEngine
from matching.domain.model import Enterprise, Offer, Project
from matching.domain.results import Advice, Explanation

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
    def project(self, project: ProjectSnapshot, enterprise: EnterpriseRegistered) -> Project:
        p, ent = project.model_dump(mode="json"), enterprise.model_dump(mode="json")
        e = Enterprise(
            id=ent["id"], **{k: ent[k] for k in ENTERPRISE_FIELDS if ent.get(k) is not None}
        )
        return Project(
            id=p["id"], enterprise=e, **{k: p[k] for k in PROJECT_FIELDS if p.get(k) is not None}
        )

    def offer(self, offer: OfferSnapshot) -> Offer:
        o = offer.model_dump(mode="json")
        fields = {k: o[k] for k in OFFER_FIELDS if o.get(k) is not None}
        capacity = o.get("remaining_cny", o.get("capacity_cny", 0))
        return Offer(id=o["id"], capacity_cny=capacity, **fields)

    def explanation(
        self,
        project_id: str,
        offer_id: str | None,
        advice: list[Advice],
        explanation: Explanation | None,
    ) -> ExplainOut:
        tips = [AdviceOut(change=a.change, detail=a.detail, gain=a.gain) for a in advice]
        if explanation is None:
            return ExplainOut(project_id=project_id, offer_id=offer_id, advice=tips)
        x = explanation
        return ExplainOut.model_validate(
            {
                "project_id": project_id,
                "offer_id": offer_id,
                "advice": tips,
                "eligible": x.eligible,
                "reasons": x.reasons,
                "score": x.score,
                "enterprise_view": x.enterprise_view,
                "funder_view": x.funder_view,
            }
        )


def engine_version() -> str:
    """The engine's code version: the package version and a digest of the domain's sources, so
    a decision records exactly which scoring and eligibility code made it (any edit to the
    engine changes it, a redeploy of the same code does not)."""
    import hashlib
    from importlib import metadata
    from pathlib import Path

    import matching.domain

    digest = hashlib.sha256()
    for path in sorted(Path(next(iter(matching.domain.__path__))).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        release = metadata.version("g60-platform")
    except metadata.PackageNotFoundError:
        release = "0"
    return f"{release}+{digest.hexdigest()[:12]}"
