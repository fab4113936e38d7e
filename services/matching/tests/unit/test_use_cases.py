"""The matching use cases on fakes (memory store, memory bus), driven through the service's own
consumers: message in → stored matches, outbox events and flags out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from g60_chassis.auth import KeyStore
from g60_chassis.batches import unsent
from g60_chassis.bus import Handler, MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.errors import Conflict
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.principal import Principal
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from g60_contracts.events import OfferSnapshot
from g60_contracts.funding import OFFER_EXAMPLE
from g60_contracts.projects import ENTERPRISE_EXAMPLE, PROJECT_EXAMPLE
from matching.bootstrap import MatchingApp, bootstrap
from matching.domain.match import Match, match_id
from matching.entrypoints.consumer import funding_events, project_events

T0 = datetime(2026, 11, 26, 8, tzinfo=UTC)
OPERATOR = Principal("k", Role.operator)


def offer_data(id: str, version: int, status: str = "active", **kw: Any) -> dict[str, Any]:
    return {
        **OFFER_EXAMPLE,
        "id": id,
        "funder_id": "fun-1",
        "funder_kind": "bank",
        "status": status,
        "remaining_cny": kw.pop("capacity_cny", OFFER_EXAMPLE["capacity_cny"]),
        "reserved_cny": 0,
        "committed_cny": 0,
        "deals_taken": 0,
        "version": version,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        **kw,
    }


class Market:
    def __init__(self, top_k: int = 3) -> None:
        self.store = MemoryDocumentStore()
        self.top_k = top_k
        self.app: MatchingApp = self.another_process()
        self.svc = self.app.service
        self.projects: Handler = project_events(self.svc)
        self.funding: Handler = funding_events(self.svc)
        self.versions: dict[str, int] = {}

    def another_process(self) -> MatchingApp:
        """A matching service on this market's store (a restart, or a second process)."""
        return bootstrap(
            PlatformSettings(store="memory", match_top_k=self.top_k),
            store=self.store,
            bus=MemoryBus(),
            keys=KeyStore(MemoryDocumentStore()),
            clock=lambda: T0,
        )

    def _v(self, id: str) -> int:
        self.versions[id] = self.versions.get(id, 0) + 1
        return self.versions[id]

    async def enterprise(self, id: str = "ent-1", **kw: Any) -> None:
        data = {**ENTERPRISE_EXAMPLE, "id": id, "created_at": T0.isoformat(), **kw}
        await self.projects(
            Envelope(type="g60.enterprise.registered.v1", source="/t", subject=id, data=data)
        )

    async def project(self, id: str, status: str = "open", **kw: Any) -> None:
        data = {
            **PROJECT_EXAMPLE,
            "enterprise_id": "ent-1",
            "id": id,
            "status": status,
            "version": self._v(id),
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            **kw,
        }
        kind = "submitted" if status == "open" else "withdrawn"
        await self.projects(
            Envelope(type=f"g60.project.{kind}.v1", source="/t", subject=id, data=data)
        )

    async def offer(self, id: str, status: str = "active", **kw: Any) -> None:
        data = offer_data(id, self._v(id), status, **kw)
        kind = "published" if status == "active" else "withdrawn"
        await self.funding(
            Envelope(type=f"g60.offer.{kind}.v1", source="/t", subject=id, data=data)
        )

    async def wide(self, projects: list[str]) -> None:
        """Every change goes the wide way (what moved now, the rest settled after), over three
        offers and `projects`, all settled."""
        self.svc.proposals.inline = 0
        await self.enterprise()
        for id, rate in (("off-a", 420), ("off-b", 400), ("off-c", 440)):
            await self.offer(id, pricing={"rate_bp": rate})
        for id in projects:
            await self.project(id)
        await self.svc.proposals.settling.settled()

    async def match(self, project_id: str, offer_id: str) -> Match:
        found = await self.svc.matches.get(match_id(project_id, offer_id))
        assert found is not None, (project_id, offer_id)
        return found

    async def events(self, project_id: str, offer_id: str) -> list[str]:
        id = match_id(project_id, offer_id)
        assert await self.store.get("matches", id) is not None
        return [e["type"] for e in (await unsent(self.store, "matches")).get(id, [])]


@pytest.fixture
async def market() -> Market:
    m = Market()
    await m.enterprise()
    return m


async def test_a_project_event_stores_its_proposals_without_computing_the_allocation(
    market: Market,
) -> None:
    await market.offer("off-1")
    await market.project("prj-1")

    match = await market.match("prj-1", "off-1")
    assert match.status == "proposed" and match.rank == 1 and match.score > 0
    assert not match.allocated and match.allocated_as_of is None
    assert await market.events("prj-1", "off-1") == ["g60.match.proposed.v1"]
    assert market.svc.engine.latest_version is None  # the event path allocated nothing

    allocation = await market.svc.allocation.refresh()  # what the background run does
    match = await market.match("prj-1", "off-1")
    assert match.allocated and match.allocated_as_of == allocation.market_version
    assert allocation.market_version == market.svc.engine.version


