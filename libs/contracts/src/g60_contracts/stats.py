"""`GET /v1/stats`: what the corridor has matched and funded, as figures (data only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Figures(BaseModel):
    """A funnel: needs posted → proposals → agreed → reserved → closed. A match counts as agreed
    (reserved) once it reached that state, even if it was later declined or expired."""

    needs: int = 0
    requested_cny: int = 0
    matched_cny: int = Field(0, description="requested by needs with a standing proposal")
    proposals: int = 0
    agreed: int = 0
    reserved: int = 0
    closed: int = 0
    funded_cny: int = 0


class GroupFigures(Figures):
    key: str = Field(description="the city, sector, instrument, funder id or month (YYYY-MM)")


class Durations(BaseModel):
    """Hours from a need's posting to an event, over the needs that reached it."""

    count: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None


class WhyNot(BaseModel):
    """A rule the corridor's offers fail for needs that have no eligible offer at all."""

    rule: str
    needs: int = Field(description="needs without any eligible offer that some offer refuses so")
    pairs: int = Field(description="(need, offer) pairs refused by this rule")


class CapacityUse(BaseModel):
    offer_id: str
    name: str
    funder_id: str
    instrument: str
    capacity_cny: int
    remaining_cny: int
    used_cny: int
    used_share: float


class StatsOut(BaseModel):
    scope: str = Field(description="`corridor` for operators, else the enterprise or funder")
    since: datetime | None = None
    generated_at: datetime
    totals: Figures
    by_city: list[GroupFigures] = []
    by_sector: list[GroupFigures] = []
    by_instrument: list[GroupFigures] = []
    by_funder: list[GroupFigures] = []
    by_month: list[GroupFigures] = []
    to_first_proposal: Durations
    to_close: Durations
    open_needs: int = Field(0, description="needs still open")
    no_eligible_offer: int = Field(0, description="open needs no live offer is eligible for")
    no_eligible_share: float = 0.0
    why_not: list[WhyNot] = []
    capacity: list[CapacityUse] = []
