"""Ports of the matching service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from g60_chassis.aggregates import Outgoing
from matching.domain.match import Match


class View(BaseModel):
    """The read model's copy of another service's aggregate: its last snapshot and version."""

    id: str
    data: dict[str, Any]
    source_version: int = 0
    removed: bool = False
    enterprise_id: str | None = None  # projects: to find them when their enterprise arrives
    version: int = 0


class MatchEvents(Protocol):
    def match(self, kind: str, match: Match) -> Outgoing: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class Translator(Protocol):
    """Between the read model's contract snapshots and the engine's domain objects."""

    def project(self, project: dict[str, Any], enterprise: dict[str, Any]) -> Any: ...
    def offer(self, offer: dict[str, Any]) -> Any: ...
    def proposals(self, proposals: Any) -> list[dict[str, Any]]:
        """Each: offer_id, rank, score, allocated, enterprise_view, funder_view."""

    def explanation(self, engine: Any, project_id: str, offer_id: str | None) -> dict[str, Any]: ...