async def test_the_background_run_moves_every_flag_that_changed(market: Market) -> None:
    await market.offer("small", capacity_cny=20_000_000, max_deals=1, pricing={"rate_bp": 300})
    await market.offer("large", pricing={"rate_bp": 420})
    await market.project("prj-1")
    await market.svc.allocation.refresh()
    assert (await market.match("prj-1", "small")).allocated

    await market.project("prj-2", amount_cny=20_000_000)  # competes for the one small deal
    first = await market.svc.allocation.refresh()
    flags = {
        (p, o): (await market.match(p, o)).allocated
        for p in ("prj-1", "prj-2")
        for o in ("small", "large")
    }
    assert sum(flags.values()) == 2  # each project holds exactly one offer
    assert flags[("prj-1", "small")] != flags[("prj-2", "small")]
    for (p, o), on in flags.items():
        assert on == (first.as_map().get(p) == o)

    await market.offer("small", status="withdrawn")
    await market.svc.allocation.refresh()
    assert not (await market.match("prj-1", "small")).allocated
    assert (await market.match("prj-1", "large")).allocated
    assert (await market.match("prj-1", "small")).status == "retracted"


async def test_the_refresher_runs_after_a_quiet_moment_and_the_event_path_never_waits(
    market: Market,
) -> None:
    market.svc.allocation.debounce_s = 1.0  # longer than any gap between these events
    market.svc.allocation.start()
    try:
        for i in range(3):
            await market.offer(f"off-{i}")
        for i in range(5):
            await market.project(f"prj-{i}")
        assert market.svc.allocation.runs == 0  # nothing ran while the events came in
        assert market.svc.allocation.pending  # what /metrics' g60_allocation_pending reads
        await market.svc.allocation.settled()
        assert not market.svc.allocation.pending
        assert market.svc.allocation.version == market.svc.engine.version
        allocated = [m for m in await market.svc.matches.every() if m.allocated]
        assert {m.project_id for m in allocated} == {f"prj-{i}" for i in range(5)}
    finally:
        await market.svc.allocation.stop()


async def test_a_redelivered_project_event_creates_nothing_twice(market: Market) -> None:
    await market.offer("off-1")
    await market.project("prj-1")
    market.versions["prj-1"] -= 1
    await market.project("prj-1")  # the same snapshot again
    assert len(await market.svc.matches.every()) == 1
    assert await market.events("prj-1", "off-1") == ["g60.match.proposed.v1"]


async def test_a_withdrawn_project_retracts_its_matches(market: Market) -> None:
    await market.offer("off-1")
    await market.project("prj-1")
    await market.project("prj-1", status="withdrawn")
    match = await market.match("prj-1", "off-1")
    assert match.status == "retracted" and "withdrawn" in (match.reason or "")
    assert (await market.events("prj-1", "off-1"))[-1] == "g60.match.retracted.v1"


async def test_a_project_before_its_enterprise_is_matched_when_the_enterprise_arrives() -> None:
    market = Market()
    await market.offer("off-1")
    await market.project("prj-1", enterprise_id="ent-late")
    assert await market.svc.matches.every() == []
    await market.enterprise("ent-late")
    assert (await market.match("prj-1", "off-1")).enterprise_id == "ent-late"


async def test_both_sides_agree_then_funding_reserves(market: Market) -> None:
    await market.offer("off-1")
    await market.project("prj-1")
    id = match_id("prj-1", "off-1")
    enterprise = Principal("e", Role.enterprise, "ent-1")
    funder = Principal("f", Role.funder, "fun-1")
    assert (await market.svc.lifecycle.accept(enterprise, id, None)).status == "proposed"
    assert (await market.svc.lifecycle.accept(funder, id, None)).status == "agreed"
    decision = {
        "match_id": id,
        "offer_id": "off-1",
        "project_id": "prj-1",
        "amount_cny": 20_000_000,
        "remaining_cny": 480_000_000,
    }
    await market.funding(
        Envelope(type="g60.capacity.reserved.v1", source="/t", subject=id, data=decision)
    )
    assert (await market.match("prj-1", "off-1")).status == "reserved"
    assert (await market.events("prj-1", "off-1"))[-2:] == [
        "g60.match.agreed.v1",
        "g60.match.reserved.v1",
    ]


