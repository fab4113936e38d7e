"""`GET /v1/matches/{id}/audit`: the decision record of a match (data only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot


class DecisionOut(BaseModel):
    """One decision about the pair: the engine proposed it, or the allocation gave it the
    offer. With the inputs it was made from, so that it can be replayed."""

    id: str
    match_id: str
    kind: Literal["proposed", "allocated"]
    at: datetime
    engine_version: str = Field(description="the matching engine's code version")
    market_version: int = Field(description="the engine's market version when deciding")
    as_of: date = Field(description="the date the engine judged validity and deadlines on")
    project_id: str
    project_version: int
    enterprise_id: str
    offer_id: str
    offer_version: int
    score: float
    enterprise_view: dict[str, Any]
    funder_view: dict[str, Any]
    project: ProjectSnapshot | None = Field(None, description="the project as decided on")
    enterprise: EnterpriseRegistered | None = None
    offer: OfferSnapshot | None = Field(None, description="the offer as decided on")


class AuditOut(BaseModel):
    match_id: str
    decisions: list[DecisionOut]
