"""The decision log: each proposal and each allocation decision is recorded on the match it
concerns (`Match.decisions`, written with the match: no extra write, never a match without its
record) with the engine version, the market version, the versions of the project and offer it
judged, and both score breakdowns (`domain/audit.py`). The inputs themselves are kept once per
version beside (`decision_inputs`), so a decision can be replayed from exactly what it saw
(`replay`), even after both sides changed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from datetime import date

from g60_chassis.aggregates import Aggregates
from g60_chassis.errors import Conflict
from g60_chassis.principal import Principal
from g60_contracts.audit import AuditOut, DecisionOut
from g60_contracts.enums import Role
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.domain.audit import Decision, DecisionKind, decision_id, differences, input_id
from matching.domain.match import Match
from matching.domain.results import Proposal
from matching.service.ports import Clock, Engine, Translator, View
from matching.service.readmodel import ReadModel

Market = Callable[[], tuple[int, date]]  # the engine's market version and as-of date
EngineFactory = Callable[[date], Engine]
REMEMBERED = 50_000  # input versions known to be stored, before the memo starts over


class DecisionLog:
    def __init__(
        self,
        inputs: Aggregates[View],
        read: ReadModel,
        market: Market,
        engine_version: str,
        clock: Clock,
    ) -> None:
        self.inputs, self.read = inputs, read
        self.market, self.engine_version, self.clock = market, engine_version, clock
        self._stored: set[str] = set()
        # inputs being stored now: the matches of one batch share their project and often an
        # offer, and their decisions are made together; each input goes to the store once
        # (concurrent `add`s of one id all but one failed, each with a read to name the clash:
        # ~20 failed inserts per need at top k = 10, the largest share of FerretDB's work)
        self._storing: dict[str, asyncio.Future[None]] = {}

    def decision(
        self,
        kind: DecisionKind,
        match_id: str,
        p: Proposal,
        project: ProjectSnapshot,
        offer: OfferSnapshot,
    ) -> Decision:
        market_version, as_of = self.market()
        return Decision(
            id=decision_id(match_id, kind, market_version),
            match_id=match_id,
            kind=kind,
            at=self.clock(),
            engine_version=self.engine_version,
            market_version=market_version,
            as_of=as_of,
            project_id=project.id,
            project_version=project.version,
            enterprise_id=project.enterprise_id,
            offer_id=offer.id,
            offer_version=offer.version,
            score=p.score,
            enterprise_view=p.enterprise_view or {},
            funder_view=p.funder_view or {},
        )

    async def keep_inputs(self, project: ProjectSnapshot, offer: OfferSnapshot) -> None:
        """Store these versions of the inputs (and the enterprise) unless already stored;
        before the decision that refers to them."""
        todo = [
            self._keep(input_id("project", project.id, project.version), project),
            self._keep(input_id("offer", offer.id, offer.version), offer),
        ]
        if input_id("enterprise", project.enterprise_id, 0) not in self._stored:
            enterprise = await self.read.enterprise(project.enterprise_id)
            if enterprise is not None:
                todo.append(self._keep(input_id("enterprise", enterprise.id, 0), enterprise))
        await asyncio.gather(*todo)

    async def keep_all(self, inputs: Collection[tuple[ProjectSnapshot, OfferSnapshot]]) -> None:
        """`keep_inputs` for many pairs at once, each distinct input once (an offer entering
        a hundred top ks shares its snapshot between all its new matches)."""
        todo: dict[str, ProjectSnapshot | OfferSnapshot | EnterpriseRegistered] = {}
        enterprises: set[str] = set()
        for project, offer in inputs:
            todo[input_id("project", project.id, project.version)] = project
            todo[input_id("offer", offer.id, offer.version)] = offer
            if input_id("enterprise", project.enterprise_id, 0) not in self._stored:
                enterprises.add(project.enterprise_id)
        ids = sorted(enterprises)
        found = await asyncio.gather(*(self.read.enterprise(e) for e in ids))
        for enterprise in found:
            if enterprise is not None:
                todo[input_id("enterprise", enterprise.id, 0)] = enterprise
        missing = [(k, v) for k, v in todo.items() if k not in self._stored]
        await asyncio.gather(*(self._keep(k, v) for k, v in missing))

    async def decided(self, kind: DecisionKind, match: Match, p: Proposal) -> None:
        """Record a decision on an existing `match`: the allocation gave its project this
        offer, or the engine proposes the pair again after retracting it."""
        project, offer = await asyncio.gather(
            self.read.project(p.project_id), self.read.offer(p.offer_id)
        )
        if project is not None and offer is not None:
            await self.keep_inputs(project, offer)
            match.record(self.decision(kind, match.id, p, project, offer))

    async def _keep(
        self, id: str, snapshot: ProjectSnapshot | OfferSnapshot | EnterpriseRegistered
    ) -> None:
        if id in self._stored:
            return
        storing = self._storing.get(id)
        if storing is None:
            storing = asyncio.ensure_future(self._store(id, snapshot))
            self._storing[id] = storing
            storing.add_done_callback(lambda _: self._storing.pop(id, None))
        await asyncio.shield(storing)  # a cancelled caller does not cancel the others' write

    async def _store(
        self, id: str, snapshot: ProjectSnapshot | OfferSnapshot | EnterpriseRegistered
    ) -> None:
        view = View(id=id, data=snapshot.model_dump(mode="json"))
        with contextlib.suppress(Conflict):  # stored by another decision or an earlier run
            await self.inputs.add(view)
        if len(self._stored) >= REMEMBERED:
            self._stored.clear()
        self._stored.add(id)

    async def record(self, principal: Principal, match: Match) -> AuditOut:
        """The match's decisions, oldest first, each with the inputs it judged (for
        operators: the parties do not see the other side's data). The caller has checked
        that `principal` may read the match."""
        principal.require(Role.operator, Role.enterprise, Role.funder)
        inputs = principal.role == Role.operator
        out = []
        for d in match.records():
            project, enterprise, offer = (
                await asyncio.gather(
                    self.inputs.get(input_id("project", d.project_id, d.project_version)),
                    self.inputs.get(input_id("enterprise", d.enterprise_id, 0)),
                    self.inputs.get(input_id("offer", d.offer_id, d.offer_version)),
                )
                if inputs
                else (None, None, None)
            )
            out.append(
                DecisionOut.model_validate(
                    {
                        **d.model_dump(),
                        "project": project.data if project else None,
                        "enterprise": enterprise.data if enterprise else None,
                        "offer": offer.data if offer else None,
                    }
                )
            )
        return AuditOut(match_id=match.id, decisions=out)


def replay(decision: DecisionOut, new_engine: EngineFactory, translate: Translator) -> list[str]:
    """Run the recorded inputs through this engine; where the outcome differs from the
    record (an empty list: the decision is reproduced)."""
    if decision.project is None or decision.enterprise is None or decision.offer is None:
        return ["inputs: not recorded, cannot replay"]
    engine = new_engine(decision.as_of)
    engine.load(
        [translate.project(decision.project, decision.enterprise)],
        [translate.offer(decision.offer)],
        delta=False,
    )
    p = engine.proposal(decision.project_id, decision.offer_id, allocated=False)
    if p is None:
        x = engine.explain(decision.project_id, decision.offer_id, fresh=False)
        rules = ", ".join(str(r.get("rule")) for r in x.reasons) or "unknown"
        return [f"eligible: True != False (now refused by: {rules})"]
    recorded = {
        "score": decision.score,
        "enterprise_view": decision.enterprise_view,
        "funder_view": decision.funder_view,
    }
    replayed = {
        "score": p.score,
        "enterprise_view": p.enterprise_view or {},
        "funder_view": p.funder_view or {},
    }
    return differences(recorded, replayed)