async def test_match_lists_page_with_cursors(market: Market) -> None:
    for i in range(5):
        await market.project(f"prj-{i}")
    await market.offer("off-1")
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = await market.svc.queries.offer_matches(OPERATOR, "off-1", False, cursor, 2)
        seen += [m.project_id for m in items]
        pages += 1
        assert len(items) <= 2
        if cursor is None:
            break
    assert sorted(seen) == [f"prj-{i}" for i in range(5)] and pages == 3


async def test_explain_asks_the_engine_and_formats_its_answer(market: Market) -> None:
    await market.offer("off-1")
    await market.offer("far", cities=["hefei"])
    await market.project("prj-1")
    ok = await market.svc.queries.explain(OPERATOR, "prj-1", "off-1")
    assert ok.eligible is True and ok.score is not None and ok.reasons == []
    no = await market.svc.queries.explain(OPERATOR, "prj-1", "far")
    assert no.eligible is False and [r["rule"] for r in no.reasons] == ["city"]
    await market.offer("far", status="withdrawn")
    with pytest.raises(Conflict):  # in the store, no longer in the engine: a 409, not a guess
        await market.svc.queries.explain(OPERATOR, "prj-1", "far")


async def test_a_restart_rebuilds_the_engine_and_keeps_the_flags(market: Market) -> None:
    await market.offer("off-1")
    await market.project("prj-1")
    await market.svc.allocation.refresh()
    again = market.another_process()
    assert await again.service.rebuild() == 1
    assert again.service.proposals.allocated == {"prj-1": "off-1"}  # seeded from the flags
    match = await again.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.allocated and match.version == 2  # nothing rewritten
    await again.service.allocation.refresh()
    match = await again.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.allocated and match.version == 2


async def test_an_allocated_pair_beyond_the_top_k_is_proposed_by_the_background_run() -> None:
    market = Market(top_k=1)
    await market.enterprise()
    # the enterprise prefers the quick, cheap loan; the combined score prefers the other
    await market.offer(
        "quick",
        pricing={"rate_bp": 300},
        decision_days=1,
        preferences={"priority_cities": ["jiaxing"]},
    )
    await market.offer(
        "fond",
        pricing={"rate_bp": 420},
        decision_days=40,
        sectors=["instruments_meters"],
        preferences={"priority_cities": ["shanghai"], "priority_sectors": ["instruments_meters"]},
    )
    await market.project("prj-1")
    assert [m.offer_id for m in await market.svc.matches.every()] == ["fond"]  # the top 1

    allocation = await market.svc.allocation.refresh()
    quick = await market.match("prj-1", "quick")
    assert quick.allocated and quick.rank == 2 and quick.status == "proposed"
    assert quick.allocated_as_of == allocation.market_version
    assert not (await market.match("prj-1", "fond")).allocated


async def test_changes_within_the_quiet_moment_fold_into_one_run(market: Market) -> None:
    # a quiet moment far longer than the changes take, even on a loaded machine (at 0.2 s the
    # four projects' handling alone outlasted it under load and made two runs)
    market.svc.allocation.debounce_s = 3.0
    market.svc.allocation.start()
    try:
        await market.offer("off-1")
        for i in range(4):
            await market.project(f"prj-{i}")
            await asyncio.sleep(0.01)
        await market.svc.allocation.settled()
        assert market.svc.allocation.runs == 1
    finally:
        await market.svc.allocation.stop()


async def test_a_flag_no_later_allocation_moved_holds_as_of_the_newest(market: Market) -> None:
    await market.offer("off-1")
    await market.project("prj-1")
    first = await market.svc.allocation.refresh()
    await market.offer("off-2", cities=["hefei"])  # eligible for nobody: nothing moves
    second = await market.svc.allocation.refresh()
    assert second.market_version > first.market_version
    stored = await market.match("prj-1", "off-1")
    assert stored.allocated_as_of == first.market_version  # not rewritten
    (shown,), _ = await market.svc.queries.project_matches(OPERATOR, "prj-1", False)
    assert shown.allocated and shown.allocated_as_of == second.market_version


async def test_an_offer_redelivered_after_a_crash_proposes_what_its_first_delivery_did_not(
    market: Market,
) -> None:
    await market.project("prj-1")  # before the offer: nothing to propose yet
    data = offer_data("off-1", 1)
    # the first delivery stored the offer's view, then the process died before the proposals
    svc = market.svc
    await svc.read.keep(svc.read.offers, OfferSnapshot.model_validate(data), False)
    assert await svc.matches.get(match_id("prj-1", "off-1")) is None
    again = market.another_process()
    await again.service.rebuild()  # loads the offer from its view: the upsert changes nothing
    redelivered = Envelope(type="g60.offer.published.v1", source="/t", subject="off-1", data=data)
    await funding_events(again.service)(redelivered)
    match = await again.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.status == "proposed"
