"""The decision log: each decision about a pair (proposed, allocated) is recorded with the
engine version, the market version, the versions of the project and offer it judged, and both
score breakdowns (`domain/audit.py`). A decision that creates or rewrites the match is
recorded on it (`Match.decisions`, written with the match: no extra write); an allocation's
flag is a field update of the match (`flags.py`), so its decisions go beside, one document
each, all of a batch of flags in one insert made before the flags (`match_decisions`,
`log_many`); `record` reads both. The inputs themselves are kept once per version beside
(`decision_inputs`), so a decision can be replayed from exactly what it saw (`replay`), even
after both sides changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date

from g60_chassis.aggregates import Aggregates
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
LOG_PACKED = ("enterprise_view", "funder_view")  # stored as JSON text (never filtered on)


class LoggedDecision(Decision):
    """A decision kept beside its match (`match_decisions`, indexed by `match_id`): it holds
    its own breakdowns, the match's may change after it."""

    version: int = 0


class DecisionLog:
    def __init__(
        self,
        inputs: Aggregates[View],
        read: ReadModel,
        market: Market,
        engine_version: str,
        clock: Clock,
        log: Aggregates[LoggedDecision] | None = None,
    ) -> None:
        """`log`: where the decisions of allocation flags go (None: they are not recorded)."""
        self.inputs, self.read, self.log = inputs, read, log
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
        shared: bool = False,
    ) -> Decision:
        """`shared`: the caller knows the match holds `p`'s breakdowns (it was just made from
        `p`), so the decision shares them (`Match.records`) without comparing or copying."""
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
            enterprise_view=None if shared else p.enterprise_view or {},
            funder_view=None if shared else p.funder_view or {},
        )

    async def keep_inputs(self, project: ProjectSnapshot, offer: OfferSnapshot) -> None:
        """Store these versions of the inputs (and the enterprise) unless already stored;
        before the decision that refers to them."""
        await self.keep_inputs_of([(project, offer)])

    async def keep_inputs_of(self, pairs: list[tuple[ProjectSnapshot, OfferSnapshot]]) -> None:
        """`keep_inputs` for the pairs of a batch of decisions: the inputs not stored yet in
        one insert (they were one insert each: a batch of ten needs, ~110 round trips)."""
        await self.keep_sides([p for p, _ in pairs], [o for _, o in pairs])

    async def keep_sides(
        self, projects: list[ProjectSnapshot], offers: Sequence[OfferSnapshot] = ()
    ) -> None:
        """Store these versions of projects (and their enterprises) and offers unless stored
        already, in one insert. The matcher stores a consumed batch's new projects this way
        while it stores their views, before the engine runs (the decisions that will cite
        them are made after it): their decisions' own call then finds them stored (or being
        stored) and writes only the offers not stored yet, usually none."""
        todo: dict[str, ProjectSnapshot | OfferSnapshot | EnterpriseRegistered] = {}
        for project in projects:
            todo[input_id("project", project.id, project.version)] = project
        for offer in offers:
            todo[input_id("offer", offer.id, offer.version)] = offer
        for enterprise_id in sorted({p.enterprise_id for p in projects}):
            if input_id("enterprise", enterprise_id, 0) not in self._stored:
                enterprise = await self.read.enterprise(enterprise_id)
                if enterprise is not None:
                    todo[input_id("enterprise", enterprise.id, 0)] = enterprise
        waits = [self._storing[i] for i in todo if i in self._storing]
        new = {i: s for i, s in todo.items() if i not in self._stored and i not in self._storing}
        if new:
            storing = asyncio.ensure_future(self._store(new))
            for id in new:
                self._storing[id] = storing
            storing.add_done_callback(lambda _: [self._storing.pop(i, None) for i in new])
            waits.append(storing)
        for waiting in waits:  # a cancelled caller does not cancel the others' write
            await asyncio.shield(waiting)

    async def decide_many(
        self, kind: DecisionKind, pairs: list[tuple[str, Proposal]]
    ) -> list[Decision | None]:
        """Decisions about existing matches (the engine proposes a pair again after retracting
        it), for the caller to record: for each (match id, proposal) its decision, None where
        a view of the pair is missing; each view read once, the inputs not stored yet stored
        first in one insert (a batch of re-proposals was one insert per match). A proposal
        with breakdowns gives them to its match (`Match.refresh`): its decision shares them
        (`Match.record` would find them equal and drop its copies)."""
        views = await self.read.pair_views(p for _, p in pairs)
        todo = [(i, *pair) for i, pair in enumerate(views) if pair is not None]
        await self.keep_inputs_of([(project, offer) for _, project, offer in todo])
        out: list[Decision | None] = [None] * len(pairs)
        for i, project, offer in todo:
            id, p = pairs[i]
            shared = p.enterprise_view is not None or p.funder_view is not None
            out[i] = self.decision(kind, id, p, project, offer, shared=shared)
        return out

    async def log_many(self, kind: DecisionKind, decided: list[tuple[str, Proposal]]) -> None:
        """Decisions about matches (id, the proposal it cites) recorded beside them, in one
        insert (each view read once, the inputs not stored yet in one insert first). One
        already logged (same id: same match, kind and market version) stays as it is."""
        if self.log is None or not decided:
            return
        views = await self.read.pair_views(p for _, p in decided)
        todo = [(id, p, *pair) for (id, p), pair in zip(decided, views, strict=True) if pair]
        await self.keep_inputs_of([(project, offer) for _, _, project, offer in todo])
        await self.log.add_many(
            [
                LoggedDecision.model_validate(
                    self.decision(kind, id, p, project, offer), from_attributes=True
                )
                for id, p, project, offer in todo
            ]
        )

    async def decisions(self, match: Match) -> list[Decision]:
        """The match's decisions, oldest first: those recorded on it and those beside it (a
        decision recorded both ways, once for a flag and once on a match proposed allocated,
        appears once)."""
        out = {d.id: d for d in match.records()}
        if self.log is not None:
            logged = await self.log.every({"match_id": match.id})
            out |= {d.id: Decision.model_validate(d, from_attributes=True) for d in logged}
        return sorted(out.values(), key=lambda d: (d.at, d.market_version))

    async def _store(
        self, todo: dict[str, ProjectSnapshot | OfferSnapshot | EnterpriseRegistered]
    ) -> None:
        views = [View(id=id, data=s.model_dump(mode="json")) for id, s in todo.items()]
        await self.inputs.add_many(views)  # those stored by an earlier run are left as they are
        if len(self._stored) + len(todo) >= REMEMBERED:
            self._stored.clear()
        self._stored.update(todo)

    async def record(self, principal: Principal, match: Match) -> AuditOut:
        """The match's decisions, oldest first, each with the inputs it judged (for
        operators: the parties do not see the other side's data). The caller has checked
        that `principal` may read the match."""
        principal.require(Role.operator, Role.enterprise, Role.funder)
        inputs = principal.role == Role.operator
        out = []
        for d in await self.decisions(match):
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
