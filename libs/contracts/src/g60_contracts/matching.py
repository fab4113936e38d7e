"""Public HTTP bodies of the matching service: proposals, explanations, the match lifecycle."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from g60_contracts.enums import Instrument, MatchStatus
from g60_contracts.types import AmountCny, PositiveAmountCny, Text


class ScoreTerm(BaseModel):
    criterion: str = Field(examples=["cost"])
    score: float | None = Field(description="0..1; null when the data is unknown (neutral)")
    weight: float
    unknown: bool = False
    note: str = ""


class ScoreBreakdown(BaseModel):
    total: float = Field(ge=0.0, le=1.0)
    terms: list[ScoreTerm]


_BREAKDOWN_EXAMPLE: dict[str, Any] = {
    "total": 0.78,
    "terms": [
        {"criterion": "cost", "score": 0.9, "weight": 0.3, "unknown": False, "note": "380 bp"},
        {"criterion": "speed", "score": None, "weight": 0.2, "unknown": True, "note": ""},
    ],
}

MATCH_EXAMPLE: dict[str, Any] = {
    "id": "mat_1f0c9a",
    "project_id": "prj_8c2d4e",
    "offer_id": "off_0a9e77",
    "enterprise_id": "ent_3f9a1c",
    "funder_id": "fun_51b7e0",
    "instrument": "credit_loan",
    "status": "proposed",
    "rank": 1,
    "score": 0.81,
    "allocated": True,
    "enterprise_view": _BREAKDOWN_EXAMPLE,
    "funder_view": _BREAKDOWN_EXAMPLE,
    "amount_cny": 20000000,
    "accepted_by_enterprise": False,
    "accepted_by_funder": False,
    "closed_amount_cny": None,
    "reason": None,
    "expires_at": None,
    "version": 1,
    "created_at": "2026-11-26T08:00:01Z",
    "updated_at": "2026-11-26T08:00:01Z",
}


class MatchOut(BaseModel):
    """A proposed pair and where it stands in its lifecycle."""

    model_config = ConfigDict(json_schema_extra={"examples": [MATCH_EXAMPLE]})
    id: str
    project_id: str
    offer_id: str
    enterprise_id: str
    funder_id: str
    instrument: Instrument
    status: MatchStatus
    rank: int | None = Field(None, description="1 = best for the project, among open proposals")
    score: float
    allocated: bool = Field(description="the engine's stable allocation gives this pair")
    allocated_as_of: int | None = Field(
        None,
        description="the market version of the allocation `allocated` holds as of (the "
        "allocation is refreshed in the background, a moment after the market changes)",
    )
    enterprise_view: ScoreBreakdown
    funder_view: ScoreBreakdown
    amount_cny: AmountCny
    accepted_by_enterprise: bool
    accepted_by_funder: bool
    closed_amount_cny: AmountCny | None = None
    reason: str | None = None
    expires_at: datetime | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class AdviceOut(BaseModel):
    change: str = Field(examples=["obtain high_tech_enterprise certification"])
    detail: dict[str, Any] = {}
    gain: int = Field(description="how many more offers become eligible", examples=[3])


class ExplainOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "project_id": "prj_8c2d4e",
                    "offer_id": "off_0a9e77",
                    "eligible": False,
                    "reasons": [{"rule": "city", "need": "wuhu", "offer": ["shanghai"]}],
                    "score": None,
                    "enterprise_view": None,
                    "funder_view": None,
                    "advice": [
                        {
                            "change": "lower amount",
                            "detail": {"amount_cny": 5000000},
                            "gain": 2,
                        }
                    ],
                }
            ]
        }
    )
    project_id: str
    offer_id: str | None = None
    eligible: bool | None = None
    reasons: list[dict[str, Any]] = []
    score: float | None = None
    enterprise_view: ScoreBreakdown | None = None
    funder_view: ScoreBreakdown | None = None
    advice: list[AdviceOut] = []


class DeclineIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "terms too costly"}]}
    )
    reason: Text = ""


class CloseIn(BaseModel):
    """The funder closes the deal with the amount actually extended."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount_cny": 20000000}]}
    )
    amount_cny: PositiveAmountCny
