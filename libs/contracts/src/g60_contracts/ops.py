"""Operator bodies: `POST /v1/rematch` (data only)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RematchIn(BaseModel):
    project_ids: list[str] | None = Field(
        None, max_length=1000, description="reconcile these projects' proposals; none: skip"
    )
    allocate: bool = Field(False, description="then compute the allocation now and apply it")


class RematchOut(BaseModel):
    projects: int = Field(description="projects whose proposals were reconciled")
    market_version: int
    allocation_version: int | None = None
    assignments: int | None = None
