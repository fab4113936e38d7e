"""Use cases of the matching service: keep the read model of projects and offers, run the engine
incrementally, turn its proposals into matches, and drive each match through its lifecycle.

Proposals are reconciled, not replayed: after any change the stored matches of each affected
project are brought in line with the engine's current top-k (create the missing, re-propose
the retracted, retract the ones no longer proposed that nobody accepted). Match ids are derived
from the pair, so reconciling twice, or after a crash, creates nothing twice."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.errors import Conflict, NotFound, Unprocessable
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from matching.domain.engine import Delta
from matching.domain.match import OPEN, Match, Side, TransitionError
from matching.service.ports import Clock, MatchEvents, Translator, View


def match_id(project_id: str, offer_id: str) -> str:
    return "mat_" + hashlib.sha256(f"{project_id}|{offer_id}".encode()).hexdigest()[:16]


class MatchingService:
    def __init__(
        self,
        matches: Aggregates[Match],
        enterprises: Aggregates[View],
        projects: Aggregates[View],
        offers: Aggregates[View],
        engine: Any,
        translate: Translator,
        events: MatchEvents,
        clock: Clock,
    ) -> None:
        self.matches, self.enterprises, self.projects, self.offers = (
            matches,
            enterprises,
            projects,
            offers,
        )
        self.engine, self.translate, self.events, self.clock = engine, translate, events, clock

    # read model ------------------------------------------------------------------------------
    async def _all(self, views: Aggregates[View]) -> list[View]:
        out, cursor = [], None
        while True:
            page, cursor = await views.list({"removed": False}, cursor, 500)
            out += page
            if cursor is None:
                return out

    async def rebuild(self) -> int:
        """Load the read model into the engine and reconcile every project (on start)."""
        enterprises = {v.id: v.data for v in await self._all(self.enterprises)}
        for offer in await self._all(self.offers):
            self.engine.upsert_offer(self.translate.offer(offer.data))
        projects = await self._all(self.projects)
        for view in projects:
            enterprise = enterprises.get(view.data["enterprise_id"])
            if enterprise is not None:
                self.engine.upsert_project(self.translate.project(view.data, enterprise))
        stale: dict[str, set[str]] = {}
        for match in await self._matches({"status": "proposed"}):  # one scan, at start only
            stale.setdefault(match.project_id, set()).add(match.offer_id)
        await self.reconcile({v.id for v in projects} | set(stale), stale)
        return len(projects)

    async def _store_view(
        self, views: Aggregates[View], data: dict[str, Any], removed: bool
    ) -> bool:
        """Keep the newest snapshot; False if this one is not newer (a redelivery)."""

        async def attempt() -> bool:
            version = int(data.get("version", 0))
            current = await views.get(data["id"])
            if current is None:
                await views.add(
                    View(
                        id=data["id"],
                        data=data,
                        source_version=version,
                        removed=removed,
                        enterprise_id=data.get("enterprise_id"),
                    )
                )
                return True
            if version <= current.source_version:
                return False
            current.data, current.source_version, current.removed = data, version, removed
            await views.save(current)
            return True

        result: bool = await retry_on_conflict(attempt)
        return result

    async def on_enterprise(self, data: dict[str, Any]) -> None:
        await self._store_view(self.enterprises, data, removed=False)
        # projects may arrive first: they are keyed by their own id, on other partitions
        waiting, cursor = [], None
        while True:
            page, cursor = await self.projects.list(
                {"enterprise_id": data["id"], "removed": False}, cursor, 200
            )
            waiting += page
            if cursor is None:
                break
        for view in waiting:
            await self.apply(self.engine.upsert_project(self.translate.project(view.data, data)))

    async def on_project(self, data: dict[str, Any]) -> None:
        removed = data.get("status") != "open"
        await self._store_view(self.projects, data, removed)
        # applied even to a redelivery: the engine is in memory and upserts are idempotent
        if removed:
            self.engine.remove_project(data["id"])  # its open matches are retracted below
            reason = f"the project was {data.get('status')}"
            await self._retract_all({"project_id": data["id"]}, reason)
            return
        enterprise = await self.enterprises.get(data["enterprise_id"])
        if enterprise is None:
            return  # matched when its enterprise arrives (see on_enterprise)
        delta = self.engine.upsert_project(self.translate.project(data, enterprise.data))
        await self.reconcile([data["id"]], {data["id"]: {o for _, o in delta.removed}})

    async def on_offer(self, data: dict[str, Any]) -> None:
        removed = data.get("status") != "active"
        await self._store_view(self.offers, data, removed)
        if removed:
            delta = self.engine.remove_offer(data["id"])
            await self._retract_all({"offer_id": data["id"]}, "the offer was withdrawn")
        else:
            delta = self.engine.upsert_offer(self.translate.offer(data))
        await self.apply(delta)

    # proposals → matches ---------------------------------------------------------------------
    async def apply(self, delta: Delta) -> None:
        """Reconcile the projects an engine change touched; its removed pairs may be stale."""
        stale: dict[str, set[str]] = {}
        for project_id, offer_id in delta.removed:
            stale.setdefault(project_id, set()).add(offer_id)
        await self.reconcile(delta.projects, stale)

    async def reconcile(
        self, project_ids: Iterable[str], stale: dict[str, set[str]] | None = None
    ) -> None:
        for project_id in sorted(set(project_ids)):
            await self._reconcile_project(project_id, (stale or {}).get(project_id, set()))

    async def _reconcile_project(self, project_id: str, maybe_stale: set[str]) -> None:
        """Matches are looked up by id (a hash of the pair), never by scanning."""
        now = self.clock()
        wanted = {
            p["offer_id"]: p
            for p in self.translate.proposals(self.engine.proposals_for_project(project_id))
        }
        for offer_id, proposal in wanted.items():
            match = await self.matches.get(match_id(project_id, offer_id))
            if match is None:
                await self._propose(project_id, offer_id, proposal)
                continue
            kinds = match.repropose(now)
            changed = self._refresh(match, proposal)
            if kinds or changed:
                await self._save(match, kinds)
        for offer_id in sorted(maybe_stale - set(wanted)):
            match = await self.matches.get(match_id(project_id, offer_id))
            if match is None:
                continue
            untouched = not (match.accepted_by_enterprise or match.accepted_by_funder)
            if match.status == "proposed" and untouched:
                await self._save(match, match.retract("no longer among the proposals", now))

    @staticmethod
    def _refresh(match: Match, proposal: dict[str, Any]) -> bool:
        fields = {
            k: proposal[k] for k in ("rank", "score", "allocated", "enterprise_view", "funder_view")
        }
        if all(getattr(match, k) == v for k, v in fields.items()):
            return False
        for k, v in fields.items():
            setattr(match, k, v)
        return True

    async def _propose(self, project_id: str, offer_id: str, proposal: dict[str, Any]) -> None:
        project, offer = await self.projects.get(project_id), await self.offers.get(offer_id)
        if project is None or offer is None:
            return
        now = self.clock()
        deadline = int(offer.data.get("response_deadline_days") or 14)
        match = Match(
            id=match_id(project_id, offer_id),
            project_id=project_id,
            offer_id=offer_id,
            enterprise_id=project.data["enterprise_id"],
            funder_id=offer.data["funder_id"],
            instrument=offer.data["instrument"],
            amount_cny=int(project.data["amount_cny"]),
            expires_at=now + timedelta(days=deadline),
            created_at=now,
            updated_at=now,
            **{
                k: proposal[k]
                for k in ("rank", "score", "allocated", "enterprise_view", "funder_view")
            },
        )
        with contextlib.suppress(Conflict):  # proposed by an earlier delivery of this change
            await self.matches.add(match, partial(self.events.match, "proposed"))

    async def _matches(self, where: dict[str, Any]) -> list[Match]:
        out, cursor = [], None
        while True:
            page, cursor = await self.matches.list(where, cursor, 200)
            out += page
            if cursor is None:
                return out

    async def _save(self, match: Match, kinds: list[str]) -> None:
        events = (lambda m: [e for k in kinds for e in self.events.match(k, m)]) if kinds else None
        await self.matches.save(match, events)

    async def _retract_all(self, where: dict[str, Any], reason: str) -> None:
        now = self.clock()
        for match in await self._matches(where):
            if match.status in OPEN:
                await self._transition(match.id, lambda m: m.retract(reason, now))

    async def _transition(self, id: str, step: Any) -> Match:
        async def attempt() -> Match:
            match = await self.matches.get(id)
            if match is None:
                raise NotFound.of("match", id)
            try:
                kinds = step(match)
            except TransitionError as exc:
                raise Conflict(str(exc), status=match.status) from exc
            if kinds:
                await self._save(match, kinds)
            return match

        result: Match = await retry_on_conflict(attempt)
        return result

    # capacity answers from funding -----------------------------------------------------------
    async def on_capacity(self, match_id: str, reserved: bool, reason: str | None) -> None:
        now = self.clock()
        try:
            await self._transition(
                match_id,
                (lambda m: m.reserved(now))
                if reserved
                else (lambda m: m.rejected(reason or "capacity", now)),
            )
        except NotFound:
            return  # not ours

    async def on_capacity_changed(self, data: dict[str, Any]) -> None:
        await self._store_view(self.offers, data, removed=data.get("status") != "active")
        delta = self.engine.set_capacity(
            data["id"], int(data["remaining_cny"]), int(data.get("deals_taken", 0))
        )
        await self.apply(delta)

    # queries ---------------------------------------------------------------------------------
    async def _project_view(self, principal: Principal, project_id: str) -> View:
        view = await self.projects.get(project_id)
        if view is None or (
            principal.role == Role.enterprise
            and view.data.get("enterprise_id") != principal.tenant_id
        ):
            raise NotFound.of("project", project_id)
        return view

    async def _offer_view(self, principal: Principal, offer_id: str) -> View:
        view = await self.offers.get(offer_id)
        if view is None or (
            principal.role == Role.funder and view.data.get("funder_id") != principal.tenant_id
        ):
            raise NotFound.of("offer", offer_id)
        return view

    async def project_matches(
        self, principal: Principal, project_id: str, include_closed: bool
    ) -> list[Match]:
        principal.require(Role.operator, Role.enterprise)
        await self._project_view(principal, project_id)
        found = await self._matches({"project_id": project_id})
        shown = [m for m in found if include_closed or m.status not in ("retracted",)]
        return sorted(shown, key=lambda m: (m.status != "proposed", -m.score, m.offer_id))

    async def offer_matches(
        self, principal: Principal, offer_id: str, include_closed: bool
    ) -> list[Match]:
        principal.require(Role.operator, Role.funder)
        await self._offer_view(principal, offer_id)
        found = await self._matches({"offer_id": offer_id})
        shown = [m for m in found if include_closed or m.status not in ("retracted",)]
        return sorted(shown, key=lambda m: (-m.score, m.project_id))

    async def explain(
        self, principal: Principal, project_id: str, offer_id: str | None
    ) -> dict[str, Any]:
        """A funder sees a project only through its own matches (any of its offers, any
        status), and never the enterprise's side of the why-not reasons (its city, revenue,
        qualifications...) nor the advice to the enterprise."""
        principal.require(Role.operator, Role.enterprise, Role.funder)
        if principal.role == Role.funder:
            if offer_id is None:
                raise Unprocessable(
                    "a funder explains a pair with one of its offers", "offer_id", "query"
                )
            await self._offer_view(principal, offer_id)
            seen = await self.matches.list(
                {"project_id": project_id, "funder_id": principal.tenant_id}, None, 1
            )
            if not seen[0] or await self.projects.get(project_id) is None:
                raise NotFound.of("project", project_id)
        else:
            await self._project_view(principal, project_id)
        if offer_id is not None:
            offer = await self.offers.get(offer_id)
            if offer is None:
                raise NotFound.of("offer", offer_id)
            if offer.removed:
                raise Conflict("the offer is withdrawn: it is no longer matched", offer_id=offer_id)
        try:
            out = self.translate.explanation(self.engine, project_id, offer_id)
        except KeyError as exc:  # the engine dropped it meanwhile (withdrawn, expired)
            raise Conflict("this pair is not matchable now", offer_id=offer_id) from exc
        if principal.role == Role.funder:
            hidden = ("need", "unknown")
            reasons = [
                {k: v for k, v in r.items() if k not in hidden} for r in out.get("reasons", [])
            ]
            out = {**out, "reasons": reasons, "advice": []}
        return out

    async def get_match(self, principal: Principal, id: str) -> Match:
        match = await self.matches.get(id)
        if match is None or not self._party(principal, match):
            raise NotFound.of("match", id)
        return match

    @staticmethod
    def _party(principal: Principal, match: Match) -> bool:
        if principal.role == Role.operator:
            return True
        if principal.role == Role.enterprise:
            return match.enterprise_id == principal.tenant_id
        if principal.role == Role.funder:
            return match.funder_id == principal.tenant_id
        return False

    # lifecycle -------------------------------------------------------------------------------
    def _side(self, principal: Principal, side: Side | None) -> Side:
        if principal.role == Role.enterprise:
            return "enterprise"
        if principal.role == Role.funder:
            return "funder"
        principal.require(Role.operator, Role.enterprise, Role.funder)
        if side is None:
            raise Unprocessable(
                "an operator acts for a side: pass side=enterprise|funder", "side", "query"
            )
        return side

    async def accept(self, principal: Principal, id: str, side: Side | None) -> Match:
        await self.get_match(principal, id)
        acting, now = self._side(principal, side), self.clock()
        return await self._transition(id, lambda m: m.accept(acting, now))

    async def decline(self, principal: Principal, id: str, side: Side | None, reason: str) -> Match:
        await self.get_match(principal, id)
        acting, now = self._side(principal, side), self.clock()
        return await self._transition(id, lambda m: m.decline(acting, reason, now))

    async def close(self, principal: Principal, id: str, amount_cny: int) -> Match:
        principal.require(Role.operator, Role.funder)
        await self.get_match(principal, id)
        now = self.clock()
        return await self._transition(id, lambda m: m.close(amount_cny, now))

    async def expire_due(self) -> int:
        now, expired = self.clock(), 0
        for status in sorted(OPEN):
            for match in await self._matches({"status": status}):
                if match.expires_at is not None and match.expires_at <= now:
                    await self._transition(match.id, lambda m: m.expire(now))
                    expired += 1
        return expired
