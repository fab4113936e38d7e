"""Ports of the matching service: the engine, the translation between contract snapshots and
the engine's domain objects, the events it publishes, the clock."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from g60_chassis.aggregates import Outgoing
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from g60_contracts.matching import ExplainOut
from matching.domain.match import Match
from matching.domain.model import Offer, Project
from matching.domain.results import Advice, Allocation, Delta, Explanation, Proposal
from matching.domain.snapshot import MarketSnapshot


class View(BaseModel):
    """The read model's copy of another service's aggregate: its last snapshot and version."""

    id: str
    data: dict[str, Any]  # the contract snapshot as stored (JSON); read back through `ReadModel`
    source_version: int = 0
    removed: bool = False
    enterprise_id: str | None = None  # projects: to find them when their enterprise arrives
    pending: bool = False  # kept while the engine loaded: not applied to it yet (`loading.py`)
    version: int = 0


class Engine(Protocol):
    """The incremental matching engine (`matching.domain.engine.MatchEngine`)."""

    @property
    def version(self) -> int: ...
    @property
    def latest_version(self) -> int | None: ...
    def upsert_project(self, project: Project) -> Delta: ...
    def remove_project(self, project_id: str) -> Delta: ...
    def upsert_offer(self, offer: Offer) -> Delta: ...
    def remove_offer(self, offer_id: str) -> Delta: ...
    def set_capacity(
        self, offer_id: str, capacity_cny: int, deals_taken: int | None = None
    ) -> Delta: ...
    def load(
        self,
        projects: Iterable[Project] = (),
        offers: Iterable[Offer] = (),
        progress: Callable[[str, int, int], None] | None = None,
        delta: bool = True,
    ) -> Delta: ...
    def has_project(self, project_id: str) -> bool: ...
    def has_offer(self, offer_id: str) -> bool: ...
    def proposals_for_projects(
        self,
        project_ids: Iterable[str],
        breakdowns: bool = True,
        allocated: bool = True,
        only: Mapping[str, Collection[str]] | None = None,
    ) -> dict[str, list[Proposal]]: ...
    def proposals_for_offer(
        self,
        offer_id: str,
        breakdowns: bool = True,
        limit: int | None = None,
        allocated: bool = True,
    ) -> list[Proposal]: ...
    def proposal(
        self, project_id: str, offer_id: str, breakdowns: bool = True, allocated: bool = True
    ) -> Proposal | None: ...
    def proposals_of(
        self, pairs: Sequence[tuple[str, str]], breakdowns: bool = True, allocated: bool = True
    ) -> list[Proposal | None]: ...
    def with_breakdowns(self, proposals: list[Proposal]) -> list[Proposal]: ...
    def snapshot(self) -> MarketSnapshot: ...
    def snapshot_in_slices(self) -> Iterator[MarketSnapshot | None]: ...
    def adopt(self, allocation: Allocation) -> None: ...
    def allocation_map(self, fresh: bool = True) -> dict[str, str]: ...
    def explain(self, project_id: str, offer_id: str, fresh: bool = True) -> Explanation: ...
    def advice(self, project_id: str, limit: int = 10) -> list[Advice]: ...


class Allocate(Protocol):
    """Computes the allocation of a snapshot away from the event loop (thread or process)."""

    async def __call__(self, snapshot: MarketSnapshot) -> Allocation: ...
    def start(self) -> None: ...  # ready it ahead of the first run (a child process: spawned)
    def close(self) -> None: ...


class MatchEvents(Protocol):
    """The events of a match's transition `kind`; `doc`: the match's document as the same
    write stores it (its fields' JSON form, reused: `FromDoc` in `aggregates.py`)."""

    def match(
        self, kind: str, match: Match, doc: Mapping[str, object] | None = None
    ) -> Outgoing: ...

    def stored(self, kind: str, doc: Mapping[str, object]) -> Outgoing:
        """The same events of a match known only by its stored document (not loaded)."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class Translator(Protocol):
    """Between the contract snapshots and the engine's domain objects; formats explanations."""

    def project(self, project: ProjectSnapshot, enterprise: EnterpriseRegistered) -> Project: ...
    def offer(self, offer: OfferSnapshot) -> Offer: ...
    def explanation(
        self,
        project_id: str,
        offer_id: str | None,
        advice: list[Advice],
        explanation: Explanation | None,
    ) -> ExplainOut: ...
