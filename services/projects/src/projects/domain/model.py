"""Enterprises and their financing needs, with the rules of a project's life:
open → funded | withdrawn; only an open project changes; the minimum never exceeds the amount."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ProjectStatus = Literal["open", "funded", "withdrawn"]
ProjectEventKind = Literal["submitted", "updated", "withdrawn", "funded"]


class RuleViolation(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Enterprise(BaseModel):
    id: str
    name: str
    uscc: str
    city: str
    district: str | None = None
    sectors: list[str]
    founded_on: date
    headcount: int | None = None
    annual_revenue_cny: int | None = None
    rd_intensity: float | None = None
    debt_ratio: float | None = None
    qualifications: list[dict[str, Any]] = []
    collateral: list[str] = []
    request_hash: str | None = Field(None, description="the create request, for Idempotency-Key")
    created_at: datetime
    version: int = 0


class Project(BaseModel):
    id: str
    enterprise_id: str
    title: str
    amount_cny: int
    min_amount_cny: int | None = None
    instruments: list[str]
    stage: str
    sector: str
    purpose: str = ""
    term_months: int | None = None
    max_cost_bp: int | None = None
    deadline: date | None = None
    max_dilution: float | None = None
    weights: dict[str, float] | None = None
    status: ProjectStatus = "open"
    funded_amount_cny: int | None = None
    funded_by_match: str | None = None
    request_hash: str | None = Field(None, description="the create request, for Idempotency-Key")
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def check(self) -> None:
        if self.min_amount_cny is not None and self.min_amount_cny > self.amount_cny:
            raise RuleViolation("min_amount_cny exceeds amount_cny", "min_amount_cny")

    def change(self, changes: dict[str, Any], now: datetime) -> ProjectEventKind:
        if self.status != "open":
            raise RuleViolation(f"a {self.status} project cannot change", "status")
        for key, value in changes.items():
            setattr(self, key, value)
        self.check()
        self.updated_at = now
        return "updated"

    def withdraw(self, now: datetime) -> ProjectEventKind | None:
        if self.status == "withdrawn":
            return None  # idempotent
        if self.status == "funded":
            raise RuleViolation("a funded project cannot be withdrawn", "status")
        self.status, self.updated_at = "withdrawn", now
        return "withdrawn"

    def fund(self, match_id: str, amount_cny: int, now: datetime) -> ProjectEventKind | None:
        if self.status == "funded":
            return None  # the same deal again (redelivery) or a second deal: first one wins
        self.status, self.funded_amount_cny, self.funded_by_match = "funded", amount_cny, match_id
        self.updated_at = now
        return "funded"
