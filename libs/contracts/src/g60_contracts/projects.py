"""Public HTTP bodies of the projects service: enterprises and their financing needs."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from g60_contracts.enums import (
    City,
    Collateral,
    Instrument,
    ProjectStatus,
    Qualification,
    Sector,
    Stage,
)
from g60_contracts.types import (
    AmountCny,
    BasisPoints,
    EnterpriseWeights,
    Fraction,
    Name,
    PositiveAmountCny,
    Text,
    UniqueList,
    Uscc,
    count,
    not_null,
)

_IN = ConfigDict(extra="forbid")


class HeldQualification(BaseModel):
    model_config = _IN
    kind: Qualification
    expires_on: date | None = Field(None, description="None: does not expire")


ENTERPRISE_EXAMPLE: dict[str, Any] = {
    "name": "松江微流量仪表科技有限公司",
    "uscc": "91310117MA1J3R7X4B",
    "city": "shanghai",
    "district": "Songjiang",
    "sectors": ["instruments_meters"],
    "founded_on": "2017-05-12",
    "headcount": 85,
    "annual_revenue_cny": 42000000,
    "rd_intensity": 0.12,
    "debt_ratio": 0.35,
    "qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2027-12-31"}],
    "collateral": ["ip", "equipment"],
}


class EnterpriseIn(BaseModel):
    """Register an enterprise (operator). Unknown numbers may be left out: they are scored as
    unknown, never as agreement."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ENTERPRISE_EXAMPLE]})
    name: Name
    uscc: Uscc
    city: City
    district: Name | None = None
    sectors: UniqueList[Sector] = Field(min_length=1)
    founded_on: date
    headcount: int | None = count(10_000_000)
    annual_revenue_cny: AmountCny | None = None
    rd_intensity: Fraction | None = None
    debt_ratio: Fraction | None = None
    qualifications: list[HeldQualification] = Field([], max_length=50)
    collateral: UniqueList[Collateral] = []

    @field_validator("qualifications")
    @classmethod
    def _one_of_each_kind(cls, value: list[HeldQualification]) -> list[HeldQualification]:
        if len({q.kind for q in value}) != len(value):
            raise ValueError("each kind of qualification at most once")
        return value


class EnterpriseOut(EnterpriseIn):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {**ENTERPRISE_EXAMPLE, "id": "ent_3f9a1c", "created_at": "2026-11-26T08:00:00Z"}
            ]
        },
    )
    id: str
    created_at: datetime


PROJECT_EXAMPLE: dict[str, Any] = {
    "enterprise_id": "ent_3f9a1c",
    "title": "Expand micro flow meter production line",
    "amount_cny": 20000000,
    "min_amount_cny": 10000000,
    "instruments": ["equity", "credit_loan"],
    "stage": "series_a",
    "sector": "instruments_meters",
    "purpose": "second production line in Songjiang",
    "term_months": 36,
    "max_cost_bp": 450,
    "deadline": "2027-03-31",
    "max_dilution": 0.15,
}


class ProjectIn(BaseModel):
    """A financing need. An enterprise key may leave `enterprise_id` out (it is its own)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PROJECT_EXAMPLE]})
    enterprise_id: str | None = None
    title: Name
    amount_cny: PositiveAmountCny
    min_amount_cny: PositiveAmountCny | None = None
    instruments: UniqueList[Instrument] = Field(min_length=1)
    stage: Stage
    sector: Sector
    purpose: Text = ""
    term_months: int | None = count(600, ge=1)
    max_cost_bp: BasisPoints | None = None
    deadline: date | None = None
    max_dilution: Fraction | None = None
    weights: EnterpriseWeights | None = None


class ProjectPatch(BaseModel):
    """Fields to change; send `If-Match` with the ETag you read."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount_cny": 15000000}]}
    )
    title: Name | None = None
    amount_cny: PositiveAmountCny | None = None
    min_amount_cny: PositiveAmountCny | None = None
    instruments: UniqueList[Instrument] | None = Field(None, min_length=1)
    stage: Stage | None = None
    purpose: Text | None = None
    term_months: int | None = count(600, ge=1)
    max_cost_bp: BasisPoints | None = None
    deadline: date | None = None
    max_dilution: Fraction | None = None
    weights: EnterpriseWeights | None = None

    _required = field_validator("title", "amount_cny", "instruments", "stage", "purpose")(not_null)


class ProjectOut(ProjectIn):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    **PROJECT_EXAMPLE,
                    "id": "prj_8c2d4e",
                    "status": "open",
                    "version": 1,
                    "created_at": "2026-11-26T08:00:00Z",
                    "updated_at": "2026-11-26T08:00:00Z",
                }
            ]
        },
    )
    id: str
    enterprise_id: str
    status: ProjectStatus
    version: int
    funded_amount_cny: AmountCny | None = None
    created_at: datetime
    updated_at: datetime
