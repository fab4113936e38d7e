"""What-if advice: single changes to a project (or its enterprise's profile) that would make
more offers eligible, each with how many — "obtain high-tech enterprise certification → +3"."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from matching.domain.model import COLLATERALS, INSTRUMENTS, QUALIFICATIONS, Project, Qualification

if TYPE_CHECKING:
    from matching.domain.engine import Advice, MatchEngine


def _candidates(engine: MatchEngine, p: Project) -> list[tuple[str, dict[str, Any], Project]]:
    e = p.enterprise
    held = e.qualifications_on(engine.as_of)
    out: list[tuple[str, dict[str, Any], Project]] = []
    for q in QUALIFICATIONS:
        if q not in held:
            quals = (*e.qualifications, Qualification.model_validate({"kind": q}))
            out.append(
                (
                    f"obtain {q} certification",
                    {"qualification": q},
                    p.model_copy(
                        update={"enterprise": e.model_copy(update={"qualifications": quals})}
                    ),
                )
            )
    for c in COLLATERALS:
        if c not in e.collateral:
            coll = (*e.collateral, c)
            out.append(
                (
                    f"offer {c} as collateral",
                    {"collateral": c},
                    p.model_copy(update={"enterprise": e.model_copy(update={"collateral": coll})}),
                )
            )
    for i in INSTRUMENTS:
        if i not in p.instruments:
            out.append(
                (
                    f"also accept {i}",
                    {"instrument": i},
                    p.model_copy(update={"instruments": (*p.instruments, i)}),
                )
            )
    offers = engine.offer_models.values()
    lower = sorted(
        {o.ticket_max_cny for o in offers if o.ticket_max_cny < p.floor_cny}, reverse=True
    )
    for amount in lower[:3]:
        out.append(
            (
                f"lower amount to {amount:,}",
                {"amount_cny": amount},
                p.model_copy(update={"amount_cny": amount, "min_amount_cny": None}),
            )
        )
    higher = sorted({o.ticket_min_cny for o in offers if o.ticket_min_cny > p.amount_cny})
    for amount in higher[:2]:
        out.append(
            (
                f"raise amount to {amount:,}",
                {"amount_cny": amount},
                p.model_copy(update={"amount_cny": amount}),
            )
        )
    if p.max_cost_bp is not None:
        rates = sorted(
            {
                o.pricing.rate_bp
                for o in offers
                if o.pricing.rate_bp is not None and o.pricing.rate_bp > p.max_cost_bp
            }
        )
        for rate in rates[:2]:
            out.append(
                (
                    f"accept a cost up to {rate} bp",
                    {"max_cost_bp": rate},
                    p.model_copy(update={"max_cost_bp": rate}),
                )
            )
    if p.deadline is not None:
        later = p.deadline + timedelta(days=60)
        out.append(
            (
                "extend the deadline by 60 days",
                {"deadline": later.isoformat()},
                p.model_copy(update={"deadline": later}),
            )
        )
    return out


def what_if(engine: MatchEngine, project: Project, limit: int = 8) -> list[Advice]:
    from matching.domain.engine import Advice

    base = engine.eligible_count(project)
    scored = []
    for change, detail, variant in _candidates(engine, project):
        gain = engine.eligible_count(variant) - base
        if gain > 0:
            scored.append(Advice(change=change, detail=detail, gain=gain))
    return sorted(scored, key=lambda a: (-a.gain, a.change))[:limit]
